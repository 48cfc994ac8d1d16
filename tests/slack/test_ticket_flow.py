"""A ticket's life in Slack: filed with /agent-ticket, one message edited in place, approvals by button."""

from __future__ import annotations

from core.models import OutcomeStatus
from tests.slack.conftest import CHANNEL, REQUESTER, SlackWorld


async def test_low_risk_ticket_ends_done_with_one_message_and_outcome_in_thread(world: SlackWorld) -> None:
    sent = await world.slack.command("upgrade acme-corp to the pro plan")

    assert sent.response.status_code == 200
    assert sent.elapsed < 1.0
    assert f"T-{sent.ticket_id} received" in sent.ack_text
    outcome = await world.result(sent.ticket_id)
    assert outcome.status is OutcomeStatus.DONE

    [message] = world.fake.top_level(CHANNEL)
    assert message.edits >= 1
    assert "Done" in message.everything and "1 row changed" in message.everything
    assert not message.has_buttons
    [reply] = world.fake.thread(message)
    assert f"<@{REQUESTER}>" in reply.text and "done" in reply.text
    assert len(world.script.executions) == 1
