"""`approve` and `reject`: a decision from the terminal, judged by the workflow like any other.

The CLI only checks the decision's shape; the workflow's verdict (counted, or ignored and
why) is what the user is told, and its count of approvals is the one shown.
"""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError
from rich.markup import escape

from cli.console import console, fail, validation_message
from cli.errors import EXIT_BAD_INPUT, CliError
from cli.follow import wait_for_ticket
from cli.identity import NotYourMachine, UnknownIdentity, acting_user
from cli.render import outcome_panel
from cli.session import open_session, run, settings_or_exit, ticket_ref
from cli.tickets_commands import report_progress
from core.models import Decision, DecisionSource, TicketStatus
from core.names import ticket_label
from core.settings import Settings
from service.tickets import TicketNotFound

TicketId = Annotated[str, typer.Argument(metavar="ID", help="T-…, ticket-… or the short id.")]
AsApprover = Annotated[str | None, typer.Option("--as", help="Approver (default: your OS user).")]


def approve(
    ticket_id: TicketId,
    comment: Annotated[str, typer.Option(help="Why you approve (kept in the audit log).")] = "",
    as_user: AsApprover = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the ticket until it finishes.")] = False,
) -> None:
    """Approve the plan a ticket is waiting on. The approver rules apply: you cannot approve your own ticket."""
    decide(ticket_id, approve=True, comment=comment, as_user=as_user, wait=wait)


def reject(
    ticket_id: TicketId,
    reason: Annotated[str, typer.Option("--reason", help="Why (shown to the requester).", show_default=False)],
    replan: Annotated[
        bool, typer.Option("--replan", help="Ask for a new plan instead of ending the ticket (reason = feedback).")
    ] = False,
    as_user: AsApprover = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the ticket until it finishes (with --replan: or waits again).")
    ] = False,
) -> None:
    """Reject the plan a ticket is waiting on: one rejection ends the ticket, unless it asks for a new plan."""
    if not reason.strip():
        fail("--reason must say why the plan is rejected.", EXIT_BAD_INPUT)
    decide(ticket_id, approve=False, comment=reason.strip(), as_user=as_user, wait=wait, replan=replan)


def decide(
    ticket_id: str, *, approve: bool, comment: str, as_user: str | None, wait: bool, replan: bool = False
) -> None:
    ref = ticket_ref(ticket_id)
    settings = settings_or_exit()
    try:  # the CLI signs what it sends: deciding in someone else's name would sign a lie
        decider = acting_user(as_user, own_machine=settings.allow_unsigned_decisions, acts="decides")
    except (UnknownIdentity, NotYourMachine) as error:
        fail(str(error), EXIT_BAD_INPUT)
    draft = build_decision(approve, decider, comment, replan=replan)
    raise typer.Exit(run(settings, _decide(settings, ref, draft, wait)))


def build_decision(approve: bool, decider: str, comment: str, *, replan: bool = False) -> Decision:
    """A decision checked for shape up front; the request id and plan hash come from the live ticket."""
    try:
        return Decision(
            approve=approve,
            decider=decider,
            source=DecisionSource.CLI,
            request_id="",
            plan_hash="",
            comment=comment,
            replan=replan,
        )
    except ValidationError as error:
        names = {"decider": "--as", "comment": "--comment" if approve else "--reason"}
        fail(validation_message(error, names), EXIT_BAD_INPUT)


def finished_already(label: str, status: TicketStatus) -> str:
    return f"{label} is not waiting for approval: it has finished ({status.status_label})."


def moved_on(status: TicketStatus, request_id: str) -> bool:
    """The ticket left the approval request the decision was for (finished, re-planned, continued as new)."""
    return status.outcome is not None or status.approval is None or status.approval.request_id != request_id


async def _decide(settings: Settings, ref: str, draft: Decision, wait: bool) -> int:
    session = await open_session(settings)
    service = session.service
    before = await service.status(ref)
    approval = before.approval
    decision = draft.model_copy(
        update={
            "request_id": approval.request_id if approval else "",
            "plan_hash": approval.plan_hash if approval else "",
        }
    )
    label = ticket_label(ref)
    try:
        record = await service.decide(ref, decision)
    except TicketNotFound as closed:
        if before.outcome is None:
            raise
        raise CliError(finished_already(label, before)) from closed
    if record is None:
        console.print(f"No worker answered; the decision on {label} was sent and is judged when one is back.")
        return 0
    if not record.accepted:
        if before.outcome is not None:  # the run is still settling its last messages: the same answer as once closed
            raise CliError(finished_already(label, before))
        raise CliError(f"The ticket did not count the decision: {record.reason}.")
    verb = "Sent back for a new plan" if decision.replan else ("Approved" if decision.approve else "Rejected")
    console.print(f"{verb}: {label} as {escape(decision.decider)}.")
    assert approval is not None  # the decision counted, so it was for the pending request
    after = await service.status(ref)
    if decision.approve and not moved_on(after, approval.request_id) and after.approvals_needed > 0:
        got, needed = len(after.approved_by), approval.required_approvals
        console.print(f"{label} has {got} of {needed} approvals; it waits for more.")
        return 0
    if not wait:
        if after.outcome is not None:
            console.print(outcome_panel(after.outcome))
        else:
            next_step = (
                "the planner gets your feedback"
                if decision.replan
                else ("the plan runs now" if decision.approve else "the ticket ends as rejected")
            )
            console.print(f"Decision counted: {next_step}. Follow it with: agent-ticket show {label}")
        return 0

    def settled(now: TicketStatus) -> bool:
        if now.outcome is not None:
            return True
        return decision.replan and now.pending_approval and moved_on(now, approval.request_id)

    final = await wait_for_ticket(service, ref, console, until=settled, seen_stage=after.stage)
    return report_progress(final)
