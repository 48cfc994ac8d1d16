"""Slack: the Bolt app behind `/slack/events` and its listeners.

Bolt is imported only when the routes are built, so a bot with Slack off never loads it.
The messages and the ids they carry live in `rendering`, which the worker imports too.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from bot.context import BotContext


def slack_off_reason(context: BotContext) -> str | None:
    """Why Slack is off, or None when it is configured."""
    settings = context.settings
    missing = [
        name
        for name, value in (
            ("SLACK_BOT_TOKEN", settings.slack_bot_token),
            ("SLACK_SIGNING_SECRET", settings.slack_signing_secret),
        )
        if value is None or not value.get_secret_value()
    ]
    return f"Slack is off: {' and '.join(missing)} not set (see docs/slack.md)" if missing else None


def slack_routes(context: BotContext) -> list[BaseRoute]:
    reason = slack_off_reason(context)
    if reason is not None:

        async def slack_off(request: Request) -> JSONResponse:
            return JSONResponse({"ok": False, "error": reason}, status_code=503)

        return [Route("/slack/events", slack_off, methods=["POST"])]
    from bot.slack.app import http_routes

    return http_routes(context)
