"""The notify activity: it hands the notifier the status it carries, or on a retry the workflow's newest."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from activities.notify import LogNotifier, NotifyActivities
from core.models import NotifyEvent, NotifyInput, NotifyPost, NotifyResult, Stage, TicketOutcome, TicketStatus
from core.models import OutcomeStatus as Outcome
from tests.activities.conftest import activity_env
from tests.activities.test_audit import REQUEST

NOW = datetime(2026, 11, 28, tzinfo=UTC)
NEWEST = TicketStatus(
    ticket_id="abc",
    workflow_id="ticket-abc",
    request=REQUEST,
    stage=Stage.FINISHED,
    created_at=NOW,
    updated_at=NOW,
    outcome=TicketOutcome(status=Outcome.DONE, reason="executed", finished_at=NOW),
    message_version=7,
)


class RecordingNotifier:
    def __init__(self) -> None:
        self.seen: list[tuple[Stage, list[str]]] = []

    async def publish(self, status: TicketStatus, posts: list[NotifyPost]) -> NotifyResult:
        self.seen.append((status.stage, [post.key for post in posts]))
        return NotifyResult(delivered=True, posted=[post.key for post in posts])


async def newest_status(workflow_id: str) -> TicketStatus:
    assert workflow_id == "ticket-abc"
    return NEWEST


async def test_the_newest_status_is_delivered_and_its_version_reported() -> None:
    notifier = RecordingNotifier()
    outcome = NotifyPost(kind=NotifyEvent.OUTCOME, key="outcome-0-0")
    input = NotifyInput(ticket_id="abc", workflow_id="ticket-abc", posts=[outcome])

    result: NotifyResult = await activity_env("7").run(NotifyActivities(notifier, newest_status).notify_ticket, input)

    assert notifier.seen == [(Stage.FINISHED, ["outcome-0-0"])]
    assert (result.delivered, result.version, result.posted) == (True, 7, ["outcome-0-0"])


async def no_query(workflow_id: str) -> TicketStatus:
    raise AssertionError("a first attempt sends the status it carries; it does not query the workflow")


async def test_a_first_attempt_sends_the_status_it_carries_without_asking_the_workflow() -> None:
    notifier = RecordingNotifier()
    carried = NEWEST.model_copy(update={"stage": Stage.PLANNING, "outcome": None, "message_version": 3})
    input = NotifyInput(ticket_id="abc", workflow_id="ticket-abc", status=carried)

    result: NotifyResult = await activity_env("7").run(NotifyActivities(notifier, no_query).notify_ticket, input)

    assert notifier.seen == [(Stage.PLANNING, [])]
    assert (result.delivered, result.version) == (True, 3)


async def test_a_retried_attempt_asks_the_workflow_for_its_newest_status() -> None:
    """An attempt after a failure may come minutes later (Slack down): the carried status may be stale by then."""
    notifier = RecordingNotifier()
    carried = NEWEST.model_copy(update={"stage": Stage.PLANNING, "outcome": None, "message_version": 3})
    input = NotifyInput(ticket_id="abc", workflow_id="ticket-abc", status=carried)

    result: NotifyResult = await activity_env("7", attempt=2).run(
        NotifyActivities(notifier, newest_status).notify_ticket, input
    )

    assert notifier.seen == [(Stage.FINISHED, [])]
    assert result.version == 7


async def test_the_log_notifier_delivers_every_post() -> None:
    posts = [NotifyPost(kind=NotifyEvent.REMINDER, key="reminder-0-1")]
    result = await LogNotifier().publish(NEWEST, posts)
    assert result.delivered and result.posted == ["reminder-0-1"]


async def test_the_log_notifier_tells_an_outcome_once_when_an_update_carries_it_before_its_post(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Red team: a delivery held up by a hanging app DB caught up with the outcome, then its post logged it again."""
    caplog.set_level(logging.INFO, logger="activities.notify")
    await LogNotifier().publish(NEWEST, [])
    await LogNotifier().publish(NEWEST, [NotifyPost(kind=NotifyEvent.OUTCOME, key="outcome-0-0")])
    assert [record.getMessage() for record in caplog.records].count("[T-abc] T-abc done: executed") == 1
