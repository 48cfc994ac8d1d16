"""A ticket's life in Slack: filed with /agent-ticket, one message edited in place, decided by buttons.

Real bot server, real `TicketWorkflow` on the Temporal dev server, real Slack notifier; the DB
and LLM steps are scripted. Slack is the fake Web API on 127.0.0.1.
"""

from __future__ import annotations

import asyncio

from core.models import AuditEventKind, OutcomeStatus
from rendering.slack_ids import APPROVE_ACTION_ID, REJECT_ACTION_ID, UNDO_ACTION_ID, ButtonValue
from tests.pipeline import ONE_APPROVAL_PLAN, TWO_APPROVALS_PLAN
from tests.slack.conftest import (
    ALICE,
    BOB,
    CAROL,
    MALLORY,
    REQUESTER,
    SlackWorld,
    signed_headers,
)


async def test_low_risk_ticket_ends_done_with_one_message_and_outcome_in_thread(world: SlackWorld) -> None:
    sent = await world.slack.command("upgrade acme-corp to the pro plan")

    assert sent.response.status_code == 200
    assert sent.elapsed < 3.0  # Slack's limit; the workflow is started before the ack
    assert f"T-{sent.ticket_id} received" in sent.ack_text
    outcome = await world.result(sent.ticket_id)
    assert outcome.status is OutcomeStatus.DONE

    [message] = world.messages()  # one message for the whole ticket
    assert message.edits >= 1  # received → done, edited in place
    assert "Done" in message.everything and "1 row changed" in message.everything
    assert "subscriptions" in message.everything  # the plan stays readable
    assert message.action_ids <= {UNDO_ACTION_ID}  # no decision buttons; Undo stays for its window
    [reply] = world.fake.thread(message)
    assert f"<@{REQUESTER}>" in reply.text and "done" in reply.text
    assert await world.executions(sent.ticket_id) == 1
    status = await world.status(sent.ticket_id)
    assert status.slack_message is not None and status.slack_message.ts == message.ts


async def test_risky_ticket_is_approved_by_a_click_and_loses_its_buttons(world: SlackWorld) -> None:
    world.script.plan = ONE_APPROVAL_PLAN
    sent = await world.slack.command("upgrade acme-corp to the pro plan")

    value, ts = await world.ticket_message_with_buttons(sent.ticket_id)
    message = world.messages()[0]
    # The real safety check's verdict and its dry run's before → after, from the seeded demo data.
    assert "medium" in message.everything and "`enabled`: `false` → `true`" in message.everything
    assert f"/tickets/{sent.ticket_id}" in message.everything  # "View in dashboard"
    assert await world.executions(sent.ticket_id) == 0

    click = await world.slack.click(APPROVE_ACTION_ID, value.encode(), CAROL, message_ts=ts)  # via the S0OPS group
    assert click.status_code == 200
    outcome = await world.result(sent.ticket_id)

    assert outcome.status is OutcomeStatus.DONE and outcome.decided_by == [CAROL]
    assert await world.executions(sent.ticket_id) == 1
    [message] = world.messages()
    assert message.action_ids <= {UNDO_ACTION_ID}
    assert f"Approved by <@{CAROL}>" in message.everything and "Done" in message.everything
    # Once approved, no edit of the message offers the buttons again (stages may be coalesced).
    edits = [str(call.args.get("blocks")) for call in world.calls("chat.update") if call.args.get("ts") == message.ts]
    approved_at = next(i for i, blocks in enumerate(edits) if APPROVE_ACTION_ID not in blocks)
    assert all(APPROVE_ACTION_ID not in blocks for blocks in edits[approved_at:])
    [reply] = world.fake.thread(message)
    assert f"<@{REQUESTER}>" in reply.text
    answers = await world.fake.wait_for(lambda: world.ephemeral_for(CAROL), what="the approver's answer")
    assert "You approved" in answers[0]


async def test_clicks_that_cannot_count_change_nothing_and_are_answered(world: SlackWorld) -> None:
    world.script.plan = ONE_APPROVAL_PLAN
    sent = await world.slack.command("upgrade acme-corp to the pro plan")
    value, ts = await world.ticket_message_with_buttons(sent.ticket_id)
    stale = ButtonValue(workflow_id=value.workflow_id, request_id=value.request_id, plan_hash="0" * 16)

    await world.slack.click(APPROVE_ACTION_ID, value.encode(), MALLORY, message_ts=ts)
    await world.slack.click(APPROVE_ACTION_ID, value.encode(), REQUESTER, message_ts=ts)
    await world.slack.click(REJECT_ACTION_ID, value.encode(), REQUESTER, message_ts=ts)
    await world.slack.click(APPROVE_ACTION_ID, stale.encode(), ALICE, message_ts=ts)
    await world.fake.wait_for(lambda: len(world.ephemeral()) >= 4, what="four refusals")

    assert "not an approver" in world.ephemeral_for(MALLORY)[0]
    assert all("the requester cannot decide on their own ticket" in text for text in world.ephemeral_for(REQUESTER))
    assert "the plan has changed" in world.ephemeral_for(ALICE)[0]
    assert world.views() == []  # the requester's Reject opened no modal
    status = await world.status(sent.ticket_id)
    # Every decision reached the workflow and is on record, ignored with its reason.
    assert status.pending_approval and [(r.decision.decider, r.accepted) for r in status.decisions] == [
        (MALLORY, False),
        (REQUESTER, False),
        (ALICE, False),
    ]

    await world.slack.click(APPROVE_ACTION_ID, value.encode(), ALICE, message_ts=ts)
    await world.result(sent.ticket_id)
    await world.slack.click(APPROVE_ACTION_ID, value.encode(), BOB, message_ts=ts)  # after the decision
    answers = await world.fake.wait_for(lambda: world.ephemeral_for(BOB), what="the late click's answer")

    assert "not open for decisions" in answers[0]
    assert await world.executions(sent.ticket_id) == 1
    final = await world.status(sent.ticket_id)
    assert [record.decision.decider for record in final.decisions if record.accepted] == [ALICE]


async def test_two_approvers_clicking_at_once_execute_the_plan_once(world: SlackWorld) -> None:
    world.script.plan = ONE_APPROVAL_PLAN
    sent = await world.slack.command("upgrade acme-corp to the pro plan")
    value, ts = await world.ticket_message_with_buttons(sent.ticket_id)

    clicks = await asyncio.gather(
        world.slack.click(APPROVE_ACTION_ID, value.encode(), ALICE, message_ts=ts),
        world.slack.click(APPROVE_ACTION_ID, value.encode(), BOB, message_ts=ts),
    )
    assert [click.status_code for click in clicks] == [200, 200]
    outcome = await world.result(sent.ticket_id)
    await world.fake.wait_for(lambda: len(world.ephemeral()) >= 2, what="both answers")

    assert outcome.status is OutcomeStatus.DONE and len(outcome.decided_by) == 1
    assert await world.executions(sent.ticket_id) == 1
    winner = outcome.decided_by[0]
    loser = BOB if winner == ALICE else ALICE
    assert "You approved" in world.ephemeral_for(winner)[0]
    assert "You approved" not in world.ephemeral_for(loser)[0]
    [message] = world.messages()
    assert message.action_ids <= {UNDO_ACTION_ID} and f"Approved by <@{winner}>" in message.everything


async def test_reject_through_the_modal_ends_rejected_with_the_reason(world: SlackWorld) -> None:
    world.script.plan = ONE_APPROVAL_PLAN
    sent = await world.slack.command("upgrade acme-corp to the pro plan")
    value, ts = await world.ticket_message_with_buttons(sent.ticket_id)

    click = await world.slack.click(REJECT_ACTION_ID, value.encode(), BOB, message_ts=ts)
    assert click.status_code == 200
    [view] = await world.fake.wait_for(lambda: world.views(), what="the reject modal")
    assert view["callback_id"] == "ticket_reject_modal"
    assert (await world.status(sent.ticket_id)).pending_approval  # opening the modal decides nothing

    empty = await world.slack.submit_reject(view["private_metadata"], BOB, "   ")
    assert empty.json()["response_action"] == "errors"  # the modal stays open, asking why
    submitted = await world.slack.submit_reject(view["private_metadata"], BOB, "not during the <!channel> freeze")
    assert submitted.status_code == 200
    outcome = await world.result(sent.ticket_id)

    assert outcome.status is OutcomeStatus.REJECTED
    assert await world.executions(sent.ticket_id) == 0
    [message] = world.messages()
    assert not message.has_buttons
    assert f"rejected by <@{BOB}>: not during the &lt;!channel&gt; freeze" in message.everything
    [reply] = world.fake.thread(message)
    assert f"<@{REQUESTER}>" in reply.text and "rejected" in reply.text


async def test_rate_limited_update_is_retried_after_retry_after_and_posts_once(world: SlackWorld) -> None:
    world.fake.fail("chat.update", status=429, retry_after=1, channel=world.channel)
    sent = await world.slack.command("upgrade acme-corp to the pro plan")

    outcome = await world.result(sent.ticket_id)

    assert outcome.status is OutcomeStatus.DONE
    updates = world.calls("chat.update")
    assert updates[0].status == 429 and updates[1].ok
    assert updates[1].at - updates[0].at >= 0.95  # Retry-After: 1, honoured by Temporal's retry
    [message] = world.messages()  # the retried activity edited, it did not post again
    assert "Done" in message.everything
    assert len(world.fake.thread(message)) == 1


async def test_slack_errors_retrying_cannot_fix_are_audited_and_the_ticket_carries_on(world: SlackWorld) -> None:
    world.fake.not_member.add(world.channel)
    sent = await world.slack.command("upgrade acme-corp to the pro plan")

    outcome = await world.result(sent.ticket_id)

    assert outcome.status is OutcomeStatus.DONE
    assert world.messages() == []
    assert len(world.calls("chat.postMessage")) == 2  # once per event, not retried
    failures = [event for event in await world.events(sent.ticket_id) if event.kind == AuditEventKind.NOTIFY_FAILED]
    assert len(failures) == 2 and "not_in_channel" in failures[0].summary


async def test_a_repeated_delivery_of_the_same_command_starts_nothing_new(world: SlackWorld) -> None:
    sent = await world.slack.command("upgrade acme-corp to the pro plan")
    first_run = (await world.service.handle(sent.ticket_id).describe()).run_id
    again = await world.slack.post(sent.body, headers=None)  # the same trigger id, signed afresh
    redelivery = {**signed_headers(sent.body), "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    retried = await world.slack.post(sent.body, headers=redelivery)
    assert again.status_code == 200 and retried.status_code == 200

    for ack in (sent.response, again, retried):  # the ticket exists, so every delivery is told it was received
        assert f"T-{sent.ticket_id} received" in ack.json()["text"]
    assert (await world.service.handle(sent.ticket_id).describe()).run_id == first_run
    await world.result(sent.ticket_id)
    await world.wait_for_status(sent.ticket_id, lambda s: not s.message_owed, "its message delivered")
    assert len(world.messages()) == 1
    assert await world.executions(sent.ticket_id) == 1


async def test_reject_asking_for_a_new_plan_brings_new_buttons_on_the_same_message(world: SlackWorld) -> None:
    world.script.plan = ONE_APPROVAL_PLAN
    sent = await world.slack.command("upgrade acme-corp to the pro plan")
    first, ts = await world.ticket_message_with_buttons(sent.ticket_id)
    await world.slack.click(REJECT_ACTION_ID, first.encode(), BOB, message_ts=ts)
    [view] = await world.fake.wait_for(lambda: world.views(), what="the reject modal")

    await world.slack.submit_reject(view["private_metadata"], BOB, "only the pro-annual plan", replan=True)
    second = await world.wait_for_status(
        sent.ticket_id,
        lambda status: status.approval is not None and status.approval.request_id != first.request_id,
        "the second round",
    )
    assert second.feedback == ["only the pro-annual plan"] and second.approval is not None
    value = await world.fake.wait_for(
        lambda: next(
            (
                found
                for found in [world.button_value(world.messages()[0])]
                if found is not None and found.request_id == second.approval.request_id  # type: ignore[union-attr]
            ),
            None,
        ),
        what="the new round's buttons",
    )
    [message] = world.messages()
    assert "only the pro-annual plan" in message.everything
    answers = await world.fake.wait_for(lambda: world.ephemeral_for(BOB), what="the rejecter's answer")
    assert "back for a new plan" in answers[0]

    await world.slack.click(APPROVE_ACTION_ID, first.encode(), ALICE, message_ts=message.ts)  # last round's button
    await world.slack.click(APPROVE_ACTION_ID, value.encode(), ALICE, message_ts=message.ts)
    outcome = await world.result(sent.ticket_id)

    assert outcome.status is OutcomeStatus.DONE and outcome.decided_by == [ALICE]
    assert "out of date" in world.ephemeral_for(ALICE)[0]
    [message] = world.messages()
    assert message.action_ids <= {UNDO_ACTION_ID} and await world.executions(sent.ticket_id) == 1


async def test_a_plan_needing_two_approvals_tells_the_first_approver_what_is_missing(world: SlackWorld) -> None:
    world.script.plan = TWO_APPROVALS_PLAN
    sent = await world.slack.command("upgrade acme-corp to the pro plan")
    value, ts = await world.ticket_message_with_buttons(sent.ticket_id)

    await world.slack.click(APPROVE_ACTION_ID, value.encode(), ALICE, message_ts=ts)
    [first] = await world.fake.wait_for(lambda: world.ephemeral_for(ALICE), what="the first answer")
    assert "It still needs 1 more approval." in first
    assert (await world.status(sent.ticket_id)).pending_approval
    # The channel message is delivered again: the second approver sees who approved and what is missing.
    await world.fake.wait_for(
        lambda: [
            m for m in world.messages() if f"Approved so far by <@{ALICE}>; 1 more approval needed" in m.everything
        ],
        what="the message showing the first approval",
    )

    await world.slack.click(APPROVE_ACTION_ID, value.encode(), CAROL, message_ts=ts)
    outcome = await world.result(sent.ticket_id)

    assert outcome.status is OutcomeStatus.DONE and sorted(outcome.decided_by) == sorted([ALICE, CAROL])
    [message] = world.messages()
    assert f"Approved by <@{ALICE}>" in message.everything and f"Approved by <@{CAROL}>" in message.everything
