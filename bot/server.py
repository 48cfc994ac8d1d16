"""Serving the bot's ASGI app until asked to stop: used by `agent-ticket bot` and `agent-ticket dev`.

Uvicorn is driven from our own event loop and our own stop event, so `dev` can run it beside
the workers and shut both down in order on one Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import uvicorn
from temporalio.client import Client

from bot.app import create_app, create_metrics_app
from bot.context import BotContext
from bot.http_protocol import MAX_HEADER_BYTES, header_timeout_protocol
from core.bootstrap import Databases
from core.settings import Settings
from service.temporal import connect
from service.tickets import TicketService

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
        config = server.config
        where = (
            f"BOT_HOST={config.host} BOT_PORT={config.port}"
            if config.port == settings.bot_port
            else f"METRICS_HOST={config.host} BOT_METRICS_PORT={config.port}"
        )
        raise BotStartError(f"the bot could not start on {where} (is the port already in use?)") from error


def uvicorn_config(app: Any, settings: Settings, *, port: int | None = None, host: str | None = None) -> uvicorn.Config:
    """How the bot's HTTP server runs: bounded request heads, no trust in proxy headers at this layer.

    Proxy headers are handled inside the app (`bot/proxies.py`), from FORWARDED_ALLOW_IPS only;
    uvicorn's own handling would trust them from loopback whatever the settings say.
    """
    return uvicorn.Config(
        app,
        host=host or settings.bot_host,
        port=settings.bot_port if port is None else port,
        http=header_timeout_protocol(settings.bot_header_timeout_seconds),
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=5,
        log_level="warning",
        access_log=False,
        lifespan="auto",
    )


async def _start(server: uvicorn.Server, settings: Settings, what: str) -> asyncio.Task[None]:
    """Serve until stopped, returning once the port listens (or raising why it could not)."""
    serving = asyncio.create_task(_serve(server, settings), name=what)
    while not server.started:
        if serving.done():
            serving.result()
            raise BotStartError(f"the bot's {what} stopped while starting")
        await asyncio.sleep(0.05)
    return serving


async def _stop_all(running: list[tuple[uvicorn.Server, asyncio.Task[None]]]) -> None:
    while running:
        server, serving = running.pop()
        server.should_exit = True
        with contextlib.suppress(BotStartError):
            await serving


async def serve_bot(
    settings: Settings,
    *,
    stop: asyncio.Event,
    client: Client | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Serve `/slack/events`, the dashboard and `/healthz` on BOT_HOST:BOT_PORT until `stop` is set.

    `/metrics` is served on METRICS_HOST:BOT_METRICS_PORT when that is set.

    `ready` is set once the port is listening, so `dev` can say so only when it is true.
    """
    databases = Databases.open(settings)
    socket_mode: AsyncSocketModeHandler | None = None
    running: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []
    try:
        client = client or await connect(settings)
        service = TicketService(
            client, databases.app_sessions, settings.temporal_task_queue, signing_key=settings.signing_key
        )
        context = BotContext(settings, service, databases)
        server = _EmbeddedUvicorn(uvicorn_config(create_app(context), settings))
        serving = await _start(server, settings, "HTTP server")
        running.append((server, serving))
        logger.info("bot listening on http://%s:%s", settings.bot_host, settings.bot_port)
        if settings.bot_metrics_port is not None:
            metrics_config = uvicorn_config(
                create_metrics_app(context), settings, port=settings.bot_metrics_port, host=settings.metrics_host
            )
            metrics_server = _EmbeddedUvicorn(metrics_config)
            running.append((metrics_server, await _start(metrics_server, settings, "metrics server")))
            logger.info("bot metrics on http://%s:%s/metrics", settings.metrics_host, settings.bot_metrics_port)
        socket_mode = await _start_socket_mode(context)
        if ready is not None:
            ready.set()
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        context.stopping.set()
        await _stop_all(running)
        if not stop.is_set():
            raise BotStartError("the bot's HTTP server stopped unexpectedly")
    finally:
        await _stop_all(running)
        if socket_mode is not None:
            await socket_mode.close_async()
        await databases.close()
