"""The product as a Slack user meets it, for the benchmarks that go through the bot.

`bot_stack` starts the dev server, a fake Slack Web API (in this process, or in a process of its
own so that answering the worker's calls does not share an event loop with the requests being
timed), `agent-ticket worker` and `agent-ticket bot`, and gives back a `SlackUser` that sends what
Slack sends: signed slash commands and button clicks (Slack's v0 HMAC-SHA256 scheme under the
signing secret the bot is configured with for this run only).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from temporalio.client import Client

from bench.fake_slack_server import READY as FAKE_SLACK_READY
from bench.harness import (
    BIN_DIR,
    BOT_READY,
    WORKER_READY,
    ChildProcess,
    DevServer,
    bench_settings,
    bot_process,
    child_pythonpath,
    dev_server,
    free_port,
    prepare_databases,
    worker_process,
)
from bench.product import new_short_id
from core.settings import Settings
from tests.fakes.slack_server import BOT_TOKEN, TEAM_ID, FakeSlack

CHANNEL = "C0TICKETS"  # a channel the fake Slack knows, with the bot in it
REQUESTER = "UDAVE0001"
APPROVER = "UALICE001"
APPROVE_ACTION_ID = "ticket_approve"  # rendering/slack_ids.py; spelled here so a renamed constant fails loudly


@dataclass(frozen=True)
class Sent:
    """One slash command: seconds until the ack, and the ticket it starts."""

    ack_seconds: float
    acknowledged: bool
    short_id: str
    workflow_id: str
    sent_at: float  # time.monotonic() when the request left
    answer: str
    deferred: bool = False  # acked within Slack's window as "slow to answer, not filed yet": news follows

    @property
    def answered(self) -> bool:
        """Acked in time either way: "received", or deferred with the start's outcome still to come."""
        return self.acknowledged or self.deferred


class SlackUser:
    """Signs and posts what Slack posts to the bot's `/slack/events`."""

    def __init__(self, http: aiohttp.ClientSession, secret: str, response_url: str) -> None:
        self.http = http
        self.secret = secret
        self.response_url = response_url

    def _headers(self, body: str) -> dict[str, str]:
        timestamp = str(int(time.time()))
        digest = hmac.new(self.secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
        return {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": f"v0={digest}",
        }

    async def command(self, text: str, user: str = REQUESTER) -> Sent:
        """`/agent-ticket <text>` with a fresh trigger id (a new ticket); the ticket id is derived as the bot does."""
        trigger = f"trigger-{uuid.uuid4().hex}"
        body = urlencode(
            {
                "token": "deprecated-verification-token",
                "team_id": TEAM_ID,
                "team_domain": "bench",
                "channel_id": CHANNEL,
                "channel_name": "tickets",
                "user_id": user,
                "user_name": user.lower(),
                "command": "/agent-ticket",
                "text": text,
                "api_app_id": "A0BENCH",
                "response_url": f"{self.response_url}/{trigger}",
                "trigger_id": trigger,
            }
        )
        short_id = new_short_id(f"slack:{TEAM_ID}:{CHANNEL}:{user}:{trigger}")
        headers = self._headers(body)
        sent_at = time.monotonic()
        began = time.perf_counter()
        async with self.http.post("/slack/events", data=body, headers=headers) as response:
            answer = await response.text()
        elapsed = time.perf_counter() - began
        acknowledged = response.status == 200 and "received" in answer
        deferred = response.status == 200 and "not filed yet" in answer
        return Sent(elapsed, acknowledged, short_id, f"ticket-{short_id}", sent_at, answer[:200], deferred)

    async def click(self, action_id: str, value: str, user: str, message_ts: str) -> float:
        """A button click (`block_actions`); the time it is sent (time.monotonic()). Fails unless acked."""
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID},
            "api_app_id": "A0BENCH",
            "team": {"id": TEAM_ID, "domain": "bench"},
            "container": {"type": "message", "message_ts": message_ts, "channel_id": CHANNEL},
            "channel": {"id": CHANNEL, "name": "tickets"},
            "trigger_id": f"trigger-{uuid.uuid4().hex}",
            "response_url": f"{self.response_url}/click-{uuid.uuid4().hex[:8]}",
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": "b1",
                    "value": value,
                    "action_ts": f"{time.time():.6f}",
                    "text": {"type": "plain_text", "text": "Approve"},
                }
            ],
        }
        body = urlencode({"payload": json.dumps(payload)})
        headers = self._headers(body)
        sent_at = time.monotonic()
        async with self.http.post("/slack/events", data=body, headers=headers) as response:
            await response.read()
        if response.status != 200:
            raise RuntimeError(f"the bot answered the click with {response.status}")
        return sent_at


@dataclass
class BotStack:
    server: DevServer
    client: Client
    settings: Settings
    worker: ChildProcess
    bot: ChildProcess
    user: SlackUser
    fake: FakeSlack | None  # in this process; None when it runs in a process of its own
    fake_process: ChildProcess | None


@contextlib.asynccontextmanager
async def bot_stack(
    directory: Path, *, slack_in_process: bool, approvers: list[str] | None = None, connections: int = 100
) -> AsyncIterator[BotStack]:
    secret = uuid.uuid4().hex
    async with contextlib.AsyncExitStack() as stack:
        server, client = await stack.enter_async_context(dev_server(directory))
        fake: FakeSlack | None = None
        fake_process: ChildProcess | None = None
        if slack_in_process:
            fake = await FakeSlack().start()
            stack.push_async_callback(fake.stop)
            fake_url = fake.url
        else:
            fake_process = ChildProcess(
                "fake Slack",
                [str(BIN_DIR / "python"), "-m", "bench.fake_slack_server"],
                directory / "fake-slack.log",
                env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": child_pythonpath(), "PYTHONUNBUFFERED": "1"},
                cwd=directory,
            )
            await fake_process.start()
            stack.push_async_callback(fake_process.stop)
            await fake_process.wait_for_line(FAKE_SLACK_READY)
            fake_url = fake_process.log_file.read_text().split(FAKE_SLACK_READY, 1)[1].split()[0]
        overrides: dict[str, Any] = {}
        if approvers is not None:
            overrides["approvers"] = approvers
        settings = bench_settings(
            directory / "data",
            server.address,
            f"bench-{uuid.uuid4().hex[:6]}",
            slack_bot_token=BOT_TOKEN,
            slack_signing_secret=secret,
            slack_api_url=f"{fake_url}/api/",
            bot_port=free_port(),
            **overrides,
        )
        await prepare_databases(settings)
        worker = worker_process(settings, directory / "worker.log")
        bot = bot_process(settings, directory / "bot.log")
        await worker.start()
        stack.push_async_callback(worker.stop)
        await bot.start()
        stack.push_async_callback(bot.stop)
        await worker.wait_for_line(WORKER_READY)
        await bot.wait_for_line(BOT_READY)
        connector = aiohttp.TCPConnector(limit=connections)
        http = await stack.enter_async_context(
            aiohttp.ClientSession(
                f"http://{settings.bot_host}:{settings.bot_port}",
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=30),
            )
        )
        user = SlackUser(http, secret, f"{fake_url}/respond")
        yield BotStack(server, client, settings, worker, bot, user, fake, fake_process)
