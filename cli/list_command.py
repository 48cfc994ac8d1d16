"""`list`: tickets from the app database, which answers even while Temporal is down."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy.exc import SQLAlchemyError

from cli.console import console, fail, print_json
from cli.errors import EXIT_BAD_INPUT, CliError
from cli.session import open_app_databases, run, settings_or_exit
from cli.ticket_list import tickets_table
from core.models import OutcomeStatus, Risk, Stage
from core.schema import TicketRow
from core.settings import Settings
from service import tickets

LIST_STATUSES = [stage.value for stage in Stage if stage is not Stage.FINISHED] + [s.value for s in OutcomeStatus]
LIST_RISKS = [risk.value for risk in Risk]


def list_tickets(
    status: Annotated[str | None, typer.Option(help=f"Only tickets in this state: {', '.join(LIST_STATUSES)}.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many tickets.")] = 50,
    risk: Annotated[str | None, typer.Option(help=f"Only tickets of this risk: {', '.join(LIST_RISKS)}.")] = None,
    requester: Annotated[str | None, typer.Option(help="Only tickets filed by this person.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as a JSON list (for scripts).")] = False,
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
    who = requester.strip() if requester else None
    run(settings, _list(settings, wanted, limit, wanted_risk, who, as_json))


def row_json(row: TicketRow) -> dict[str, Any]:
    """A ticket row as JSON: every column, times in ISO 8601."""
    values = {column.key: getattr(row, column.key) for column in TicketRow.__table__.columns}
    return {key: value.isoformat() if hasattr(value, "isoformat") else value for key, value in values.items()}


async def _list(
    settings: Settings, status: str | None, limit: int, risk: str | None, requester: str | None, as_json: bool
) -> None:
    databases = open_app_databases(settings)
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
    if as_json:
        print_json([row_json(row) for row in rows])
        return
    if not rows:
        filters = ", ".join(
            f"{name} {value}" for name, value in (("status", status), ("risk", risk), ("requester", requester)) if value
        )
        console.print("No tickets" + (f" with {filters}." if filters else " yet."))
        return
    console.print(tickets_table(rows, console.width))
