"""Serving the dashboard on a real port and driving Debian's Chromium at it, for the browser tests."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from starlette.types import ASGIApp

from tests.dashboard.harness import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class _QuietServer(uvicorn.Server):
    """Uvicorn without signal handlers: the test decides when it stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bound_socket() -> socket.socket:
    """A socket on a free port of 127.0.0.1, bound before the app exists so PUBLIC_URL can name it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def base_url_of(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


@asynccontextmanager
async def serve(app: ASGIApp, sock: socket.socket | None = None) -> AsyncIterator[str]:
    """Serve `app` on `sock` (or a free port of 127.0.0.1); yields the base URL."""
    sock = sock or bound_socket()
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2)
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        yield base_url_of(sock)
    finally:
        server.should_exit = True
        await task
        sock.close()


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


async def signed_in_page(context: BrowserContext, base_url: str, username: str) -> Page:
    """Sign in through the form, as a person would, and land on the ticket list."""
    page = await context.new_page()
    await page.goto(f"{base_url}/")
    await page.wait_for_url(f"{base_url}/login?next=%2F")
    await page.fill('input[name="username"]', username)
    await page.fill('input[name="password"]', PASSWORD[username])
    await page.click('button:has-text("Sign in")')
    await page.wait_for_url(f"{base_url}/")
    return page
