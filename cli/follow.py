"""Following a ticket from the terminal until it needs a person or has finished.

The CLI never keeps its own copy of a ticket: it asks the workflow's `status` query, so what
it shows is what Slack and the dashboard show. A query needs a worker to answer, so a
missing worker is reported as such instead of looking like a hang.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from rich.console import Console
from temporalio.client import WorkflowExecutionStatus, WorkflowQueryFailedError
from temporalio.service import RPCError

from cli.styles import STAGE_TEXT
from core.models import Stage, TicketStatus
from core.names import short_id_from, ticket_label
from service.tickets import TicketService

QUERY_SECONDS = 5.0
POLL_SECONDS = 0.25
NO_WORKER_HINT = "waiting for a worker to answer (is `agent-ticket dev` or `agent-ticket worker` running?)"


class WaitTimedOut(Exception):
    """The ticket did not reach the awaited state in time; it carries on regardless."""

    def __init__(self, message: str, status: TicketStatus | None) -> None:
        super().__init__(message)
        self.status = status


class TicketEnded(Exception):
    """The workflow closed without an outcome (terminated, timed out or cancelled by an operator)."""


def finished_or_needs_a_person(status: TicketStatus) -> bool:
    """What `submit --wait` waits for: an end state, or a ticket that now waits for approval."""
    return status.outcome is not None or status.pending_approval


async def query_status(service: TicketService, ticket_ref: str) -> TicketStatus | None:
    """The ticket's status, or None while no worker answers; `TicketNotFound` if it does not exist."""
    try:
        return await asyncio.wait_for(service.status(ticket_ref), QUERY_SECONDS)
    except TimeoutError:
        pass
    except (WorkflowQueryFailedError, RPCError) as error:
        description = await service.handle(ticket_ref).describe()
        if description.status not in (None, WorkflowExecutionStatus.RUNNING):
            name = description.status.name.lower().replace("_", " ")
            raise TicketEnded(f"{ticket_label(short_id_from(ticket_ref))} ended without an outcome ({name})") from error
    return None


async def wait_for_ticket(
    service: TicketService,
    ticket_ref: str,
    console: Console,
    *,
    until: Callable[[TicketStatus], bool] = finished_or_needs_a_person,
    limit_seconds: float | None = None,
    seen_stage: Stage | None = None,
) -> TicketStatus:
    """Poll the `status` query with a spinner naming the stage; print each new stage as it is reached."""
    label = ticket_label(short_id_from(ticket_ref))
    deadline = time.monotonic() + limit_seconds if limit_seconds else None
    last: TicketStatus | None = None
    with console.status(f"{label}: submitted", spinner="dots") as spinner:
        while True:
            status = await query_status(service, ticket_ref)
            if status is None:
                spinner.update(f"{label}: {NO_WORKER_HINT}")
            else:
                last = status
                if status.stage is not seen_stage:
                    seen_stage = status.stage
                    console.print(f"[dim]{label}: {STAGE_TEXT[status.stage]}[/dim]")
                if until(status):
                    return status
                spinner.update(f"{label}: {STAGE_TEXT[status.stage]}…")
            if deadline is not None and time.monotonic() >= deadline:
                where = STAGE_TEXT[last.stage] if last else "not yet picked up by a worker"
                raise WaitTimedOut(f"{label} is still {where} after {limit_seconds:g} s", last)
            await asyncio.sleep(POLL_SECONDS)
