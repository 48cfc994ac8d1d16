"""The bot as `agent-ticket bot` serves it (`serve_bot`, real uvicorn): what only the real server shows.

Uvicorn's defaults were part of issue 14: it trusted `X-Forwarded-For` from loopback, held
connections that never finished their headers, and the public port served `/metrics`.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from bot.server import serve_bot
from core.bootstrap import Databases, init_databases
from tests.dashboard.harness import PASSWORD, csrf_from, dashboard_settings
from tests.support import free_port

HEADER_TIMEOUT = 0.5


@dataclass
class RunningBot:
    base_url: str
    metrics_url: str


@pytest.fixture(scope="module")
async def running_bot(
    local_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningBot]:
    port, metrics_port = free_port(), free_port()
    settings = dashboard_settings(
        tmp_path_factory.mktemp("server"),
        "server-queue",
        bot_port=port,
        public_url=f"http://127.0.0.1:{port}",
        bot_metrics_port=metrics_port,
        bot_header_timeout_seconds=HEADER_TIMEOUT,
    )
    databases = Databases.open(settings)
    await init_databases(databases, settings)
    await databases.close()
    stop, ready = asyncio.Event(), asyncio.Event()
    serving = asyncio.create_task(serve_bot(settings, stop=stop, client=local_env.client, ready=ready))
    await asyncio.wait({serving, asyncio.create_task(ready.wait())}, return_when=asyncio.FIRST_COMPLETED)
    if serving.done():
        serving.result()
    yield RunningBot(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}")
    stop.set()
    await serving


async def test_a_new_forwarded_for_does_not_lift_a_lock_out(running_bot: RunningBot) -> None:
    """Old: uvicorn believed X-Forwarded-For from loopback, so a locked-out user got back in with a new one."""
    base = running_bot.base_url
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        token = csrf_from((await client.get("/login")).text)
        form = {"username": "dave", "csrf_token": token, "next": "/"}
        for index in range(5):
            wrong = await client.post("/login", data={**form, "password": f"guess-{index}"}, headers={"Origin": base})
            assert wrong.status_code == 401
        spoofed = await client.post(
            "/login",
            data={**form, "password": PASSWORD["dave"]},
            headers={"Origin": base, "X-Forwarded-For": "203.0.113.77"},
        )
    assert spoofed.status_code == 429


def _held_open(port: int, partial: bytes, wait: float) -> bool:
    """Whether a connection that sent only `partial` is still open after `wait` seconds."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait + 2) as sock:
        sock.sendall(partial)
        sock.settimeout(wait)
        try:
            return sock.recv(1) != b""  # the server answering at all would also mean it read the head
        except TimeoutError:
            return True
        except ConnectionResetError:
            return False


async def test_connections_that_never_finish_their_headers_are_closed(running_bot: RunningBot) -> None:
    """Old: 400 connections sending headers slowly were held for 40 s; now each is closed at the deadline."""
    port = int(running_bot.base_url.rsplit(":", 1)[1])
    started = time.monotonic()
    held = await asyncio.gather(
        *(
            asyncio.to_thread(_held_open, port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1", HEADER_TIMEOUT * 6)
            for _ in range(20)
        ),
        asyncio.to_thread(_held_open, port, b"", HEADER_TIMEOUT * 6),  # opened, then silence
    )
    assert not any(held)
    assert time.monotonic() - started < HEADER_TIMEOUT * 6
    async with httpx.AsyncClient(base_url=running_bot.base_url) as client:
        assert (await client.get("/healthz")).status_code == 200  # whole requests are served as ever


async def test_metrics_are_on_their_own_port_only(running_bot: RunningBot) -> None:
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{running_bot.base_url}/metrics")).status_code == 404
        scraped = await client.get(f"{running_bot.metrics_url}/metrics")
    assert scraped.status_code == 200 and "agent_ticket_" in scraped.text


async def test_server_does_not_announce_itself(running_bot: RunningBot) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{running_bot.base_url}/healthz")
    assert "server" not in response.headers
