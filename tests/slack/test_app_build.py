"""Building the Bolt app prints nothing a developer would have to learn to ignore."""

from __future__ import annotations

import logging
from typing import cast

import pytest
from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient

from bot.context import BotContext
from bot.slack.app import build_bolt_app
from bot.slack.front_door import SlackFrontDoor
from core.bootstrap import Databases
from core.settings import Settings
from service.tickets import TicketService


def test_no_warning_that_the_token_in_the_environment_is_unused(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-the-environment")  # as in a container or a shell
    slack = settings.model_copy(
        update={"slack_bot_token": SecretStr("xoxb-from-the-environment"), "slack_signing_secret": SecretStr("s")}
    )
    service = cast(TicketService, None)  # building the app contacts nothing
    context = BotContext(settings=slack, service=service, databases=cast(Databases, None))

    with caplog.at_level(logging.DEBUG):
        app = build_bolt_app(context, SlackFrontDoor(service, slack, AsyncWebClient()))

    assert app.client.token == "xoxb-from-the-environment"
    assert "will be unused" not in caplog.text
    assert not logging.getLogger("bot.slack.bolt").filters  # the filter was only for building the app
