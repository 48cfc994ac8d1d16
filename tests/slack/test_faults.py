"""Slack misbehaving: redelivered clicks and a Web API that keeps failing for a while.

At most one decision per person per approval request, and one message per ticket, whatever
Slack repeats or refuses.
"""

from __future__ import annotations

import asyncio

from core.models import OutcomeStatus
from rendering.slack_ids import APPROVE_ACTION_ID
from tests.pipeline import TWO_APPROVALS_PLAN
from tests.slack.conftest import ALICE, BOB, SlackWorld, signed_headers


async def test_a_redelivered_click_counts_once(world: SlackWorld) -> None:
    world.script.plan = TWO_APPROVALS_PLAN
    sent = await world.slack.command("upgrade acme-corp to the pro plan")
    value, ts = await world.ticket_message_with_buttons(sent.ticket_id)

    body = world.slack.click_body(APPROVE_ACTION_ID, value.encode(), ALICE, message_ts=ts)
    deliveries = [signed_headers(body)] + [
        {**signed_headers(body), "X-Slack-Retry-Num": str(n), "X-Slack-Retry-Reason": "http_timeout"} for n in (1, 2)
    ]
    answers = await asyncio.gather(*(world.slack.post(body, headers=headers) for headers in deliveries))
    assert [answer.status_code for answer in answers] == [200, 200, 200]

    # Every delivery is answered once the workflow has judged it: then all three are on record.
    answers = await world.fake.wait_for(lambda: len(world.ephemeral_for(ALICE)) == 3 and world.ephemeral_for(ALICE))
    assert sum("You approved" in answer for answer in answers) == 1, answers
    status = await world.status(sent.ticket_id)
    counted = [record.decision.decider for record in status.decisions if record.accepted]
    assert counted == [ALICE]
    assert status.pending_approval  # one person's repeated click is not a second approval
    assert await world.executions(sent.ticket_id) == 0

    await world.slack.click(APPROVE_ACTION_ID, value.encode(), BOB, message_ts=ts)
    outcome = await world.result(sent.ticket_id)
    assert outcome.status is OutcomeStatus.DONE and sorted(outcome.decided_by) == sorted([ALICE, BOB])
    assert await world.executions(sent.ticket_id) == 1


async def test_chat_update_failing_for_a_while_still_ends_with_one_message(world: SlackWorld) -> None:
    world.fake.fail("chat.update", status=500, error="internal_error", times=3, channel=world.channel)
    sent = await world.slack.command("upgrade acme-corp to the pro plan")

    outcome = await world.result(sent.ticket_id)

    assert outcome.status is OutcomeStatus.DONE
    [message] = world.messages()
    assert "Done" in message.everything
    assert len(world.calls("chat.update")) >= 4  # three refused, then the edit that landed
    assert len(world.calls("chat.postMessage")) - len(world.fake.thread(message)) == 1
    assert await world.executions(sent.ticket_id) == 1
