"""Outages of the ticket's dependencies, each switched on and off by a chaos test.

Every outage acts where the real failure would: the fake Slack and OpenAI servers stop
listening (callers get "connection refused", as when the service is unreachable), a database
answers every statement with the driver's own `OperationalError` (as SQLite does when its file
cannot be opened, and PostgreSQL when it restarts), and the worker process's workers shut down.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any, Protocol

from aiohttp import web
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


class Outage(Protocol):
    name: str

    async def begin(self) -> None: ...

    async def end(self) -> None: ...


class ServerDown:
    """A fake HTTP service (aiohttp) that stops listening and drops its connections, then listens again."""

    def __init__(self, name: str, runner: Callable[[], web.AppRunner | None], port: Callable[[], int]) -> None:
        self.name = name
        self._runner = runner
        self._port = port

    def _the_runner(self) -> web.AppRunner:
        runner = self._runner()
        assert runner is not None, f"{self.name}: the fake server is not running"
        return runner

    async def begin(self) -> None:
        port = self._port()  # read while it still listens
        self._saved_port = port
        runner = self._the_runner()
        for site in list(runner.sites):
            await site.stop()
        if runner.server is not None:  # and the kept-alive connections (httpx pools them) drop too
            await runner.server.shutdown(0.1)

    async def end(self) -> None:
        await web.TCPSite(self._the_runner(), "127.0.0.1", self._saved_port).start()


class DatabaseDown:
    """Every statement on `engine` fails with the driver's OperationalError, as an unreachable database does."""

    def __init__(self, name: str, engine: AsyncEngine) -> None:
        self.name = name
        self._engine = engine

    def _refuse(self, *args: Any) -> None:
        raise sqlite3.OperationalError(f"unable to open database file ({self.name} down, injected)")

    async def begin(self) -> None:
        event.listen(self._engine.sync_engine, "before_cursor_execute", self._refuse)

    async def end(self) -> None:
        event.remove(self._engine.sync_engine, "before_cursor_execute", self._refuse)


class WorkerDown:
    """The worker process gone: its workers stop (activities in flight are abandoned), then new ones start."""

    def __init__(self, start_workers: Callable[[AsyncExitStack], Awaitable[None]]) -> None:
        self.name = "worker"
        self._start = start_workers
        self._stack: AsyncExitStack | None = None

    async def start(self) -> None:
        self._stack = AsyncExitStack()
        await self._start(self._stack)

    async def begin(self) -> None:
        assert self._stack is not None
        await self._stack.aclose()
        self._stack = None

    async def end(self) -> None:
        await self.start()

    async def close(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()


class TemporalServerDown:
    """The Temporal server process stopped (SIGTERM), then started again on its SQLite file and port.

    Clients and workers keep their connections' settings and reconnect by themselves. While it is
    down nobody can start a ticket or send a decision, so those arrive just before it goes.
    """

    accepts_requests = False

    def __init__(self, start_server: Callable[[], Awaitable[Any]], stop_server: Callable[[], Awaitable[Any]]) -> None:
        self.name = "temporal server"
        self._start = start_server
        self._stop = stop_server

    async def begin(self) -> None:
        await self._stop()

    async def end(self) -> None:
        await self._start()
