"""Following a ticket without reloading: `/tickets/{id}/status.json` and a server-sent event stream.

The stream checks the workflow's status about once a second (through the reader's short cache,
so many watchers cost one query) and sends an event whenever the page's version changes; it
ends when the ticket finishes, when the bot stops, or after a minute, when the browser
reconnects and the session is checked again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from bot.dashboard.deps import Dashboard, ticket_ref
from bot.dashboard.problems import NotFound, Unavailable
from bot.dashboard.reader import TemporalUnavailable
from bot.dashboard.templating import NO_STORE
from bot.dashboard.ticket_view import status_version
from core.models import TicketStatus
from core.names import ticket_label
from service.tickets import TicketNotFound

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
STREAM_SECONDS = 60.0
KEEPALIVE_SECONDS = 15.0
RECONNECT_MILLISECONDS = 2000


def status_document(status: TicketStatus) -> dict[str, Any]:
    """The small JSON a page or a script needs to know whether, and how, a ticket moved on."""
    approval = status.approval
    outcome = status.outcome
    return {
        "ticket_id": status.ticket_id,
        "label": ticket_label(status.ticket_id),
        "status": status.status_label,
        "stage": status.stage.value,
        "risk": status.report.risk.value if status.report else None,
        "finished": outcome is not None,
        "pending_approval": status.pending_approval,
        "approval": (
            {
                "request_id": approval.request_id,
                "plan_hash": approval.plan_hash,
                "deadline": approval.deadline.isoformat(),
                "required_approvals": approval.required_approvals,
            }
            if approval
            else None
        ),
        "outcome": {"status": outcome.status.value, "reason": outcome.reason} if outcome else None,
        "updated_at": status.updated_at.isoformat(),
        "version": status_version(status),
    }


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class Live:
    def __init__(self, dashboard: Dashboard) -> None:
        self._d = dashboard

    async def _stopping_within(self, seconds: float) -> bool:
        """Wait up to `seconds`; True when the bot is stopping (the stream ends so shutdown is not held up)."""
        try:
            await asyncio.wait_for(self._d.stopping.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True

    async def _status(self, short_id: str) -> TicketStatus:
        try:
            return await self._d.reader.status(short_id)
        except TicketNotFound as error:
            raise NotFound(f"There is no ticket {ticket_label(short_id)}.") from error
        except TemporalUnavailable as error:
            raise Unavailable(f"{ticket_label(short_id)}: {error}") from error

    async def status_json(self, request: Request) -> Response:
        await self._d.require_user(request)
        status = await self._status(ticket_ref(request))
        return JSONResponse(status_document(status), headers=NO_STORE)

    async def events(self, request: Request) -> Response:
        user = await self._d.require_user(request)
        short_id = ticket_ref(request)
        first = await self._status(short_id)
        logger.debug("%s: %s follows the ticket", ticket_label(short_id), user.username)
        return StreamingResponse(
            self._stream(short_id, first),
            media_type="text/event-stream",
            headers={**NO_STORE, "X-Accel-Buffering": "no"},
        )

    async def _stream(self, short_id: str, first: TicketStatus) -> AsyncIterator[str]:
        yield f"retry: {RECONNECT_MILLISECONDS}\n\n"
        document = status_document(first)
        yield _event("status", document)
        started = last_sent = time.monotonic()
        while not document["finished"] and time.monotonic() - started < STREAM_SECONDS:
            if await self._stopping_within(POLL_SECONDS):
                return
            try:
                latest = status_document(await self._d.reader.status(short_id))
            except (TicketNotFound, TemporalUnavailable) as error:
                yield _event("unavailable", {"error": str(error)})
                continue
            if latest["version"] != document["version"]:
                document = latest
                last_sent = time.monotonic()
                yield _event("status", document)
            elif time.monotonic() - last_sent > KEEPALIVE_SECONDS:
                last_sent = time.monotonic()
                yield ": keep-alive\n\n"
