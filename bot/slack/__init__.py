"""Slack: the Bolt app behind `/slack/events` (placeholder until the Slack listeners land)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from bot.context import BotContext


def slack_routes(context: BotContext) -> list[BaseRoute]:
    return []
