"""Serving the dashboard on a real port and driving Debian's Chromium at it, for the browser tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Page, async_playwright

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
