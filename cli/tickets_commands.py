"""`submit` and `show`: file a ticket and see where it stands, for people or (`--json`) for scripts.

With `--json`, stdout carries only the JSON (the status model, as the workflow's `status`
query returns it) and everything else goes to stderr, so `agent-ticket show T-… --json | jq`
works.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError

from cli.console import console, errors, fail, print_json, validation_message
from cli.errors import EXIT_BAD_INPUT, EXIT_FAILED, CliError
from cli.follow import WaitTimedOut, query_status, wait_for_ticket
from cli.identity import NotYourMachine, UnknownIdentity, acting_user, current_user
from cli.render import approval_panel, outcome_panel, status_view
from cli.session import open_app_databases, open_session, run, settings_or_exit, ticket_ref
from cli.temporal_commands import decision_commands
from core.models import OutcomeStatus, TicketRequest, TicketSource, TicketStatus, clean_ticket_text
from core.names import ticket_label
from core.schema import AuditEventRow
from core.settings import Settings
from service.tickets import StartedTicket, TicketService, audit_trail, reverted_by


def submit(
    text: Annotated[str, typer.Argument(metavar="TEXT", help="What you need done, in plain words.")],
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the ticket until it finishes or waits for approval.")
    ] = False,
    as_user: Annotated[str | None, typer.Option("--as", help="Requester (default: your OS user).")] = None,
    channel: Annotated[str | None, typer.Option(help="Where the ticket came from, e.g. a Slack channel.")] = None,
    timeout: Annotated[
        float | None, typer.Option(min=1, help="With --wait: give up waiting after this many seconds.")
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print JSON: ticket_id, workflow_id and already_existed; with --wait, the status model."
        ),
    ] = False,
) -> None:
    """Submit a ticket. With --wait: exit 0 when done or awaiting approval, 1 if it ended otherwise."""
    settings = settings_or_exit()
    request = build_request(settings, text, as_user, channel)
    code = run(settings, _submit(settings, request, wait, timeout, as_json))
    raise typer.Exit(code)


def build_request(settings: Settings, text: str, as_user: str | None, channel: str | None) -> TicketRequest:
    """The ticket as it will start, validated before anything is contacted."""
    try:
        requester = acting_user(as_user, own_machine=settings.allow_unsigned_decisions, acts="files a ticket")
    except (UnknownIdentity, NotYourMachine) as error:
        fail(str(error), EXIT_BAD_INPUT)
    try:
        clean_ticket_text(text)
    except ValueError as error:
        fail(f"TEXT: {error}", EXIT_BAD_INPUT)
    try:
        return TicketRequest(
            text=text,
            requester=requester,
            source=TicketSource.CLI,
            channel=channel,
            approval=settings.approval_settings(),
        )
    except ValidationError as error:
        fail(validation_message(error, {"text": "TEXT", "requester": "--as", "channel": "--channel"}), EXIT_BAD_INPUT)


async def _submit(settings: Settings, request: TicketRequest, wait: bool, limit: float | None, as_json: bool) -> int:
    out = errors if as_json else console  # with --json, stdout is the JSON alone
    session = await open_session(settings)
    started = await session.service.start(request)
    label = started.label
    if started.already_existed:
        out.print(f"{label} already exists.")
    else:
        out.print(f"Submitted [bold]{label}[/bold] as {escape(request.requester)}.")
    return await follow_started(session.service, started, wait, limit, as_json)


async def follow_started(
    service: TicketService, started: StartedTicket, wait: bool, limit: float | None, as_json: bool
) -> int:
    """After a start: say how to follow it, or (`wait`) follow it until it finishes or waits for a person."""
    out = errors if as_json else console
    label = started.label
    if not wait:
        if as_json:
            print_json(
                {
                    "ticket_id": started.short_id,
                    "workflow_id": started.workflow_id,
                    "already_existed": started.already_existed,
                }
            )
        else:
            out.print(f"Follow it with: [bold]agent-ticket show {label}[/bold]")
        return 0
    try:
        status = await wait_for_ticket(service, started.short_id, out, limit_seconds=limit)
    except WaitTimedOut as timed_out:
        out.print(f"{escape(str(timed_out))}. It keeps going; follow it with: agent-ticket show {label}")
        if as_json and timed_out.status is not None:
            print_json(timed_out.status.model_dump(mode="json"))
        return EXIT_FAILED
    except asyncio.CancelledError:
        out.print(f"Stopped waiting; {label} keeps going. Follow it with: agent-ticket show {label}")
        raise
    if as_json:
        print_json(status.model_dump(mode="json"))
        return progress_code(status)
    return report_progress(status)


def progress_code(status: TicketStatus) -> int:
    """0 when done or waiting for a person, 1 when it ended any other way."""
    if status.outcome is None:
        return 0
    return 0 if status.outcome.status is OutcomeStatus.DONE else EXIT_FAILED


def report_progress(status: TicketStatus, out: Console = console) -> int:
    """Print where the ticket stands; exit 0 when done or waiting for a person, 1 otherwise."""
    if status.outcome is not None:
        out.print(outcome_panel(status.outcome))
        return progress_code(status)
    panel = approval_panel(status)
    if panel is not None:
        risk = status.report.risk.value if status.report else "unknown"
        out.print(f"{ticket_label(status.ticket_id)} is [bold cyan]awaiting approval[/bold cyan] (risk {risk}).")
        out.print(panel)
    return 0


def show(
    ticket_id: Annotated[str, typer.Argument(metavar="ID", help="T-…, ticket-… or the short id.")],
    audit: Annotated[bool, typer.Option("--audit", help="Also print the ticket's audit log.")] = False,
    as_user: Annotated[
        str | None, typer.Option("--as", help="Who the printed `temporal` commands decide as (default: your OS user).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the status model as JSON (with --audit: {status, audit}).")
    ] = False,
) -> None:
    """Show a ticket: request, stage, plan, findings, rows affected, preview, decisions and outcome.

    While it awaits approval, also the exact `temporal` commands that decide it (docs/decisions.md).
    """
    ref = ticket_ref(ticket_id)
    try:
        decider = current_user(as_user)
    except UnknownIdentity:
        decider = "<your-name>"
    settings = settings_or_exit()
    run(settings, _show(settings, ref, audit, decider, as_json))


async def _show(settings: Settings, ref: str, audit: bool, decider: str, as_json: bool) -> None:
    session = await open_session(settings, with_databases=audit)
    try:
        status = await query_status(session.service, ref)
        if status is None:
            raise CliError(await session.service.why_unanswered(ref))
        if audit:
            events = await session.service.audit_trail(ref)
        else:  # only to say whether it was reverted since
            events = [] if as_json else await _undo_trail(settings, ref, status)
    finally:
        await session.close()
    if as_json:
        dumped = status.model_dump(mode="json")
        if audit:
            trail = [
                {"kind": e.kind, "actor": e.actor, "summary": e.summary, "at": e.created_at.isoformat()} for e in events
            ]
            print_json({"status": dumped, "audit": trail})
        else:
            print_json(dumped)
        return
    console.print(status_view(status, reverted_by(events)))
    print_decision_commands(settings, status, decider)
    for event in events if audit else []:
        actor = f" {event.actor}" if event.actor else ""
        line = escape(f"{event.kind}{actor}: {event.summary}")
        console.print(f"[dim]{event.created_at:%Y-%m-%d %H:%M:%S}[/dim] {line}")


async def _undo_trail(settings: Settings, ref: str, status: TicketStatus) -> list[AuditEventRow]:
    """The audit trail of a ticket whose change may have been reverted since, if the app DB is at hand."""
    outcome = status.outcome
    if outcome is None or outcome.execution is None or outcome.execution.rows_changed == 0:
        return []
    try:
        databases = open_app_databases(settings)
    except CliError:  # no app DB here: `show` still shows what Temporal knows
        return []
    try:
        return await audit_trail(databases.app_sessions, ref)
    except SQLAlchemyError as error:
        errors.print(f"[dim]The audit log is unavailable, so a revert of it is not shown: {escape(str(error))}[/dim]")
        return []
    finally:
        await databases.close()


def print_decision_commands(settings: Settings, status: TicketStatus, decider: str) -> None:
    """Each command on one unwrapped line, so it can be copied from the terminal as is."""
    commands = decision_commands(settings, status, decider)
    if not commands:
        return
    console.print(
        "Any Temporal client can decide too (docs/decisions.md). Unsigned, these count only where the worker "
        "runs with ALLOW_UNSIGNED_DECISIONS=true, as under `agent-ticket dev`; elsewhere they are recorded "
        "as ignored.",
        style="dim",
        markup=False,
    )
    for command in commands:
        console.print(f"# {command.purpose}", style="dim", markup=False, highlight=False)
        console.print(command.line, soft_wrap=True, markup=False, highlight=False)
