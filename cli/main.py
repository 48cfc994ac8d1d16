"""`agent-ticket`: run the product (`dev`, `worker`, `bot`, `init-db`) and work tickets from a terminal.

Every command validates its input before it touches anything, so a bad input prints a
clear message and starts nothing (exit 2). Failures a user can act on — a bad setting,
Temporal unreachable, an unknown ticket, a refused decision — print one message and exit 1
instead of a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError
from temporalio.service import RPCError

from cli.devserver import DevServerError, TemporalUnavailable, parse_address, try_connect
from cli.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, CliError
from cli.follow import TicketEnded, WaitTimedOut, query_status, wait_for_ticket
from cli.identity import UnknownIdentity, current_user
from cli.render import approval_panel, describe_url, outcome_panel, status_view, tickets_table
from core import tickets
from core.bootstrap import Databases, init_databases
from core.logs import json_handler, use_plain_sdk_messages
from core.migrations import MigrationError
from core.models import (
    Decision,
    DecisionSource,
    OutcomeStatus,
    Risk,
    Stage,
    TicketRequest,
    TicketSource,
    TicketStatus,
    clean_ticket_text,
)
from core.names import short_id_from, ticket_label
from core.observability.setup import start_telemetry
from core.policy import PolicyError
from core.settings import ConfigError, Settings, load_settings
from core.tickets import TicketNotFound, TicketService

T = TypeVar("T")
logger = logging.getLogger("cli")

SHORT_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
LIST_STATUSES = [stage.value for stage in Stage if stage is not Stage.FINISHED] + [s.value for s in OutcomeStatus]
LIST_RISKS = [risk.value for risk in Risk]

console = Console()
errors = Console(stderr=True, soft_wrap=True)


class AgentTicketApp(typer.Typer):
    """The console script: leaves through `os._exit` after flushing.

    The Temporal SDK's Rust bridge can abort the interpreter during its own teardown
    (sdk-python #300), which would turn a command that succeeded into exit 134.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        code = 0
        try:
            super().__call__(*args, **kwargs)
        except SystemExit as exit_:
            if isinstance(exit_.code, int) or exit_.code is None:
                code = exit_.code or 0
            else:
                errors.print(str(exit_.code))
                code = EXIT_FAILED
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


app = AgentTicketApp(
    name="agent-ticket",
    help="Chat-ops approvals for AI agents that change production data, on Temporal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


# ---------------------------------------------------------------- shared plumbing


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    errors.print(f"[bold red]Error:[/bold red] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def configure_logging(level: int, log_format: str = "text") -> None:
    """Logs go to stderr (JSON lines with LOG_FORMAT=json, else rich on a terminal and plain lines otherwise);
    the SDK's own chatter stays at warnings.

    Leaves logging alone when the host process (a test runner, an embedding app) configured it.
    """
    if logging.getLogger().handlers:
        return
    handler: logging.Handler
    if log_format == "json":
        handler = json_handler(sys.stderr)
        use_plain_sdk_messages()
    elif errors.is_terminal:
        handler = RichHandler(console=errors, show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s", datefmt="[%X]"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    logging.getLogger("temporalio").setLevel(max(level, logging.WARNING))


def settings_or_exit() -> Settings:
    """Settings from the environment and `.env`; a bad value names its variable and exits 2."""
    try:
        return load_settings()
    except ConfigError as error:
        fail(str(error), EXIT_BAD_INPUT)


def run(
    settings: Settings, coroutine: Coroutine[Any, Any, T], *, process: str = "cli", serve_metrics: bool = False
) -> T:
    """`asyncio.run` with the errors a user can act on turned into one message and an exit code.

    Telemetry (tracing when configured; the metrics port for long-running `process`es) is set up
    before the first client and flushed after the last.
    """
    try:
        telemetry = start_telemetry(settings, f"agent-ticket-{process}", serve_metrics=serve_metrics)
    except OSError as error:
        coroutine.close()
        fail(str(error))
    try:
        return asyncio.run(coroutine)
    except CliError as error:
        fail(str(error), error.code)
    except (TemporalUnavailable, DevServerError, TicketNotFound, TicketEnded, WaitTimedOut) as error:
        fail(str(error))
    except UnknownIdentity as error:
        fail(str(error), EXIT_BAD_INPUT)
    except RPCError as error:
        fail(f"Temporal at TEMPORAL_ADDRESS={settings.temporal_address} answered with an error: {error}")
    except KeyboardInterrupt:
        errors.print("Interrupted.")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        telemetry.shutdown()


def ticket_ref(value: str) -> str:
    """Accept `T-abc123`, `ticket-abc123` or `abc123`; refuse anything that cannot be a ticket id."""
    short_id = short_id_from(value)
    if not SHORT_ID_PATTERN.match(short_id):
        fail(f"{value!r} is not a ticket id (expected something like T-1a2b3c4d5e).", EXIT_BAD_INPUT)
    return short_id


def validation_message(error: ValidationError, names: dict[str, str]) -> str:
    """One line per problem, naming the argument or option as the user typed it."""
    lines = []
    for issue in error.errors():
        field = str(issue["loc"][0]) if issue["loc"] else ""
        message = str(issue["msg"]).removeprefix("Value error, ")
        lines.append(f"{names.get(field, field)}: {message}")
    return "; ".join(lines)


@dataclass
class Session:
    """A connected ticket service, with the app DB when the command needs it."""

    service: TicketService
    databases: Databases | None


async def open_session(settings: Settings, *, with_databases: bool = False) -> Session:
    client = await try_connect(settings)
    databases = Databases.open(settings) if with_databases else None
    sessions = databases.app_sessions if databases else None
    service = TicketService(client, sessions, settings.temporal_task_queue, signing_key=settings.signing_key)
    return Session(service, databases)


def install_stop_handlers(stop: asyncio.Event) -> None:
    """First Ctrl-C or SIGTERM: stop gracefully. A second one: cancel whatever is still running."""
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            errors.print("Second interrupt: stopping now.")
            if main_task is not None:
                main_task.cancel()
            return
        errors.print(f"\n{signal.Signals(signum).name} received: shutting down (again to force)…")
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        logger.debug("not the main thread: stop signals are left to the caller")
        return
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)


# ---------------------------------------------------------------- tickets


@app.command()
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
) -> None:
    """Submit a ticket. With --wait: exit 0 when done or awaiting approval, 1 if it ended otherwise."""
    settings = settings_or_exit()
    request = build_request(settings, text, as_user, channel)
    code = run(settings, _submit(settings, request, wait, timeout))
    raise typer.Exit(code)


def build_request(settings: Settings, text: str, as_user: str | None, channel: str | None) -> TicketRequest:
    """The ticket as it will start, validated before anything is contacted."""
    try:
        requester = current_user(as_user)
    except UnknownIdentity as error:
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


async def _submit(settings: Settings, request: TicketRequest, wait: bool, limit: float | None) -> int:
    session = await open_session(settings)
    started = await session.service.start(request)
    label = started.label
    if started.already_existed:
        console.print(f"{label} already exists.")
    else:
        console.print(f"Submitted [bold]{label}[/bold] as {escape(request.requester)}.")
    if not wait:
        console.print(f"Follow it with: [bold]agent-ticket show {label}[/bold]")
        return 0
    try:
        status = await wait_for_ticket(session.service, started.short_id, console, limit_seconds=limit)
    except WaitTimedOut as timed_out:
        console.print(f"{escape(str(timed_out))}. It keeps going; follow it with: agent-ticket show {label}")
        return EXIT_FAILED
    except asyncio.CancelledError:
        console.print(f"Stopped waiting; {label} keeps going. Follow it with: agent-ticket show {label}")
        raise
    return report_progress(status)


def report_progress(status: TicketStatus) -> int:
    """Print where the ticket stands; exit 0 when done or waiting for a person, 1 otherwise."""
    if status.outcome is not None:
        console.print(outcome_panel(status.outcome))
        return 0 if status.outcome.status is OutcomeStatus.DONE else EXIT_FAILED
    panel = approval_panel(status)
    if panel is not None:
        risk = status.report.risk.value if status.report else "unknown"
        console.print(f"{ticket_label(status.ticket_id)} is [bold cyan]awaiting approval[/bold cyan] (risk {risk}).")
        console.print(panel)
    return 0


@app.command()
def show(
    ticket_id: Annotated[str, typer.Argument(metavar="ID", help="T-…, ticket-… or the short id.")],
    audit: Annotated[bool, typer.Option("--audit", help="Also print the ticket's audit log.")] = False,
) -> None:
    """Show a ticket: request, stage, plan, findings, rows affected, preview, decisions and outcome."""
    settings = settings_or_exit()
    run(settings, _show(settings, ticket_ref(ticket_id), audit))


async def _show(settings: Settings, ref: str, audit: bool) -> None:
    session = await open_session(settings, with_databases=audit)
    try:
        status = await query_status(session.service, ref)
        if status is None:
            raise CliError(await session.service.why_unanswered(ref))
        console.print(status_view(status))
        if audit:
            for event in await session.service.audit_trail(ref):
                actor = f" {event.actor}" if event.actor else ""
                line = escape(f"{event.kind}{actor}: {event.summary}")
                console.print(f"[dim]{event.created_at:%Y-%m-%d %H:%M:%S}[/dim] {line}")
    finally:
        if session.databases is not None:
            await session.databases.close()


@app.command(name="list")
def list_tickets(
    status: Annotated[str | None, typer.Option(help=f"Only tickets in this state: {', '.join(LIST_STATUSES)}.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many tickets.")] = 50,
    risk: Annotated[str | None, typer.Option(help=f"Only tickets of this risk: {', '.join(LIST_RISKS)}.")] = None,
    requester: Annotated[str | None, typer.Option(help="Only tickets filed by this person.")] = None,
) -> None:
    """List tickets from the app database, pending approvals first, newest first.

    The same filters work in the Temporal Web UI, e.g. `TicketStatus="awaiting_approval" AND TicketRisk="high"`.
    """
    wanted = status.strip().lower().replace("-", "_").replace(" ", "_") if status is not None else None
    if wanted is not None and wanted not in LIST_STATUSES:
        fail(f"--status must be one of {', '.join(LIST_STATUSES)}; got {status!r}.", EXIT_BAD_INPUT)
    wanted_risk = risk.strip().lower() if risk is not None else None
    if wanted_risk is not None and wanted_risk not in LIST_RISKS:
        fail(f"--risk must be one of {', '.join(LIST_RISKS)}; got {risk!r}.", EXIT_BAD_INPUT)
    settings = settings_or_exit()
    run(settings, _list(settings, wanted, limit, wanted_risk, requester.strip() if requester else None))


async def _list(
    settings: Settings, status: str | None, limit: int, risk: str | None = None, requester: str | None = None
) -> None:
    databases = Databases.open(settings)  # the list is the app DB's: it answers while Temporal is down
    try:
        rows = await tickets.list_tickets(
            databases.app_sessions, status=status, limit=limit, risk=risk, requester=requester
        )
    except SQLAlchemyError as error:
        raise CliError(
            f"Cannot read tickets from the app database ({databases.app_engine.url!r}): "
            f"{error.__class__.__name__}. Run `agent-ticket init-db` (or `agent-ticket dev`) first."
        ) from error
    finally:
        await databases.close()
    if not rows:
        filters = ", ".join(
            f"{name} {value}" for name, value in (("status", status), ("risk", risk), ("requester", requester)) if value
        )
        console.print("No tickets" + (f" with {filters}." if filters else " yet."))
        return
    console.print(tickets_table(rows))


# ---------------------------------------------------------------- decisions


@app.command()
def approve(
    ticket_id: Annotated[str, typer.Argument(metavar="ID", help="T-…, ticket-… or the short id.")],
    comment: Annotated[str, typer.Option(help="Why you approve (kept in the audit log).")] = "",
    as_user: Annotated[str | None, typer.Option("--as", help="Approver (default: your OS user).")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the ticket until it finishes.")] = False,
) -> None:
    """Approve the plan a ticket is waiting on. The approver rules apply: you cannot approve your own ticket."""
    decide(ticket_id, approve=True, comment=comment, as_user=as_user, wait=wait)


@app.command()
def reject(
    ticket_id: Annotated[str, typer.Argument(metavar="ID", help="T-…, ticket-… or the short id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (shown to the requester).", show_default=False)],
    replan: Annotated[
        bool, typer.Option("--replan", help="Ask for a new plan instead of ending the ticket (reason = feedback).")
    ] = False,
    as_user: Annotated[str | None, typer.Option("--as", help="Approver (default: your OS user).")] = None,
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
    try:
        decider = current_user(as_user)
    except UnknownIdentity as error:
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
    record = await service.decide(ref, decision)
    if record is None:
        console.print(f"No worker answered; the decision on {label} was sent and is judged when one is back.")
        return 0
    if not record.accepted:
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


# ---------------------------------------------------------------- dashboard accounts


@app.command(name="hash-password")
def hash_password_command(
    from_stdin: Annotated[
        bool, typer.Option("--stdin", help="Read the password from the first line of stdin (for scripts).")
    ] = False,
    user: Annotated[str | None, typer.Option(help="Also print a DASHBOARD_USERS entry for this sign-in name.")] = None,
    approver: Annotated[
        str | None, typer.Option(help="With --user: the approver identity they decide as (default: the name).")
    ] = None,
) -> None:
    """Make an argon2 hash for DASHBOARD_USERS; the password itself is never stored anywhere."""
    from bot.dashboard.auth import hash_password
    from core.accounts import DashboardAccount

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        hashed = hash_password(password)
    except ValueError as error:
        fail(str(error), EXIT_BAD_INPUT)
    if user is None:
        console.print(hashed, highlight=False, soft_wrap=True)
        return
    try:
        account = DashboardAccount(username=user, approver=approver or user, password_hash=hashed)
    except ValidationError as error:
        fail(validation_message(error, {"username": "--user", "approver": "--approver"}), EXIT_BAD_INPUT)
    entry = f"{account.username}:{account.approver}:{hashed}"
    console.print(f"DASHBOARD_USERS='{entry}'", highlight=False, soft_wrap=True, markup=False)


# ---------------------------------------------------------------- running the product


@app.command(name="init-db")
def init_db() -> None:
    """Create the app tables, load the policy into the constraint table and seed the demo target DB."""
    settings = settings_or_exit()
    run(settings, _init_db(settings))


async def _init_db(settings: Settings) -> None:
    databases = Databases.open(settings)
    try:
        report = await init_databases(databases, settings)
    except (SQLAlchemyError, OSError, MigrationError, PolicyError) as error:
        raise CliError(f"Could not initialise the databases: {error}") from error
    finally:
        await databases.close()
    console.print(f"App DB ready:    {escape(describe_url(settings.app_db_url))}")
    demo = "seeded with demo data" if report.seeded_demo else "left as it was (already seeded or seeding off)"
    console.print(f"Target DB ready: {escape(describe_url(settings.target_db_url))} — {demo}")
    console.print(f"Policy loaded from {escape(str(settings.policy_file))}: {len(report.policy.tables)} table(s).")


@app.command()
def worker(
    queue: Annotated[str, typer.Option(help="Which queue(s) to poll: workflows, llm or all.")] = "all",
) -> None:
    """Run the Temporal worker(s) until Ctrl-C or SIGTERM."""
    from worker.build import QueueRole

    try:
        role = QueueRole(queue.strip().lower())
    except ValueError:
        fail(f"--queue must be one of {', '.join(r.value for r in QueueRole)}; got {queue!r}.", EXIT_BAD_INPUT)
    settings = settings_or_exit()
    configure_logging(logging.INFO, settings.log_format)
    from cli.running import run_worker_command

    run(
        settings,
        run_worker_command(settings, role, install_stop_handlers, console),
        process="worker",
        serve_metrics=True,
    )


@app.command()
def bot() -> None:
    """Run the bot (Slack endpoint, dashboard, /healthz) until Ctrl-C or SIGTERM."""
    settings = settings_or_exit()
    configure_logging(logging.INFO, settings.log_format)
    from cli.running import run_bot_command

    run(settings, run_bot_command(settings, install_stop_handlers, console), process="bot", serve_metrics=True)


@app.command()
def dev(
    startup_timeout: Annotated[
        float, typer.Option(min=1, help="Seconds to wait for the embedded Temporal server.")
    ] = 60.0,
) -> None:
    """Everything at once: embedded Temporal (unless one answers), databases, worker and bot."""
    from cli.dev_defaults import write_demo_env

    notes = write_demo_env()
    settings = settings_or_exit()
    if "allow_unsigned_decisions" not in settings.model_fields_set:
        # On your own machine, a raw `temporal workflow signal` may decide too (docs/decisions.md).
        settings = settings.model_copy(update={"allow_unsigned_decisions": True})
    try:
        parse_address(settings.temporal_address)
    except ValueError as error:
        fail(str(error), EXIT_BAD_INPUT)
    configure_logging(logging.INFO, settings.log_format)
    from cli.running import run_dev

    code = run(
        settings,
        run_dev(settings, install_stop_handlers, console, startup_timeout, notes),
        process="dev",
        serve_metrics=True,
    )
    raise typer.Exit(code)


if __name__ == "__main__":
    app()
