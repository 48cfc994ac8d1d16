"""Undo clicks that cannot start a revert are answered in words and start nothing (signed as Slack signs them)."""

from __future__ import annotations

from rendering.slack_ids import UNDO_ACTION_ID, UndoValue
from tests.pipeline import ONE_APPROVAL_PLAN
from tests.slack.conftest import REQUESTER, SlackWorld


async def test_undo_of_a_ticket_that_has_not_executed_is_refused_in_words(world: SlackWorld) -> None:
    world.script.plan = ONE_APPROVAL_PLAN
    sent = await world.slack.command("upgrade acme-corp to the pro plan")
    await world.awaiting_approval(sent.ticket_id)
    started_before = len(world.messages())

    value = UndoValue(workflow_id=f"ticket-{sent.ticket_id}").encode()
    click = await world.slack.click(UNDO_ACTION_ID, value, REQUESTER)

    assert click.status_code == 200
    [answer] = await world.fake.wait_for(lambda: world.ephemeral_for(REQUESTER), what="the refusal")
    assert answer == (
        f":no_entry_sign: Nothing to undo: T-{sent.ticket_id} is awaiting_approval: "
        "only a ticket that executed can be reverted."
    )
    assert len(world.messages()) == started_before  # no revert ticket was filed


async def test_undo_of_an_unknown_ticket_is_refused(world: SlackWorld) -> None:
    value = UndoValue(workflow_id="ticket-feedc0ffee").encode()
    await world.slack.click(UNDO_ACTION_ID, value, REQUESTER)
    [answer] = await world.fake.wait_for(lambda: world.ephemeral_for(REQUESTER), what="the refusal")
    assert answer == ":no_entry_sign: Nothing to undo: no ticket T-feedc0ffee."
    assert world.messages() == []


async def test_an_undo_click_whose_value_is_not_ours_is_unhandled(world: SlackWorld) -> None:
    click = await world.slack.click(UNDO_ACTION_ID, '{"workflow_id": ""}', REQUESTER)
    assert click.status_code == 400
    assert world.ephemeral_for(REQUESTER) == []
