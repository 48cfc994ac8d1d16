"""Serving the bot's ASGI app until asked to stop: used by `agent-ticket bot` and `agent-ticket dev`.

Uvicorn is driven from our own event loop and our own stop event, so `dev` can run it beside
the workers and shut both down in order on one Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

import uvicorn
from temporalio.client import Client

from bot.app import create_app
from bot.context import BotContext
from core.bootstrap import Databases
from core.settings import Settings
from core.temporal import connect
from core.tickets import TicketService

if TYPE_CHECKING:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

logger = logging.getLogger(__name__)


class BotStartError(Exception):
    """The bot could not start serving (for example its port is taken); the message says which."""


class _EmbeddedUvicorn(uvicorn.Server):
    """Uvicorn without its own signal handlers: the caller's stop event decides when it ends."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _start_socket_mode(context: BotContext) -> AsyncSocketModeHandler | None:
    """Socket Mode when `SLACK_APP_TOKEN` is set (with the bot token and signing secret); else None."""
    if context.settings.slack_app_token is None or not context.settings.slack_enabled:
        return None
    from bot.slack.app import start_socket_mode

    return await start_socket_mode(context)


async def _serve(server: uvicorn.Server, settings: Settings) -> None:
    """Run uvicorn, turning its `sys.exit` on a failed start into an error that names the setting."""
    try:
        await server.serve()
    except SystemExit as error:
        raise BotStartError(
            f"the bot could not start on BOT_HOST={settings.bot_host} BOT_PORT={settings.bot_port} "
            "(is the port already in use?)"
        ) from error


async def serve_bot(
    settings: Settings,
    *,
    stop: asyncio.Event,
    client: Client | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Serve `/slack/events`, the dashboard and `/healthz` on BOT_HOST:BOT_PORT until `stop` is set.

    `ready` is set once the port is listening, so `dev` can say so only when it is true.
    """
    databases = Databases.open(settings)
    socket_mode: AsyncSocketModeHandler | None = None
    try:
        client = client or await connect(settings)
        service = TicketService(
            client, databases.app_sessions, settings.temporal_task_queue, signing_key=settings.signing_key
        )
        context = BotContext(settings, service, databases)
        config = uvicorn.Config(
            create_app(context),
            host=settings.bot_host,
            port=settings.bot_port,
            log_level="warning",
            access_log=False,
            lifespan="auto",
        )
        server = _EmbeddedUvicorn(config)
        serving = asyncio.create_task(_serve(server, settings), name="bot-http")
        while not server.started:
            if serving.done():
                serving.result()
                raise BotStartError(f"the bot stopped while starting on {settings.bot_host}:{settings.bot_port}")
            await asyncio.sleep(0.05)
        logger.info("bot listening on http://%s:%s", settings.bot_host, settings.bot_port)
        socket_mode = await _start_socket_mode(context)
        if ready is not None:
            ready.set()
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        context.stopping.set()
        server.should_exit = True
        await serving
        if not stop.is_set():
            raise BotStartError("the bot's HTTP server stopped unexpectedly")
    finally:
        if socket_mode is not None:
            await socket_mode.close_async()
        await databases.close()
