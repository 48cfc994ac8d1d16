"""Workflow start: `TicketService.start` until the server has registered the workflow id.

Measured twice, because eager workflow start only applies when the starting client also runs
the worker: from a client without a worker (the bot's case: `agent-ticket bot` and
`agent-ticket worker` are separate processes), and from the worker's own client (the
`agent-ticket dev` case, where the first workflow task comes back in the start response).
Tickets are started one after another with a pause, and processed by a real worker meanwhile.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import AsyncExitStack

from temporalio.client import Client

from bench.harness import (
    WORKER_READY,
    BenchResult,
    Stats,
    auto_approved_text,
    bench_settings,
    dev_server,
    log,
    prepare_databases,
    run_benchmark,
    scaled,
    summarize,
    workdir,
    worker_process,
)
from bench.product import WORKFLOW_EXECUTION_TIMEOUT, front_door, new_short_id
from core.bootstrap import Databases
from core.models import TicketRequest
from core.names import WORKFLOW_NAME, workflow_id_for
from core.settings import Settings
from tests.pipeline import REQUESTER
from worker.activities import build_activity_set
from worker.build import build_workers

TARGET_MS = 50.0
PAUSE_SECONDS = 0.25  # about 4 tickets/s: the worker keeps up, so the starts are not queued behind a backlog


def request(settings: Settings, index: int) -> TicketRequest:
    return TicketRequest(text=auto_approved_text(index), requester=REQUESTER, approval=settings.approval_settings())


async def time_starts(client: Client, settings: Settings, count: int) -> list[float]:
    """Seconds per start."""
    service = front_door(client, settings, settings.temporal_task_queue)
    samples: list[float] = []
    for index in range(count):
        began = time.perf_counter()
        await service.start(request(settings, index))
        samples.append(time.perf_counter() - began)
        await asyncio.sleep(PAUSE_SECONDS)
    return samples


async def starts_eagerly(client: Client, settings: Settings) -> bool:
    """Whether the server hands this client the first workflow task with the start (eager start).

    `TicketService.start` does not return its handle, so one start is made the same way directly.
    """
    handle = await client.start_workflow(
        WORKFLOW_NAME,
        request(settings, 0),
        id=workflow_id_for(new_short_id()),
        task_queue=settings.temporal_task_queue,
        execution_timeout=WORKFLOW_EXECUTION_TIMEOUT,
        request_eager_start=True,
    )
    return bool(getattr(handle, "__temporal_eagerly_started", False))


async def without_worker_in_process(settings: Settings, client: Client, count: int) -> tuple[list[float], bool]:
    worker = worker_process(settings, settings.data_dir / "worker.log")
    await worker.start()
    try:
        await worker.wait_for_line(WORKER_READY)
        await time_starts(client, settings, 5)
        return await time_starts(client, settings, count), await starts_eagerly(client, settings)
    finally:
        await worker.stop()


async def with_worker_in_process(settings: Settings, client: Client, count: int) -> tuple[list[float], bool]:
    databases = Databases.open(settings)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(databases.close)
        activities = build_activity_set(settings, databases)
        stack.push_async_callback(activities.close)
        for worker in build_workers(client, activities, task_queue=settings.temporal_task_queue):
            await stack.enter_async_context(worker)
        await time_starts(client, settings, 5)
        return await time_starts(client, settings, count), await starts_eagerly(client, settings)


def describe(stats: Stats) -> str:
    return f"p50 {stats.p50:.1f} ms, p99 {stats.p99:.1f} ms"


async def main() -> None:
    count = scaled(100, 20)
    with workdir("start") as directory:
        async with dev_server(directory) as (server, client):
            results: dict[str, Stats] = {}
            eager: dict[str, bool] = {}
            for name, measure in (("bot", without_worker_in_process), ("dev", with_worker_in_process)):
                settings = bench_settings(directory / name, server.address, f"bench-{uuid.uuid4().hex[:6]}")
                await prepare_databases(settings)
                log(f"{count} starts, client {'with' if name == 'dev' else 'without'} a worker in its process")
                samples, eager[name] = await measure(settings, client, count)
                results[name] = summarize(samples)
    bot, dev = results["bot"], results["dev"]
    BenchResult(
        key="start_latency",
        title="Workflow start",
        how=(
            f"`TicketService.start` (the bot's and CLI's path: REJECT_DUPLICATE id policy, eager start requested) "
            f"{count} times, {PAUSE_SECONDS * 1000:.0f} ms apart, while a real worker runs the tickets; "
            "from a client without a worker in its process (the bot) and from the worker's own client "
            "(`agent-ticket dev`, where eager start applies)."
        ),
        result=(
            f"bot's client {describe(bot)}; worker's own client {describe(dev)} "
            f"(eager start {'used' if eager['dev'] else 'NOT used'})"
        ),
        target=f"p50 ≤ {TARGET_MS:.0f} ms",
        met=bot.p50 <= TARGET_MS and dev.p50 <= TARGET_MS,
        samples=f"{bot.n} starts from each client",
        figures={"bot_client_ms": vars(bot), "worker_client_ms": vars(dev), "eager_start": eager},
    ).save()


if __name__ == "__main__":
    run_benchmark(main)
