"""Reading a ticket's state for the dashboard: the workflow's `status` query, then the app DB.

The workflow is the authority on a ticket's state; the app DB holds the list, the audit log
and what is left once Temporal no longer has the workflow (retention) or does not answer.
Answers for live updates are cached for a moment, so many open pages cost one query per ticket
a second, not one each; a page load always asks afresh.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.service import RPCError

from core.models import TicketStatus
from core.names import ticket_label
from core.schema import AuditEventRow, TicketRow
from service.tickets import TicketNotFound, TicketService

logger = logging.getLogger(__name__)

QUERY_TIMEOUT_SECONDS = 5.0
CACHE_SECONDS = 0.5
MAX_CACHED = 1000


class TemporalUnavailable(Exception):
    """The status query did not answer (no worker, server down, time-out); the message says how."""


@dataclass
class TicketSnapshot:
    """Everything the ticket page shows; `status` is None when only the app DB could answer."""

    short_id: str
    status: TicketStatus | None
    row: TicketRow | None
    audit: list[AuditEventRow] = field(default_factory=list)
    notice: str | None = None


class TicketReader:
    def __init__(
        self,
        service: TicketService,
        app_sessions: async_sessionmaker[AsyncSession],
        query_timeout: float = QUERY_TIMEOUT_SECONDS,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._service = service
        self._sessions = app_sessions
        self._timeout = query_timeout
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, TicketStatus]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def status(self, short_id: str, *, fresh: bool = False) -> TicketStatus:
        """The workflow's answer, at most `cache_seconds` old unless `fresh` (then it refills the cache).

        Raises `TicketNotFound` when Temporal has no such workflow, `TemporalUnavailable` when
        it cannot answer.
        """
        if not fresh:
            cached = self._cached(short_id)
            if cached is not None:
                return cached
        lock = self._locks.setdefault(short_id, asyncio.Lock())
        async with lock:
            if not fresh:
                cached = self._cached(short_id)
                if cached is not None:
                    return cached
            status = await self._query(short_id)
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
                self._locks = {short_id: lock}
            self._cache[short_id] = (self._clock() + self._cache_seconds, status)
            return status

    def _cached(self, short_id: str) -> TicketStatus | None:
        entry = self._cache.get(short_id)
        return entry[1] if entry and entry[0] > self._clock() else None

    async def _query(self, short_id: str) -> TicketStatus:
        try:
            return await asyncio.wait_for(self._service.status(short_id), timeout=self._timeout)
        except TicketNotFound:
            raise
        except TimeoutError as error:
            logger.warning("%s: status query timed out after %.0fs", ticket_label(short_id), self._timeout)
            raise TemporalUnavailable(await self._service.why_unanswered(short_id)) from error
        except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError) as error:
            logger.warning("%s: status query failed: %s", ticket_label(short_id), error)
            raise TemporalUnavailable(await self._service.why_unanswered(short_id)) from error

    async def row(self, short_id: str) -> TicketRow | None:
        async with self._sessions() as session:
            return await session.get(TicketRow, short_id)

    async def snapshot(self, short_id: str) -> TicketSnapshot:
        """The ticket from Temporal and the app DB; `TicketNotFound` only when neither knows it."""
        row = await self.row(short_id)
        notice = None
        status: TicketStatus | None = None
        try:
            status = await self.status(short_id, fresh=True)
        except TicketNotFound:
            if row is None:
                raise
            notice = "Temporal no longer holds this ticket's workflow; showing the app database's record."
        except TemporalUnavailable as error:
            if row is None:
                raise
            notice = f"Temporal did not answer ({error}); showing the app database's record, which may lag."
        audit = await self._service.audit_trail(short_id)
        return TicketSnapshot(short_id, status, row, audit, notice)

    async def tickets(self, status: str | None, risk: str | None, limit: int) -> list[TicketRow]:
        return await self._service.list_tickets(status=status, risk=risk, limit=limit)
