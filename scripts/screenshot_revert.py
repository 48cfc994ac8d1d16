"""Regenerate docs/images/undo-revert-diff.png: a revert ticket's page, with its dry-run diff and a conflict.

Runs the real product in a scratch directory: `agent-ticket dev` (embedded Temporal, worker, bot
and dashboard on free ports), then as a person would: dave asks to mark an invoice paid, alice
approves it with the CLI, someone else edits the same invoice's amount straight in the target
DB, and bob, in headless Chromium (Debian's /usr/bin/chromium), opens the ticket, ticks
"Include changes made since (overwrite)" and clicks Revert. The revert ticket's page is saved.

    .venv/bin/python scripts/screenshot_revert.py [output.png]
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).parent / "agent-ticket"
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "demo-" + secrets.token_urlsafe(9)
INVOICE = 14
START_SECONDS = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(scratch: Path) -> dict[str, str]:
    from bot.dashboard.auth import hash_password

    hashed = hash_password(PASSWORD)
    bot_port = free_port()
    return {
        **os.environ,
        "AGENT_TICKET_DATA_DIR": str(scratch / "data"),
        "APPROVERS": "alice,bob,carol",
        "DASHBOARD_USERS": ",".join(f"{name}:{name}:{hashed}" for name in ("alice", "bob", "carol", "dave")),
        "DASHBOARD_SESSION_SECRET": secrets.token_urlsafe(48),
        "DECISION_SIGNING_KEY": secrets.token_urlsafe(48),
        # As the demo .env of `agent-ticket dev`: the CLI may decide `--as` alice on this machine.
        "ALLOW_UNSIGNED_DECISIONS": "true",
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "TEMPORAL_UI_PORT": str(free_port()),
        "TEMPORAL_TASK_QUEUE": "screenshot",
        "BOT_HOST": "127.0.0.1",
        "BOT_PORT": str(bot_port),
        "PUBLIC_URL": f"http://127.0.0.1:{bot_port}",
        "OPENAI_API_KEY": "",
        "SLACK_BOT_TOKEN": "",
        "SLACK_SIGNING_SECRET": "",
        "SLACK_APP_TOKEN": "",
    }


def wait_until_up(url: str, dev: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if dev.poll() is not None:
            raise RuntimeError(f"agent-ticket dev exited with {dev.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the dashboard at {url} did not answer within {START_SECONDS} s")


def cli(env: dict[str, str], scratch: Path, *args: str) -> str:
    done = subprocess.run([str(CLI), *args], env=env, cwd=scratch, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"agent-ticket {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def someone_else_edits(data_dir: Path) -> None:
    """Another writer, after the ticket ran: a conflict the revert must show."""
    with sqlite3.connect(data_dir / "target.db") as connection:
        connection.execute("UPDATE invoices SET amount_cents = amount_cents + 2500 WHERE id = ?", (INVOICE,))


async def shoot(base_url: str, original: str, output: Path) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
            context.set_default_timeout(20_000)
            page = await context.new_page()
            await page.goto(f"{base_url}/login?next=/tickets/{original}")
            await page.fill('input[name="username"]', "bob")
            await page.fill('input[name="password"]', PASSWORD)
            await page.click('button:has-text("Sign in")')
            await page.wait_for_url(f"{base_url}/tickets/{original}")
            await page.check('#revert-form input[name="include_conflicts"]')
            await page.click("#revert-form button")
            await page.wait_for_url(lambda url: not url.endswith(original))
            await page.locator("#ticket-status", has_text="awaiting approval").wait_for()
            await page.locator("#conflicts table").wait_for()
            await page.screenshot(path=str(output), full_page=True)
        finally:
            await browser.close()


def main() -> int:
    output = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "images" / "undo-revert-diff.png").resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="revert-shot-") as name:
        scratch = Path(name)
        env = environment(scratch)
        log = (scratch / "dev.log").open("wb")
        dev = subprocess.Popen([str(CLI), "dev"], env=env, cwd=scratch, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until_up(env["PUBLIC_URL"], dev)
            submitted = json.loads(
                cli(env, scratch, "submit", f"mark invoice {INVOICE} as paid", "--as", "dave", "--wait", "--json")
            )
            original = submitted["ticket_id"]
            cli(env, scratch, "approve", original, "--as", "alice", "--comment", "Paid by wire", "--wait")
            someone_else_edits(scratch / "data")
            asyncio.run(shoot(env["PUBLIC_URL"], original, output))
        except Exception:
            log.flush()
            print((scratch / "dev.log").read_text(errors="replace")[-4000:], file=sys.stderr)
            raise
        finally:
            dev.send_signal(signal.SIGINT)
            try:
                dev.wait(timeout=60)
            except subprocess.TimeoutExpired:
                dev.kill()
                dev.wait()
            log.close()
    print(f"wrote {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
