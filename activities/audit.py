"""The `record_event` activity: append to the audit log and keep the ticket's row current.

Both writes share one transaction, and each event carries the key of the activity that
recorded it (`detail["activity_key"]`), so a retried attempt finds its own earlier write
and appends nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.models import RecordEventInput, Stage
from core.names import ACTIVITY_RECORD_EVENT, short_id_from, ticket_label, workflow_id_for
from core.schema import AuditEventRow, TicketRow, utcnow

logger = logging.getLogger(__name__)

ACTIVITY_KEY = "activity_key"
ERROR_UNKNOWN_TICKET = "UnknownTicket"


def activity_key() -> str | None:
    """Identifies this activity across its retries: workflow, run and activity id (not attempt)."""
    try:
        info = activity.info()
    except RuntimeError:  # called outside an activity: nothing to deduplicate against
        return None
    return f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}"


class AuditActivities:
    """Writes the app DB's audit log; receives the app DB session factory."""

    def __init__(self, app_sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = app_sessions

    @activity.defn(name=ACTIVITY_RECORD_EVENT)
    async def record_event(self, event: RecordEventInput) -> None:
        ticket_id = short_id_from(event.ticket_id)
        key = activity_key()
        try:
            written = await self._record(ticket_id, event, key)
        except sa_exc.IntegrityError:
            # Two attempts created the ticket at once; the loser retries and sees the winner's row.
            written = await self._record(ticket_id, event, key)
        label = ticket_label(ticket_id)
        if written:
            logger.info("%s: audit %s: %s", label, event.kind.value, event.summary)
        else:
            logger.info("%s: audit %s already recorded by an earlier attempt", label, event.kind.value)

    async def _record(self, ticket_id: str, event: RecordEventInput, key: str | None) -> bool:
        """One transaction: update (and so lock) the ticket, skip a duplicate, else append."""
        now = utcnow()
        async with self._sessions() as session:
            # The update comes first so that it takes the row's write lock before the duplicate check.
            changes: dict[str, Any] = {"updated_at": now, **_ticket_changes(event)}
            updated = await session.execute(
                update(TicketRow)
                .where(TicketRow.ticket_id == ticket_id)
                .values(**changes)
                .execution_options(synchronize_session=False)
            )
            if getattr(updated, "rowcount", 0) == 0:
                session.add(_new_ticket(ticket_id, event, now))
                await session.flush()  # the ticket row must exist before the event that refers to it
            elif key is not None and await _already_recorded(session, ticket_id, event, key):
                await session.rollback()
                return False
            detail = dict(event.detail)
            if key is not None:
                detail[ACTIVITY_KEY] = key
            session.add(
                AuditEventRow(
                    ticket_id=ticket_id,
                    kind=event.kind.value,
                    actor=event.actor,
                    source=event.source,
                    summary=event.summary,
                    detail=detail,
                    created_at=now,
                )
            )
            await session.commit()
        return True


def _ticket_changes(event: RecordEventInput) -> dict[str, Any]:
    """Stage, status and risk, only those the event carries."""
    changes: dict[str, Any] = {}
    if event.stage is not None:
        changes["stage"] = event.stage.value
    if event.status is not None:
        changes["status"] = event.status
    if event.risk is not None:
        changes["risk"] = event.risk.value
    return changes


def _new_ticket(ticket_id: str, event: RecordEventInput, now: datetime) -> TicketRow:
    """The ticket's row, built from the first event, which must carry the request."""
    request = event.request
    if request is None:
        raise ApplicationError(
            f"{ticket_label(ticket_id)}: no ticket row exists and event {event.kind.value} carries no request; "
            "the first event of a ticket must carry it",
            type=ERROR_UNKNOWN_TICKET,
            non_retryable=True,
        )
    stage = (event.stage or Stage.RECEIVED).value
    return TicketRow(
        ticket_id=ticket_id,
        workflow_id=workflow_id_for(ticket_id),
        requester=request.requester,
        source=request.source.value,
        channel=request.channel,
        text=request.text,
        stage=stage,
        status=event.status or stage,
        risk=event.risk.value if event.risk else None,
        created_at=now,
        updated_at=now,
    )


async def _already_recorded(session: AsyncSession, ticket_id: str, event: RecordEventInput, key: str) -> bool:
    """Whether an earlier attempt of this activity appended its event (same ticket, kind and key)."""
    details = await session.scalars(
        select(AuditEventRow.detail).where(AuditEventRow.ticket_id == ticket_id, AuditEventRow.kind == event.kind.value)
    )
    return any(isinstance(detail, dict) and detail.get(ACTIVITY_KEY) == key for detail in details)
