"""`revert`: undo an executed ticket's change, as a new ticket through the same policy and approvals.

The revert's plan comes from the original's before-images, not from the LLM (docs/undo.md).
Whether it may run is the workflow's to judge; the command starts it and says where it stands.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from cli.console import console, errors, fail
from cli.errors import EXIT_BAD_INPUT, EXIT_FAILED
from cli.identity import NotYourMachine, UnknownIdentity, acting_user
from cli.session import open_session, run, settings_or_exit, ticket_ref
from cli.tickets_commands import follow_started
from core.models import TicketSource
from core.names import ticket_label
from core.settings import Settings
from service.tickets import CannotRevert


def revert(
    ticket_id: Annotated[str, typer.Argument(metavar="ID", help="The executed ticket to undo: T-… or its short id.")],
    include_conflicts: Annotated[
        bool,
        typer.Option(
            "--include-conflicts",
            help="Also put back rows changed by others since it ran, overwriting their change (needs approval).",
        ),
    ] = False,
    as_user: Annotated[str | None, typer.Option("--as", help="Requester (default: your OS user).")] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the revert until it finishes or waits for approval.")
    ] = False,
    timeout: Annotated[
        float | None, typer.Option(min=1, help="With --wait: give up waiting after this many seconds.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON: as `submit --json` does, for the revert ticket.")
    ] = False,
) -> None:
    """Revert an executed ticket: put the rows it changed back as they were, after the approvals it needs.

    Rows changed by someone else since block the revert unless --include-conflicts asks to overwrite them.
    """
    ref = ticket_ref(ticket_id)
    settings = settings_or_exit()
    try:
        requester = acting_user(as_user, own_machine=settings.allow_unsigned_decisions, acts="asks for a revert")
    except (UnknownIdentity, NotYourMachine) as error:
        fail(str(error), EXIT_BAD_INPUT)
    raise typer.Exit(run(settings, _revert(settings, ref, requester, include_conflicts, wait, timeout, as_json)))


async def _revert(
    settings: Settings,
    ref: str,
    requester: str,
    include_conflicts: bool,
    wait: bool,
    limit: float | None,
    as_json: bool,
) -> int:
    out = errors if as_json else console
    session = await open_session(settings)
    try:
        started = await session.service.revert(
            ref,
            requester,
            approval=settings.approval_settings(),
            source=TicketSource.CLI,
            include_conflicts=include_conflicts,
        )
    except CannotRevert as refused:
        out.print(f"[red]Cannot revert:[/red] {escape(str(refused))}")
        return EXIT_FAILED
    out.print(f"Submitted [bold]{started.label}[/bold], which reverts {ticket_label(ref)}, as {escape(requester)}.")
    return await follow_started(session.service, started, wait, limit, as_json)
