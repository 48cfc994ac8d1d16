"""A flood of anonymous sign-ins cannot take the bot, or Slack with it, down (issue 14, finding 1).

`agent-ticket bot` runs as its own process under an address-space limit (`prlimit --as`), as
a container runs under its memory limit. Its one dashboard user has an argon2 hash of
`MEMORY_KIB` per check, and the limit is chosen from the bot's own measured size so that
the gate's slots fit under it with room to spare while the flood, checked all at once as the
old code did, could not. Sign-in posts come from many forwarded addresses (the test is the
bot's trusted proxy), so the throttle lets them through and only the gate stands between them
and argon2. Meanwhile signed Slack slash commands must still be acknowledged within 3 s.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from temporalio.testing import WorkflowEnvironment

from core.bootstrap import Databases, init_databases
from core.settings import load_settings
from tests.durability.processes import ChildProcess, clean_environment
from tests.fakes.slack_server import BOT_TOKEN, FakeSlack
from tests.slack.conftest import SIGNING_SECRET, SlackUserAgent, signed_headers
from tests.support import free_port

MIB = 1024 * 1024
MEMORY_KIB = 32 * 1024  # each check holds 32 MiB: what argon2 costs is what the flood multiplies
FLOOD = 48  # parallel sign-ins: 48 x 32 MiB = 1.5 GiB if all were checked at once
SLOTS = 2  # DASHBOARD_LOGIN_CONCURRENCY
HEADROOM = 96 * MIB  # above the gate's worst case, for requests, threads and the allocator
SLACK_ACK_SECONDS = 3.0
PASSWORD = "flood-test-pw"
AGENT_TICKET = str(Path(sys.executable).parent / "agent-ticket")


def _status_kib(pid: int, field: str) -> int:
    """A `VmXxx` line of /proc/PID/status, in KiB."""
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB$", text, re.MULTILINE)
    assert match, f"no {field} in /proc/{pid}/status"
    return int(match.group(1))


def _bot_env(tmp_path: Path, local_env: WorkflowEnvironment, fake: FakeSlack, port: int) -> dict[str, str]:
    hasher = PasswordHasher(time_cost=1, memory_cost=MEMORY_KIB, parallelism=1)
    return clean_environment(
        {
            "TEMPORAL_ADDRESS": local_env.client.service_client.config.target_host,
            "TEMPORAL_TASK_QUEUE": f"flood-{uuid.uuid4().hex[:8]}",  # no worker: tickets start, nothing runs
            "AGENT_TICKET_DATA_DIR": str(tmp_path / "data"),
            "BOT_PORT": str(port),
            "PUBLIC_URL": f"http://127.0.0.1:{port}",
            "FORWARDED_ALLOW_IPS": "127.0.0.1",  # the test is the proxy: each sign-in comes "from" elsewhere
            "DASHBOARD_USERS": f"alice:alice:{hasher.hash(PASSWORD)}",
            "DASHBOARD_SESSION_SECRET": "flood-session-secret-" + "x" * 32,
            "DASHBOARD_LOGIN_CONCURRENCY": str(SLOTS),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": fake.api_url,
            "APPROVERS": "alice",
            "MALLOC_ARENA_MAX": "2",  # glibc reserves 64 MiB of address space per thread arena otherwise
        }
    )


async def _measure_unlimited(env: dict[str, str], port: int) -> int:
    """The bot's address-space size once it serves, without a limit."""
    bot = ChildProcess("bot", [AGENT_TICKET, "bot"], env)
    await bot.start()
    try:
        await bot.wait_for_line("Bot serving", within=60)
        assert bot.process is not None
        return _status_kib(bot.process.pid, "VmSize") * 1024
    finally:
        await bot.stop()


async def _sign_in_flood(base_url: str, count: int) -> list[int]:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as browser:
        page = await browser.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token, page.text

        async def attempt(index: int) -> int:
            form = {"username": "alice" if index % 2 else f"nobody{index}", "password": f"guess-{index}"}
            headers = {"Origin": base_url, "X-Forwarded-For": f"198.18.{index // 250}.{index % 250 + 1}"}
            response = await browser.post("/login", data={**form, "csrf_token": token.group(1)}, headers=headers)
            return response.status_code

        return list(await asyncio.gather(*(attempt(index) for index in range(count))))


async def _slack_acks(slack: SlackUserAgent, during: asyncio.Task[Any]) -> list[float]:
    """Slash commands, signed as Slack signs them, one after another while the flood lasts."""
    elapsed = []
    while not during.done() or not elapsed:
        body = slack.command_body("help")
        started = time.monotonic()
        response = await slack.http.post("/slack/events", content=body, headers=signed_headers(body))
        elapsed.append(time.monotonic() - started)
        assert response.status_code == 200, response.text
        await asyncio.sleep(0.1)
    return elapsed


@pytest.mark.timeout(180)
async def test_sign_in_flood_under_a_memory_limit_leaves_the_bot_and_slack_alive(
    local_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    fake = await FakeSlack().start()
    port = free_port()
    env = _bot_env(tmp_path, local_env, fake, port)
    settings = load_settings(_env_file=None, data_dir=tmp_path / "data")
    databases = Databases.open(settings)
    await init_databases(databases, settings)
    await databases.close()

    serving_size = await _measure_unlimited(env, port)
    gate_worst = SLOTS * MEMORY_KIB * 1024
    limit = serving_size + gate_worst + HEADROOM
    # The arithmetic the test rests on: the gate's slots fit, the flood checked at once does not.
    assert serving_size + gate_worst < limit < serving_size + FLOOD * MEMORY_KIB * 1024

    bot = ChildProcess("bot", ["prlimit", f"--as={limit}", "--", AGENT_TICKET, "bot"], env)
    await bot.start()
    try:
        await bot.wait_for_line("Bot serving", within=60)
        base_url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
            slack = SlackUserAgent(http, fake)
            flood = asyncio.create_task(_sign_in_flood(base_url, FLOOD))
            acks = await _slack_acks(slack, flood)
            codes = await flood
            assert bot.running, f"the bot died during the flood:\n{bot.output()}"
            assert (await http.get("/healthz")).status_code == 200

        assert bot.process is not None
        peak = _status_kib(bot.process.pid, "VmPeak") * 1024
        peak_resident = _status_kib(bot.process.pid, "VmHWM") * 1024
        print(
            f"serving {serving_size / MIB:.0f} MiB, limit {limit / MIB:.0f} MiB, peak {peak / MIB:.0f} MiB "
            f"(resident {peak_resident / MIB:.0f} MiB); "
            f"codes {sorted(set(codes))}: {[codes.count(c) for c in sorted(set(codes))]}; "
            f"slack acks max {max(acks):.2f}s over {len(acks)}"
        )
        assert max(acks) < SLACK_ACK_SECONDS, acks
        assert set(codes) <= {401, 503}, codes  # refused or turned away: never a crash (500) or a hang
        assert codes.count(503) > 0  # the gate, not luck, kept the checks few
        assert "MemoryError" not in bot.output(200) and "Memory allocation error" not in bot.output(200)
    finally:
        await bot.stop()
        await fake.stop()
