"""Recording audit events, one or a batch: one transaction, ticket row kept current, retries append nothing."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.exceptions import ApplicationError

from activities.audit import ACTIVITY_KEY, AuditActivities
from core.bootstrap import Databases
from core.models import AuditEventKind, RecordEventInput, RecordEventsInput, Risk, Stage, TicketRequest, TicketSource
from core.schema import TicketRow
from tests.activities.conftest import activity_env, audit_events

REQUEST = TicketRequest(
    text="upgrade acme-corp to the pro plan", requester="U123", source=TicketSource.SLACK, channel="C42"
)


async def _record(dbs: Databases, event: RecordEventInput, activity_id: str, attempt: int = 1) -> None:
    await _record_batch(dbs, [event], activity_id, attempt)


async def _record_batch(
    dbs: Databases, events: list[RecordEventInput], activity_id: str, attempt: int = 1, batch_key: str = ""
) -> None:
    batch = RecordEventsInput(events=events, batch_key=batch_key)
    await activity_env(activity_id, attempt).run(AuditActivities(dbs.app_transactions).record_events, batch)


async def _ticket(dbs: Databases, ticket_id: str = "abc") -> TicketRow | None:
    async with dbs.app_sessions() as session:
        return await session.get(TicketRow, ticket_id)


SUBMITTED = RecordEventInput(
    ticket_id="abc", kind=AuditEventKind.SUBMITTED, summary="submitted via slack", request=REQUEST, stage=Stage.RECEIVED
)


async def test_first_event_creates_the_ticket(dbs: Databases) -> None:
    await _record(dbs, SUBMITTED, "1")
    ticket = await _ticket(dbs)
    assert ticket is not None
    assert (ticket.workflow_id, ticket.requester, ticket.source, ticket.channel, ticket.text) == (
        "ticket-abc",
        "U123",
        "slack",
        "C42",
        REQUEST.text,
    )
    assert (ticket.stage, ticket.status, ticket.risk) == ("received", "received", None)
    [event] = await audit_events(dbs)
    assert (event.kind, event.summary) == ("submitted", "submitted via slack")
    assert event.detail[ACTIVITY_KEY] == "ticket-abc/test-run/1"


async def test_later_events_update_only_what_they_carry(dbs: Databases) -> None:
    await _record(dbs, SUBMITTED, "1")
    validated = RecordEventInput(
        ticket_id="abc",
        kind=AuditEventKind.VALIDATED,
        summary="high risk",
        stage=Stage.VALIDATING,
        status="validating",
        risk=Risk.HIGH,
        detail={"plan_hash": "0123456789abcdef"},
    )
    await _record(dbs, validated, "5")
    decided = RecordEventInput(
        ticket_id="T-abc", kind=AuditEventKind.DECISION_ACCEPTED, actor="alice", source="slack", summary="approved"
    )
    await _record(dbs, decided, "6")
    ticket = await _ticket(dbs)
    assert ticket is not None
    assert (ticket.stage, ticket.status, ticket.risk) == ("validating", "validating", "high")
    assert ticket.updated_at >= ticket.created_at
    events = await audit_events(dbs)
    assert [(e.kind, e.actor) for e in events] == [
        ("submitted", None),
        ("validated", None),
        ("decision_accepted", "alice"),
    ]
    assert events[1].detail["plan_hash"] == "0123456789abcdef"


async def test_retried_attempt_appends_nothing(dbs: Databases) -> None:
    await _record(dbs, SUBMITTED, "1", attempt=1)
    await _record(dbs, SUBMITTED, "1", attempt=2)
    planned = RecordEventInput(ticket_id="abc", kind=AuditEventKind.PLANNED, summary="plan", stage=Stage.PLANNING)
    await _record(dbs, planned, "3", attempt=1)
    await _record(dbs, planned, "3", attempt=3)
    assert [e.kind for e in await audit_events(dbs)] == ["submitted", "planned"]
    await _record(dbs, planned, "4")  # the same kind from another activity is a new event
    assert [e.kind for e in await audit_events(dbs)] == ["submitted", "planned", "planned"]


async def test_concurrent_attempts_append_once(dbs: Databases) -> None:
    await _record(dbs, SUBMITTED, "1")
    reminder = RecordEventInput(ticket_id="abc", kind=AuditEventKind.REMINDER_SENT, summary="reminded")
    await asyncio.gather(*(_record(dbs, reminder, "9", attempt=n) for n in (1, 2, 3)))
    assert [e.kind for e in await audit_events(dbs)] == ["submitted", "reminder_sent"]


async def test_concurrent_first_events_create_one_ticket(dbs: Databases) -> None:
    await asyncio.gather(*(_record(dbs, SUBMITTED, "1", attempt=n) for n in (1, 2)))
    assert [e.kind for e in await audit_events(dbs)] == ["submitted"]


async def test_event_for_unknown_ticket_without_request_is_refused(dbs: Databases) -> None:
    orphan = RecordEventInput(ticket_id="nope", kind=AuditEventKind.PLANNED, summary="plan")
    with pytest.raises(ApplicationError) as caught:
        await _record(dbs, orphan, "1")
    assert caught.value.non_retryable and "T-nope" in caught.value.message
    assert await _ticket(dbs, "nope") is None
    assert await audit_events(dbs, "nope") == []


PLANNED = RecordEventInput(ticket_id="abc", kind=AuditEventKind.PLANNED, summary="plan", stage=Stage.PLANNING)
VALIDATED = RecordEventInput(
    ticket_id="abc", kind=AuditEventKind.VALIDATED, summary="low risk", stage=Stage.VALIDATING, risk=Risk.LOW
)
DECIDED = RecordEventInput(
    ticket_id="abc", kind=AuditEventKind.DECIDED, summary="runs without approval", stage=Stage.VALIDATING
)


async def test_a_batch_creates_the_ticket_and_leaves_it_as_its_last_event_did(dbs: Databases) -> None:
    await _record_batch(dbs, [SUBMITTED, PLANNED, VALIDATED], "1")
    ticket = await _ticket(dbs)
    assert ticket is not None
    assert (ticket.stage, ticket.status, ticket.risk) == ("validating", "validating", "low")
    events = await audit_events(dbs)
    assert [e.kind for e in events] == ["submitted", "planned", "validated"]
    assert {e.detail[ACTIVITY_KEY] for e in events} == {"ticket-abc/test-run/1"}


async def test_a_batch_on_an_existing_ticket_appends_in_order(dbs: Databases) -> None:
    await _record_batch(dbs, [SUBMITTED], "1")
    await _record_batch(dbs, [PLANNED, VALIDATED, DECIDED], "4")
    ticket = await _ticket(dbs)
    assert ticket is not None
    assert (ticket.stage, ticket.risk) == ("validating", "low")  # DECIDED carries no risk: VALIDATED's stays
    assert [e.kind for e in await audit_events(dbs)] == ["submitted", "planned", "validated", "decided"]


async def test_a_retried_batch_appends_nothing(dbs: Databases) -> None:
    await _record_batch(dbs, [SUBMITTED], "1")
    await _record_batch(dbs, [PLANNED, VALIDATED], "4", attempt=1)
    await asyncio.gather(*(_record_batch(dbs, [PLANNED, VALIDATED], "4", attempt=n) for n in (2, 3)))
    assert [e.kind for e in await audit_events(dbs)] == ["submitted", "planned", "validated"]


async def test_a_failed_batch_writes_none_of_its_events(dbs: Databases) -> None:
    orphan = RecordEventInput(ticket_id="nope", kind=AuditEventKind.PLANNED, summary="plan")
    with pytest.raises(ApplicationError):
        await _record_batch(dbs, [orphan, PLANNED.model_copy(update={"ticket_id": "nope"})], "1")
    assert await _ticket(dbs, "nope") is None
    assert await audit_events(dbs, "nope") == []


async def test_a_batch_the_workflow_keyed_is_appended_once_by_its_local_try_and_its_durable_retry(
    dbs: Databases,
) -> None:
    # The local try committed but its answer was lost; the durable retry is another activity.
    await _record_batch(dbs, [SUBMITTED], "local-1", batch_key="run-1/1")
    await _record_batch(dbs, [SUBMITTED], "durable-9", batch_key="run-1/1")
    events = await audit_events(dbs)
    assert [event.kind for event in events] == ["submitted"]
    assert events[0].detail[ACTIVITY_KEY] == "run-1/1"


def test_a_batch_is_one_ticket_and_not_empty() -> None:
    with pytest.raises(ValueError, match="one ticket"):
        RecordEventsInput(events=[SUBMITTED, PLANNED.model_copy(update={"ticket_id": "other"})])
    with pytest.raises(ValueError):
        RecordEventsInput(events=[])


async def test_what_no_person_types_is_recorded_escaped_and_the_write_goes_through(dbs: Databases) -> None:
    """PostgreSQL refuses a NUL and UTF-8 a lone surrogate on every try: a batch holding one once waited for good."""
    await _record(dbs, SUBMITTED, "1")
    hostile = RecordEventInput(
        ticket_id="abc",
        kind=AuditEventKind.DECISION_IGNORED,
        actor="mallory\x00",
        summary="mallory\x00 approved (ignored: \ud800 \u202e)",
        detail={"comment\x00": ["a\x00", {"b": "\ud800"}], "line": "one\ntwo\tthree"},
    )
    await _record(dbs, hostile, "2")
    await _record(dbs, hostile, "2", attempt=2)  # a retry still finds its own write

    events = await audit_events(dbs)
    assert [event.kind for event in events] == ["submitted", "decision_ignored"]
    recorded = events[1]
    assert recorded.actor == "mallory\\u0000"
    assert recorded.summary == "mallory\\u0000 approved (ignored: \\ud800 \\u202e)"
    assert recorded.detail["comment\\u0000"] == ["a\\u0000", {"b": "\\ud800"}]
    assert recorded.detail["line"] == "one\ntwo\tthree"


async def test_an_escaped_value_is_cut_to_its_column_not_refused(dbs: Databases) -> None:
    """Escaping lengthens a value; PostgreSQL refuses one longer than its column on every try (red team 14)."""
    long_actor = "x" * 190 + "\x00" * 3  # 193 characters, 208 once escaped: the column holds 200
    await _record(dbs, SUBMITTED, "1")
    await _record(dbs, RecordEventInput(ticket_id="abc", kind=AuditEventKind.DECISION_IGNORED, actor=long_actor), "2")

    recorded = (await audit_events(dbs))[1]
    assert recorded.actor is not None and len(recorded.actor) == 200
    assert recorded.actor.startswith("x" * 190 + "\\u0000") and recorded.actor.endswith("…")


async def test_content_the_database_refuses_is_refused_for_good_not_retried(dbs: Databases) -> None:
    """A value no try can store (NaN in PostgreSQL's JSON) fails the batch for good, so the ticket is not held."""
    await _record(dbs, SUBMITTED, "1")
    odd = RecordEventInput(ticket_id="abc", kind=AuditEventKind.EXECUTED, detail={"rows": float("nan")})
    if dbs.app_engine.dialect.name == "sqlite":
        await _record(dbs, odd, "2")  # SQLite keeps it as text
        assert [event.kind for event in await audit_events(dbs)] == ["submitted", "executed"]
        return
    with pytest.raises(ApplicationError) as refused:
        await _record(dbs, odd, "2")
    assert refused.value.non_retryable and refused.value.type == "AuditContentRefused"
