"""The notify activity with the audit writes it makes around a notification (tickets with `record_delivery`)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from activities.audit import AuditActivities
from activities.notify import NotifyActivities
from core.bootstrap import Databases
from core.models import NotifyEvent, NotifyInput, NotifyResult, Stage, TicketOutcome, TicketStatus
from core.models import OutcomeStatus as Outcome
from tests.activities.conftest import activity_env, audit_events
from tests.activities.test_audit import DECIDED, REQUEST, SUBMITTED


class FlakyNotifier:
    """Raises (meaning "try again") on the attempts listed, then answers `result`."""

    def __init__(self, result: NotifyResult, failing_attempts: int = 0) -> None:
        self.result = result
        self.failing_attempts = failing_attempts
        self.published: list[NotifyEvent] = []

    async def publish(self, event: NotifyEvent, status: TicketStatus) -> NotifyResult:
        self.published.append(event)
        if len(self.published) <= self.failing_attempts:
            raise ConnectionError("Slack did not answer")
        return self.result


NOW = datetime(2026, 11, 28, tzinfo=UTC)
FINISHED = TicketStatus(
    ticket_id="abc",
    workflow_id="ticket-abc",
    request=REQUEST,
    stage=Stage.FINISHED,
    created_at=NOW,
    updated_at=NOW,
    outcome=TicketOutcome(status=Outcome.DONE, reason="executed", finished_at=NOW),
)


async def _notify(dbs: Databases, notifier: FlakyNotifier, input: NotifyInput, attempt: int) -> NotifyResult:
    activities = NotifyActivities(notifier, AuditActivities(dbs.app_sessions))
    result: NotifyResult = await activity_env("7", attempt).run(activities.notify_ticket, input)
    return result


async def test_queued_events_are_written_before_and_the_delivery_after(dbs: Databases) -> None:
    notifier = FlakyNotifier(NotifyResult(delivered=True))
    outcome = NotifyInput(event=NotifyEvent.OUTCOME, status=FINISHED, events=[SUBMITTED], record_delivery=True)
    assert (await _notify(dbs, notifier, outcome, attempt=1)).delivered
    events = await audit_events(dbs)
    assert [(e.kind, e.summary) for e in events] == [
        ("submitted", "submitted via slack"),
        ("notified", "requester told the outcome"),
    ]
    assert events[1].detail["activity_key"] == "ticket-abc/test-run/7#delivery"


async def test_a_retried_notification_writes_each_event_once(dbs: Databases) -> None:
    notifier = FlakyNotifier(NotifyResult(delivered=False, error="channel_not_found"), failing_attempts=1)
    stage = NotifyInput(event=NotifyEvent.STAGE, status=FINISHED, events=[SUBMITTED, DECIDED], record_delivery=True)
    with pytest.raises(ConnectionError):
        await _notify(dbs, notifier, stage, attempt=1)
    assert [e.kind for e in await audit_events(dbs)] == ["submitted", "decided"]  # written before the publish failed
    assert not (await _notify(dbs, notifier, stage, attempt=2)).delivered
    await _notify(dbs, notifier, stage, attempt=3)  # a third attempt, as after a lost completion
    assert [(e.kind, e.summary) for e in await audit_events(dbs)] == [
        ("submitted", "submitted via slack"),
        ("decided", "runs without approval"),
        ("notify_failed", "notification failed: channel_not_found"),
    ]


async def test_older_tickets_notifications_write_nothing(dbs: Databases) -> None:
    notifier = FlakyNotifier(NotifyResult(delivered=True))
    await _notify(dbs, notifier, NotifyInput(event=NotifyEvent.OUTCOME, status=FINISHED), attempt=1)
    assert notifier.published == [NotifyEvent.OUTCOME]
    assert await audit_events(dbs) == []
