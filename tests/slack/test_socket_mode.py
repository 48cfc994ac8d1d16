"""Socket Mode: with `SLACK_APP_TOKEN` the bot takes the same requests over Slack's WebSocket."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from pydantic import SecretStr

from bot.context import BotContext
from bot.slack.app import start_socket_mode
from core.models import OutcomeStatus
from tests.fakes.slack_server import APP_TOKEN
from tests.slack.conftest import SlackWorld, ticket_id_of


async def test_a_command_over_socket_mode_is_acked_and_files_the_ticket(
    make_world: Callable[..., Awaitable[SlackWorld]],
) -> None:
    world = await make_world()
    settings = world.settings.model_copy(update={"slack_app_token": SecretStr(APP_TOKEN)})
    handler = await start_socket_mode(BotContext(settings, world.service, world.databases))
    try:
        await world.fake.wait_for(lambda: world.fake.socket_connected, what="the WebSocket")
        body = world.slack.command_body("upgrade acme-corp to the pro plan", trigger_id="trigger-socket")
        ticket_id = ticket_id_of(body)

        ack = await world.fake.send_envelope("slash_commands", dict(parse_qsl(body)))

        assert f"T-{ticket_id} received" in ack["payload"]["text"]
        await world.wait_for_status(ticket_id, lambda status: True, "started")
        outcome = await world.result(ticket_id)
    finally:
        await handler.close_async()
    assert outcome.status is OutcomeStatus.DONE
    [message] = world.messages()
    assert "Done" in message.everything
    assert world.fake.calls_to("apps.connections.open")[0].token == APP_TOKEN
