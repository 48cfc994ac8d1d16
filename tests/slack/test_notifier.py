"""`SlackNotifier` and `SlackApproverResolver` against the fake Slack Web API, outside Temporal.

What the workflow relies on: one message per ticket, edited rather than posted again on a
retry; thread replies that mention people; a 429 that comes back as a retryable error with
Slack's Retry-After; errors that retrying cannot fix returned (and so audited), not raised.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.approvers import ConfiguredApprovers
from activities.slack_notify import SlackApproverResolver, SlackNotifier
from core.bootstrap import Databases
from core.models import (
    NotifyEvent,
    NotifyPost,
    NotifyResult,
    OutcomeStatus,
    SlackMessageRef,
    TicketSource,
    TicketStatus,
)
from core.schema import TicketRow
from tests.fakes.slack_server import BOT_TOKEN, FakeSlack
from tests.slack.statuses import (
    APPROVERS,
    CHANNEL,
    REQUESTER,
    awaiting,
    finished,
    received,
    with_message,
)


def web_client(fake: FakeSlack, token: str = BOT_TOKEN) -> AsyncWebClient:
    return AsyncWebClient(token=token, base_url=fake.api_url, retry_handlers=[])


async def publish(notifier: SlackNotifier, event: NotifyEvent, status: TicketStatus, attempt: int = 1) -> NotifyResult:
    """One delivery: the message brought up to `status`, plus the one-off post `event` names (none for STAGE)."""
    posts = [] if event is NotifyEvent.STAGE else [NotifyPost(kind=event, key=f"{event.value}-0-0")]
    delivering = ActivityEnvironment()
    delivering.info = dataclasses.replace(delivering.info, attempt=attempt)
    result: NotifyResult = await delivering.run(notifier.publish, status, posts)
    return result


@pytest.fixture
def fake(fake_slack: FakeSlack) -> FakeSlack:
    fake_slack.usergroups["S0OPS0001"] = ["UCAROL001", "UALICE001"]
    return fake_slack


@pytest.fixture
def notifier(fake: FakeSlack, databases: Databases) -> SlackNotifier:
    return SlackNotifier(web_client(fake), databases.app_sessions, public_url="https://tickets.example.com")


async def stored_ref(databases: Databases, ticket_id: str) -> tuple[str | None, str | None]:
    async with databases.app_sessions() as session:
        row = (await session.execute(select(TicketRow).where(TicketRow.ticket_id == ticket_id))).scalar_one()
    return row.slack_channel, row.slack_ts


async def test_stages_edit_one_message_and_the_outcome_goes_in_its_thread(
    notifier: SlackNotifier, fake: FakeSlack, databases: Databases
) -> None:
    first = await publish(notifier, NotifyEvent.STAGE, received())
    assert first.delivered and first.message is not None
    waiting = with_message(awaiting(), first.message)
    second = await publish(notifier, NotifyEvent.STAGE, waiting)
    done = finished(waiting, OutcomeStatus.DONE, decided_by=[APPROVERS[0]])
    third = await publish(notifier, NotifyEvent.OUTCOME, done)

    assert second.message == first.message == third.message
    [message] = fake.top_level()
    assert message.edits == 2 and not message.has_buttons and "Done" in message.everything
    [reply] = fake.thread(message)
    assert f"<@{REQUESTER}>" in reply.text
    assert await stored_ref(databases, "0123456789") == (CHANNEL, message.ts)


async def test_a_retried_attempt_edits_the_message_it_already_posted(notifier: SlackNotifier, fake: FakeSlack) -> None:
    status = received()  # the activity's input: no message known to the workflow yet

    await publish(notifier, NotifyEvent.STAGE, status)
    retried = await publish(notifier, NotifyEvent.STAGE, status)  # same input, as Temporal retries it

    assert retried.delivered
    assert len(fake.calls_to("chat.postMessage")) == 1
    assert len(fake.calls_to("chat.update")) == 1


async def test_the_row_made_by_the_audit_activity_gets_the_message_ts(
    notifier: SlackNotifier, fake: FakeSlack, databases: Databases
) -> None:
    status = received("aaaaaaaaaa")
    async with databases.app_sessions() as session, session.begin():
        row = TicketRow(ticket_id="aaaaaaaaaa", workflow_id="ticket-aaaaaaaaaa", requester=REQUESTER, source="slack")
        row.channel, row.text, row.stage, row.status = CHANNEL, status.request.text, "received", "received"
        session.add(row)

    result = await publish(notifier, NotifyEvent.STAGE, status)

    assert result.message is not None
    assert await stored_ref(databases, "aaaaaaaaaa") == (CHANNEL, result.message.ts)


async def test_a_reply_slack_took_but_whose_answer_was_lost_is_not_posted_again(
    notifier: SlackNotifier, fake: FakeSlack
) -> None:
    posted = await publish(notifier, NotifyEvent.STAGE, awaiting())
    assert posted.message is not None
    done = finished(with_message(awaiting(), posted.message), OutcomeStatus.DONE)
    fake.fail("chat.postMessage", "service_unavailable", status=503, applied=True)  # taken, answer lost

    with pytest.raises(ApplicationError):
        await publish(notifier, NotifyEvent.OUTCOME, done)
    retried = await publish(notifier, NotifyEvent.OUTCOME, done, attempt=2)

    assert retried.delivered and retried.posted == ["outcome-0-0"]
    [message] = fake.top_level(CHANNEL)
    assert len(fake.thread(message)) == 1  # the outcome, once


async def test_a_message_slack_took_but_whose_answer_was_lost_is_found_not_posted_twice(
    fake: FakeSlack,
) -> None:
    notifier = SlackNotifier(web_client(fake))  # no app DB: only Slack can tell it posted
    fake.fail("chat.postMessage", "service_unavailable", status=503, applied=True)

    with pytest.raises(ApplicationError):
        await publish(notifier, NotifyEvent.STAGE, received())
    retried = await publish(notifier, NotifyEvent.STAGE, received(), attempt=2)

    [message] = fake.top_level(CHANNEL)
    assert retried.message == SlackMessageRef(channel=CHANNEL, ts=message.ts) and message.edits == 1


async def test_a_ticket_filed_outside_slack_without_a_channel_delivers_nothing(
    notifier: SlackNotifier, fake: FakeSlack
) -> None:
    status = received(channel=None, source=TicketSource.CLI, requester="alice")
    for event in (NotifyEvent.STAGE, NotifyEvent.REMINDER, NotifyEvent.OUTCOME):
        result = await publish(notifier, event, finished(status, OutcomeStatus.DONE))
        assert result.delivered and result.message is None
    assert fake.calls == []


@pytest.mark.parametrize("code", ["channel_not_found", "not_in_channel", "account_inactive", "token_revoked"])
async def test_errors_retrying_cannot_fix_are_returned_not_raised(
    notifier: SlackNotifier, fake: FakeSlack, code: str
) -> None:
    fake.fail("chat.postMessage", code)

    result = await publish(notifier, NotifyEvent.STAGE, received())

    assert not result.delivered and result.error is not None and code in result.error
    assert fake.messages == []


async def test_a_bad_token_is_returned_as_invalid_auth(fake: FakeSlack, databases: Databases) -> None:
    notifier = SlackNotifier(web_client(fake, token="xoxb-revoked"), databases.app_sessions)
    result = await publish(notifier, NotifyEvent.STAGE, received())
    assert not result.delivered and result.error == "Slack: invalid_auth"


async def test_a_rate_limit_is_raised_as_retryable_with_slacks_retry_after(
    notifier: SlackNotifier, fake: FakeSlack
) -> None:
    fake.fail("chat.postMessage", status=429, retry_after=7)

    with pytest.raises(ApplicationError) as raised:
        await publish(notifier, NotifyEvent.STAGE, received())

    assert not raised.value.non_retryable
    assert raised.value.next_retry_delay == timedelta(seconds=7)
    assert raised.value.type == "SlackRateLimited"


@pytest.mark.parametrize(("code", "status"), [("internal_error", 200), ("service_unavailable", 503)])
async def test_slack_having_trouble_is_raised_for_temporal_to_retry(
    notifier: SlackNotifier, fake: FakeSlack, code: str, status: int
) -> None:
    fake.fail("chat.postMessage", code, status=status)
    with pytest.raises(ApplicationError) as raised:
        await publish(notifier, NotifyEvent.STAGE, received())
    assert (not raised.value.non_retryable and code in raised.value.message) or str(status) in raised.value.message


async def test_a_deleted_message_is_posted_again(
    notifier: SlackNotifier, fake: FakeSlack, databases: Databases
) -> None:
    gone = SlackMessageRef(channel=CHANNEL, ts="1.000099")

    result = await publish(notifier, NotifyEvent.STAGE, with_message(awaiting(), gone))

    assert result.delivered and result.message is not None and result.message != gone
    assert [message.ts for message in fake.top_level()] == [result.message.ts]


async def test_a_reminder_in_the_thread_mentions_the_requester_and_approvers(
    notifier: SlackNotifier, fake: FakeSlack
) -> None:
    posted = await publish(notifier, NotifyEvent.STAGE, awaiting())
    assert posted.message is not None

    await publish(notifier, NotifyEvent.REMINDER, with_message(awaiting(), posted.message))

    [message] = fake.top_level(CHANNEL)
    [reminder] = fake.thread(message)
    assert f"<@{REQUESTER}>" in reminder.text and all(f"<@{who}>" in reminder.text for who in APPROVERS)
    assert "still waiting" in reminder.text


async def test_escalation_is_posted_to_the_escalation_channel(notifier: SlackNotifier, fake: FakeSlack) -> None:
    result = await publish(notifier, NotifyEvent.ESCALATION, awaiting())

    assert result.delivered
    [message] = fake.top_level("C0ESCALATE")
    assert "T-0123456789" in message.everything and f"<#{CHANNEL}>" in message.everything
    assert "https://tickets.example.com/tickets/0123456789" in message.everything


async def test_escalation_to_a_missing_channel_is_reported(notifier: SlackNotifier, fake: FakeSlack) -> None:
    result = await publish(notifier, NotifyEvent.ESCALATION, awaiting(received(escalation_channel="C0GONE")))
    assert not result.delivered and result.error == "Slack: channel_not_found"


async def test_user_groups_expand_to_their_members(fake: FakeSlack) -> None:
    resolver = SlackApproverResolver(web_client(fake))
    assert await resolver.resolve(["UALICE001", "S0OPS0001", "bob"]) == ["UALICE001", "UCAROL001", "bob"]


async def test_a_decider_is_judged_by_the_group_as_it_is_when_they_decide(fake: FakeSlack) -> None:
    """Someone taken out of a user group in APPROVERS while a ticket waits no longer counts (red team 18)."""
    approvers = ConfiguredApprovers(SlackApproverResolver(web_client(fake)), ["S0OPS0001", "bob"])
    assert await approvers.includes("UCAROL001") and await approvers.includes("bob")
    fake.usergroups["S0OPS0001"] = ["UALICE001"]
    assert not await approvers.includes("UCAROL001")
    assert await approvers.includes("UALICE001") and not await approvers.includes("S0OPS0001x")


async def test_a_group_that_does_not_exist_fails_for_good(fake: FakeSlack) -> None:
    resolver = SlackApproverResolver(web_client(fake))
    with pytest.raises(ApplicationError) as raised:
        await resolver.resolve(["S0NOSUCH1"])
    assert raised.value.non_retryable and "no_such_subteam" in raised.value.message


async def test_a_rate_limited_group_lookup_is_retried_after_retry_after(fake: FakeSlack) -> None:
    fake.fail("usergroups.users.list", status=429, retry_after=3)
    with pytest.raises(ApplicationError) as raised:
        await SlackApproverResolver(web_client(fake)).resolve(["S0OPS0001"])
    assert not raised.value.non_retryable and raised.value.next_retry_delay == timedelta(seconds=3)
