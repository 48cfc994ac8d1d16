"""The Bolt app: built once per entry point from settings, served over HTTP or Socket Mode.

HTTP mode mounts `/slack/events` in the bot's Starlette app. Bolt verifies every request's
signature and rejects timestamps more than 5 minutes off (401); this endpoint adds what Bolt
leaves to the host: a body that can't be parsed, or a payload no listener accepts, is a 400
rather than a crash or a 404. Listeners ack as soon as they know what to say and do the slow
work after (`process_before_response=False`). A new ticket's ack waits for Temporal to accept
its workflow, but never longer than the front door's ack budget (2 s), so Slack's 3-second
limit holds however slow Temporal is.
"""

from __future__ import annotations

import logging

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.starlette.async_handler import to_async_bolt_request, to_starlette_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.context import BotContext
from bot.slack.front_door import SlackFrontDoor
from bot.slack.listeners import register_listeners
from core.settings import Settings

logger = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"


class SlackNotConfigured(RuntimeError):
    """Slack settings are missing; the message names them."""


def _secret(settings: Settings, name: str) -> str:
    value = getattr(settings, name)
    if value is None or not value.get_secret_value():
        raise SlackNotConfigured(f"{name.upper()} is not set")
    return str(value.get_secret_value())


def bot_web_client(settings: Settings) -> AsyncWebClient:
    """The bot's Web API client; `SLACK_API_URL` points it elsewhere (tests use a fake Slack)."""
    return AsyncWebClient(token=_secret(settings, "slack_bot_token"), base_url=settings.slack_api_url)


class _DropMessage(logging.Filter):
    def __init__(self, message: str) -> None:
        super().__init__()
        self._message = message

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self._message


def build_bolt_app(context: BotContext, front_door: SlackFrontDoor | None = None) -> AsyncApp:
    settings = context.settings
    client = bot_web_client(settings)
    bolt_logger = logging.getLogger("bot.slack.bolt")
    # Bolt also reads SLACK_BOT_TOKEN from the environment and warns that it goes unused beside a
    # client; our client carries that very token (and SLACK_API_URL), so the warning says nothing.
    quiet = _DropMessage(warning_client_prioritized_and_token_skipped())
    bolt_logger.addFilter(quiet)
    try:
        app = AsyncApp(
            name="agent-ticket",
            client=client,
            signing_secret=_secret(settings, "slack_signing_secret"),
            process_before_response=False,
            logger=bolt_logger,
        )
    finally:
        bolt_logger.removeFilter(quiet)
    register_listeners(app, front_door or SlackFrontDoor(context.service, settings, client))
    return app


class SlackEventsEndpoint:
    """`POST /slack/events`: hands signed requests to Bolt; 401 for bad signatures, 400 for misfits."""

    def __init__(self, app: AsyncApp, signing_secret: str) -> None:
        self._app = app
        self._verifier = SignatureVerifier(signing_secret)

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        try:
            bolt_request = to_async_bolt_request(request, body)
        except Exception:  # Bolt parses before it verifies; a body it can't parse must not be a 500
            return self._unparseable(request, body)
        bolt_response = await self._app.async_dispatch(bolt_request)
        if bolt_response.status == 404:
            logger.warning("refused a signed Slack request that no listener accepts")
            return JSONResponse({"ok": False, "error": "unhandled or malformed payload"}, status_code=400)
        return to_starlette_response(bolt_response)

    def _unparseable(self, request: Request, body: bytes) -> Response:
        if not self._verifier.is_valid_request(body, dict(request.headers)):
            return JSONResponse({"ok": False, "error": "invalid request signature"}, status_code=401)
        logger.warning("refused a signed Slack request whose body is not a Slack payload")
        return JSONResponse({"ok": False, "error": "malformed payload"}, status_code=400)


def http_routes(context: BotContext, front_door: SlackFrontDoor | None = None) -> list[BaseRoute]:
    app = build_bolt_app(context, front_door)
    endpoint = SlackEventsEndpoint(app, _secret(context.settings, "slack_signing_secret"))
    return [Route(EVENTS_PATH, endpoint.handle, methods=["POST"], name="slack_events")]


async def start_socket_mode(context: BotContext) -> AsyncSocketModeHandler:
    """Connect to Slack over Socket Mode (no public URL needed) and return the handler.

    The connection runs in the background; stop it with `await handler.close_async()`.
    """
    app_token = _secret(context.settings, "slack_app_token")
    handler = AsyncSocketModeHandler(build_bolt_app(context), app_token)
    await handler.connect_async()
    logger.info("Slack Socket Mode connected")
    return handler
