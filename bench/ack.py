"""Slash-command ack: signed `/agent-ticket` requests against the real bot, 1, 20 and 50 at a time.

Everything runs together on this machine, as the target says: the dev server, `agent-ticket
worker` and `agent-ticket bot` (uvicorn serving the bot's Starlette app) as separate processes,
both talking to the fake Slack Web API (its own process). Each request is a new ticket,
signed with Slack's v0 scheme (HMAC-SHA256 of `v0:{timestamp}:{body}`) under the signing
secret the bot is configured with, and the time measured is until the bot's HTTP answer
(the ack) arrives; the ticket's workflow is started after the ack and runs meanwhile.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp
from temporalio.client import Client

from bench.fake_slack_server import READY as FAKE_SLACK_READY
from bench.harness import (
    BIN_DIR,
    BOT_READY,
    REPO_ROOT,
    WORKER_READY,
    BenchResult,
    ChildProcess,
    Stats,
    auto_approved_text,
    bench_settings,
    bot_process,
    dev_server,
    free_port,
    log,
    prepare_databases,
    process_cpu_seconds,
    profile_dir,
    run_benchmark,
    scaled,
    summarize,
    workdir,
    worker_process,
)
from core.models import TicketRequest
from core.settings import Settings
from core.tickets import TicketService
from tests.fakes.slack_server import BOT_TOKEN, TEAM_ID

TARGET_P99_MS = 100.0
SIGNING_SECRET = uuid.uuid4().hex  # configured on the bot for this run only
CHANNEL = "C0TICKETS"  # a channel the fake Slack knows, with the bot in it
REQUESTER = "UDAVE0001"
LEVELS = (1, 20, 50)


def sign(body: str, timestamp: int) -> str:
    """Slack's request signature: `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}`."""
    digest = hmac.new(SIGNING_SECRET.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return f"v0={digest}"


def command_body(text: str, response_url: str) -> str:
    """The form Slack posts for `/agent-ticket <text>`; a fresh trigger id makes it a new ticket."""
    trigger = f"trigger-{uuid.uuid4().hex}"
    return urlencode(
        {
            "token": "deprecated-verification-token",
            "team_id": TEAM_ID,
            "team_domain": "bench",
            "channel_id": CHANNEL,
            "channel_name": "tickets",
            "user_id": REQUESTER,
            "user_name": "dave",
            "command": "/agent-ticket",
            "text": text,
            "api_app_id": "A0BENCH",
            "response_url": f"{response_url}/{trigger}",
            "trigger_id": trigger,
        }
    )


async def send(http: aiohttp.ClientSession, text: str, response_url: str) -> float:
    """One signed slash command; seconds until the ack. Fails unless the bot acknowledged the ticket."""
    body = command_body(text, response_url)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": sign(body, timestamp),
    }
    began = time.perf_counter()
    async with http.post("/slack/events", data=body, headers=headers) as response:
        answer = await response.text()
    elapsed = time.perf_counter() - began
    if response.status != 200 or "received" not in answer:
        raise RuntimeError(f"the bot answered {response.status}: {answer[:200]}")
    return elapsed


async def closed_loop(concurrency: int, total: int, job: Callable[[int], Awaitable[float]]) -> list[float]:
    """`concurrency` senders, each running its next job as soon as its previous one is done; each job's time."""
    samples: list[float] = []
    counter = iter(range(total))

    async def sender() -> None:
        for index in counter:
            samples.append(await job(index))

    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return samples


async def load(http: aiohttp.ClientSession, concurrency: int, total: int, response_url: str) -> list[float]:
    """`concurrency` senders, each sending its next command as soon as the previous one is acked."""
    return await closed_loop(concurrency, total, lambda index: send(http, auto_approved_text(index), response_url))


@dataclass(frozen=True)
class StartCapacity:
    """Temporal alone: workflow starts from a client, with no bot in front and no worker behind."""

    stats: Stats
    per_second: float
    server_cpu_ms: float


async def temporal_start_capacity(client: Client, settings: Settings, server_pid: int, total: int) -> StartCapacity:
    """As many senders as the ack's top level, each starting a ticket as the last one is accepted.

    The queue is one no worker polls, so the server does nothing but accept starts: the bound on
    an ack that waits for the start, whatever the bot does.
    """
    service = TicketService(client, task_queue=f"{settings.temporal_task_queue}-unpolled")
    request = TicketRequest(text=auto_approved_text(0), requester=REQUESTER, approval=settings.approval_settings())

    async def start(_: int) -> float:
        began = time.perf_counter()
        await service.start(request)
        return time.perf_counter() - began

    cpu = process_cpu_seconds(server_pid)
    began = time.perf_counter()
    samples = await closed_loop(max(LEVELS), total, start)
    elapsed = time.perf_counter() - began
    return StartCapacity(summarize(samples), total / elapsed, 1000 * (process_cpu_seconds(server_pid) - cpu) / total)


async def main() -> None:
    totals = {1: scaled(100, 20), 20: scaled(400, 60), 50: scaled(1000, 150)}
    results: dict[int, Stats] = {}
    rates: dict[int, float] = {}
    with workdir("ack") as directory:
        async with dev_server(directory) as (server, client):
            fake = ChildProcess(
                "fake Slack",
                [str(BIN_DIR / "python"), "-m", "bench.fake_slack_server"],
                directory / "fake-slack.log",
                env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"},
                cwd=REPO_ROOT,
            )
            await fake.start()
            try:
                await fake.wait_for_line(FAKE_SLACK_READY)
                fake_url = fake.log_file.read_text().split(FAKE_SLACK_READY, 1)[1].split()[0]
                settings = bench_settings(
                    directory / "data",
                    server.address,
                    f"bench-{uuid.uuid4().hex[:6]}",
                    slack_bot_token=BOT_TOKEN,
                    slack_signing_secret=SIGNING_SECRET,
                    slack_api_url=f"{fake_url}/api/",
                    bot_port=free_port(),
                )
                await prepare_databases(settings)
                worker = worker_process(settings, directory / "worker.log")
                bot = bot_process(settings, directory / "bot.log")
                await worker.start()
                await bot.start()
                try:
                    await worker.wait_for_line(WORKER_READY)
                    await bot.wait_for_line(BOT_READY)
                    log(f"Temporal alone: {totals[max(LEVELS)]} starts, {max(LEVELS)} at a time")
                    capacity = await temporal_start_capacity(client, settings, server.child.pid, totals[max(LEVELS)])
                    base_url = f"http://{settings.bot_host}:{settings.bot_port}"
                    connector = aiohttp.TCPConnector(limit=max(LEVELS))
                    timeout = aiohttp.ClientTimeout(total=30)
                    async with aiohttp.ClientSession(base_url, connector=connector, timeout=timeout) as http:
                        await load(http, 5, 20, f"{fake_url}/respond")  # warm-up
                        bot_cpu = process_cpu_seconds(bot.pid)
                        own_cpu = process_cpu_seconds(os.getpid())
                        profiles = profile_dir()
                        if profiles is not None:
                            profiles.mkdir(parents=True, exist_ok=True)
                            await bot.start_profiler(profiles / "ack-bot.txt", 60)
                        for level in LEVELS:
                            log(f"{totals[level]} slash commands, {level} at a time")
                            began = time.perf_counter()
                            results[level] = summarize(await load(http, level, totals[level], f"{fake_url}/respond"))
                            rates[level] = totals[level] / (time.perf_counter() - began)
                        bot_cpu = process_cpu_seconds(bot.pid) - bot_cpu
                        own_cpu = process_cpu_seconds(os.getpid()) - own_cpu
                finally:
                    await bot.stop()
                    await worker.stop()
            finally:
                await fake.stop()

    at_max = results[max(LEVELS)]
    commands = sum(totals.values())
    BenchResult(
        key="ack",
        title="Slash-command ack",
        how=(
            "Signed `/agent-ticket show invoices for <customer>` commands (Slack v0 HMAC-SHA256 signature, fresh "
            "trigger id each) posted to `agent-ticket bot` (uvicorn), closed loop at 1, 20 and 50 concurrent "
            f"senders ({', '.join(str(totals[level]) for level in LEVELS)} commands); each starts a real ticket "
            "that `agent-ticket worker` runs meanwhile, with Slack calls going to the fake Slack. The bot acks once "
            "Temporal has accepted the ticket's workflow (so an acknowledged ticket exists) or its 2 s budget is "
            "spent. Time = until the HTTP answer (the ack) is received."
        ),
        result="; ".join(f"{level} concurrent: p50 {s.p50:.0f} ms, p99 {s.p99:.0f} ms" for level, s in results.items()),
        target=f"p99 < {TARGET_P99_MS:.0f} ms at 50 concurrent (Slack allows 3 s)",
        met=at_max.p99 < TARGET_P99_MS,
        notes=(
            f"Commands acknowledged per second: {', '.join(f'{rates[level]:.0f} at {level}' for level in LEVELS)}. "
            + (
                ""
                if at_max.p99 < TARGET_P99_MS
                else (
                    f"Why: every ack waits until the Temporal server has accepted the ticket's workflow start. "
                    f"A closed loop of {max(LEVELS)} senders keeps {max(LEVELS)} starts queued at a server that "
                    f"accepted {rates[max(LEVELS)]:.0f} per second while it and the worker ran those tickets on the "
                    f"same two cores, so each command waited about {max(LEVELS)} / {rates[max(LEVELS)]:.0f} s = "
                    f"{1000 * max(LEVELS) / rates[max(LEVELS)]:.0f} ms; the bot itself used "
                    f"{1000 * bot_cpu / commands:.1f} ms of CPU per command. "
                    "The server alone (starts from a client, no bot in front, the worker idle) accepted "
                    f"{capacity.per_second:.0f} starts per second from {max(LEVELS)} senders, "
                    f"p99 {capacity.stats.p99:.0f} ms, at "
                    f"{capacity.server_cpu_ms:.1f} ms of server CPU each: an ack that waits for the start cannot "
                    f"reach p99 {TARGET_P99_MS:.0f} ms at {max(LEVELS)} concurrent on this machine, "
                    "whatever the bot does."
                )
            )
        ),
        figures={
            **{f"concurrency_{level}_ms": vars(stats) for level, stats in results.items()},
            "commands_per_second": {str(level): round(rate, 1) for level, rate in rates.items()},
            "bot_cpu_ms_per_command": round(1000 * bot_cpu / commands, 2),
            "load_generator_cpu_ms_per_command": round(1000 * own_cpu / commands, 2),
            "temporal_alone_starts": {
                "senders": max(LEVELS),
                "per_second": round(capacity.per_second, 1),
                "latency_ms": vars(capacity.stats),
                "server_cpu_ms_per_start": round(capacity.server_cpu_ms, 2),
            },
        },
    ).save()


if __name__ == "__main__":
    run_benchmark(main)
