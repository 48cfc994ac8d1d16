"""The audit activities: append to the audit log and keep the ticket's row current.

`record_events` writes a batch of one ticket's events. The appends and the row update share
one transaction, and each event carries the key of its batch (`detail["activity_key"]`): the
key the workflow gave the batch, the same for its local tries and its durable retries, or
else the activity's own. A retried attempt finds its own earlier write and appends nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, insert, select, update
from sqlalchemy import exc as sa_exc
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.models import AuditEventKind, RecordEventInput, RecordEventsInput, Stage
from core.models.text import escape_hidden
from core.names import ACTIVITY_RECORD_EVENTS, AUDIT_EVENT_KEY, short_id_from, ticket_label, workflow_id_for
from core.schema import AuditEventRow, TicketRow, utcnow
from core.transactions import TransactionRunner

logger = logging.getLogger(__name__)

ACTIVITY_KEY = "activity_key"
# Each event's own identity, given by the workflow (workflows/audit_log.py): the same event has the
# same key whichever batch carries it, so a batch re-formed after a lost workflow task appends only
# the events that are not on record yet.
EVENT_KEY = AUDIT_EVENT_KEY
TICKETS = cast(Table, TicketRow.__table__)
EVENTS = cast(Table, AuditEventRow.__table__)
ERROR_UNKNOWN_TICKET = "UnknownTicket"
ERROR_CONTENT_REFUSED = "AuditContentRefused"
ERROR_NOT_THIS_TICKET = "NotThisTicket"


def activity_key() -> str | None:
    """Identifies this activity across its retries: workflow, run and activity id (not attempt)."""
    try:
        info = activity.info()
    except RuntimeError:  # called outside an activity: nothing to deduplicate against
        return None
    return f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}"


class AuditActivities:
    """Writes the app DB's audit log; receives the app DB's transaction runner."""

    def __init__(self, app_transactions: TransactionRunner) -> None:
        self._transactions = app_transactions

    @activity.defn(name=ACTIVITY_RECORD_EVENTS)
    async def record_events(self, batch: RecordEventsInput) -> None:
        await self.append(batch.events, key=batch.batch_key or None, chain=batch.chain)

    async def append(self, events: Sequence[RecordEventInput], *, key: str | None = None, chain: str = "") -> None:
        """Write one ticket's events once per `key` (the batch's, else this activity's).

        With `chain` (the writing workflow's first run id), only the runs that submitted the ticket may write.
        """
        ticket_id = short_id_from(events[0].ticket_id)
        if key is None:
            key = activity_key()
        label = ticket_label(ticket_id)
        try:
            written = await self._record_racing(ticket_id, events, key, chain)
        except sa_exc.DBAPIError as error:
            if not _refused_for_content(error):
                raise
            # What the events hold is refused, and would be on every try: refused for good, not waited on.
            raise ApplicationError(
                f"{label}: the app DB refused these audit events' content: {error.orig}",
                type=ERROR_CONTENT_REFUSED,
                non_retryable=True,
            ) from error
        kinds = ", ".join(event.kind.value for event in events)
        if written:
            logger.info("%s: audit %s: %s", label, kinds, "; ".join(event.summary for event in events))
        else:
            logger.info("%s: audit %s already recorded by an earlier attempt", label, kinds)

    async def _record_racing(
        self, ticket_id: str, events: Sequence[RecordEventInput], key: str | None, chain: str
    ) -> bool:
        try:
            return await self._record(ticket_id, events, key, chain)
        except sa_exc.IntegrityError:
            # Two attempts created the ticket at once; the loser retries and sees the winner's row.
            return await self._record(ticket_id, events, key, chain)

    async def _record(self, ticket_id: str, events: Sequence[RecordEventInput], key: str | None, chain: str) -> bool:
        now = utcnow()
        return await self._transactions.run(lambda connection: _record(connection, ticket_id, events, key, now, chain))


def _record(
    connection: Connection,
    ticket_id: str,
    events: Sequence[RecordEventInput],
    key: str | None,
    now: datetime,
    chain: str = "",
) -> bool:
    """One transaction: update (and so lock) the ticket, skip a duplicate, else append every event.

    Core statements: the ORM's update, unit of work and bulk insert paths cost more CPU than the
    writes themselves, on every ticket step.
    """
    changes: dict[str, Any] = {"updated_at": now}
    for event in events:  # later events win: the row ends as the last one left it
        changes.update(_ticket_changes(event))
    # The update comes first so that it takes the row's write lock before the duplicate check.
    updated = connection.execute(update(TICKETS).where(TICKETS.c.ticket_id == ticket_id).values(changes))
    if updated.rowcount == 0:
        # The ticket row must exist before the events that refer to it.
        connection.execute(insert(TICKETS).values(fitted(TICKETS, _new_ticket(ticket_id, events[0], changes, now))))
    elif all(event.detail.get(EVENT_KEY) for event in events):
        recorded, submitted_by = _recorded_event_keys(connection, ticket_id)
        if chain and submitted_by is not None and not submitted_by.startswith(f"{chain}/"):
            # Another workflow under this ticket's id (Temporal lets a closed id start again): not its record.
            raise ApplicationError(
                f"{ticket_label(ticket_id)} was submitted by another workflow run; its record is not this run's",
                type=ERROR_NOT_THIS_TICKET,
                non_retryable=True,
            )
        events = [event for event in events if event.detail[EVENT_KEY] not in recorded]
        if not events:
            connection.rollback()
            return False
    elif key is not None and _already_recorded(connection, ticket_id, events[0], key):
        # The batch commits as a whole, so its first event stands for all of it.
        connection.rollback()
        return False
    connection.execute(insert(EVENTS), [fitted(EVENTS, _event_row(ticket_id, event, key, now)) for event in events])
    return True


def fitted(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    """`row` made storable and each string cut to its column's length: escaping lengthens what it escapes,
    and a value longer than its column is refused on every try (PostgreSQL; red team 14)."""
    row = storable(row)
    for name, value in row.items():
        length = getattr(table.c[name].type, "length", None)
        if isinstance(value, str) and length is not None and len(value) > length:
            row[name] = value[: length - 1] + "…"
    return row


def _refused_for_content(error: sa_exc.DBAPIError) -> bool:
    """A data exception (SQLSTATE class 22: too long, out of range, not valid JSON or text), not an outage."""
    sqlstate = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    return isinstance(error, sa_exc.DataError) or str(sqlstate or "").startswith("22")


def storable(value: Any) -> Any:
    """`value` with every string in it (keys too) escaped where it holds what no person types.

    An event records what came, and what came can be anything: a signal's payload is any client's.
    PostgreSQL refuses a NUL and UTF-8 a lone surrogate on every try, and the ticket would wait behind
    that batch for good (red team 13); a reader sees the escape instead of an invisible character.
    """
    if isinstance(value, str):
        return escape_hidden(value)
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    return value


def _event_row(ticket_id: str, event: RecordEventInput, key: str | None, now: datetime) -> dict[str, Any]:
    detail = dict(event.detail)
    if key is not None:
        detail[ACTIVITY_KEY] = key
    return {
        "ticket_id": ticket_id,
        "kind": event.kind.value,
        "actor": event.actor,
        "source": event.source,
        "summary": event.summary,
        "detail": detail,
        "created_at": now,
    }


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


def _new_ticket(ticket_id: str, event: RecordEventInput, changes: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The ticket's row, built from the first event, which must carry the request, then `changes`."""
    request = event.request
    if request is None:
        raise ApplicationError(
            f"{ticket_label(ticket_id)}: no ticket row exists and event {event.kind.value} carries no request; "
            "the first event of a ticket must carry it",
            type=ERROR_UNKNOWN_TICKET,
            non_retryable=True,
        )
    stage = changes.get("stage", Stage.RECEIVED.value)
    return {
        "ticket_id": ticket_id,
        "workflow_id": workflow_id_for(ticket_id),
        "requester": request.requester,
        "source": request.source.value,
        "channel": request.channel,
        "text": request.text,
        "stage": stage,
        "status": changes.get("status", stage),
        "risk": changes.get("risk"),
        "created_at": now,
        "updated_at": now,
    }


def _recorded_event_keys(connection: Connection, ticket_id: str) -> tuple[set[str], str | None]:
    """The keys of the ticket's recorded events, and the key of its `submitted` event (which names its first run)."""
    keys: set[str] = set()
    submitted_by: str | None = None
    rows = connection.execute(select(EVENTS.c.kind, EVENTS.c.detail).where(EVENTS.c.ticket_id == ticket_id))
    for kind, detail in rows:
        if isinstance(detail, dict) and detail.get(EVENT_KEY):
            keys.add(str(detail[EVENT_KEY]))
            if kind == AuditEventKind.SUBMITTED.value and submitted_by is None:
                submitted_by = str(detail[EVENT_KEY])
    return keys, submitted_by


def _already_recorded(connection: Connection, ticket_id: str, event: RecordEventInput, key: str) -> bool:
    """Whether an earlier attempt of this activity appended its event (same ticket, kind and key)."""
    details = connection.scalars(
        select(EVENTS.c.detail).where(EVENTS.c.ticket_id == ticket_id, EVENTS.c.kind == event.kind.value)
    )
    return any(isinstance(detail, dict) and detail.get(ACTIVITY_KEY) == key for detail in details)
