"""Orchestration overhead: what a durable workflow adds to an auto-approved ticket.

One ticket at a time on the real workers (in this process, so eager workflow start and eager
activities apply as in `agent-ticket dev`): end to end (client start → result) minus the time
spent inside activities (timed in the worker, local activities included). The same
activities chained in plain asyncio (`bench/plain_chain.py`) give the baseline for the ratio.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from bench.activity_timing import ActivityTimer
from bench.harness import (
    BenchResult,
    auto_approved_text,
    bench_settings,
    dev_server,
    log,
    prepare_databases,
    run_benchmark,
    scaled,
    summarize,
    workdir,
)
from bench.history_timing import HistoryTiming, history_timing, mean_timing
from bench.plain_chain import PlainChain
from bench.product import TicketService, new_short_id
from core.bootstrap import Databases
from core.models import OutcomeStatus, TicketRequest
from core.settings import Settings
from tests.pipeline import REQUESTER
from worker.activities import build_activity_set, slack_dependencies
from worker.build import build_workers

TARGET_MS = 150.0
WARM_UP = 5


@dataclass
class TemporalRun:
    end_to_end: list[float] = field(default_factory=list)  # seconds per ticket, client start → result
    inside: list[float] = field(default_factory=list)  # seconds per ticket inside activities
    inside_local: list[float] = field(default_factory=list)  # of which inside local activities
    per_activity: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    histories: list[HistoryTiming] = field(default_factory=list)


async def temporal_tickets(client: Client, settings: Settings, timer: ActivityTimer, count: int) -> TemporalRun:
    """Tickets one at a time through the real workers: timings, and each ticket's history breakdown."""
    run = TemporalRun()
    databases = Databases.open(settings)
    queue = settings.temporal_task_queue
    async with AsyncExitStack() as stack:
        stack.push_async_callback(databases.close)
        activities = build_activity_set(settings, databases)
        stack.push_async_callback(activities.close)
        for worker in build_workers(client, activities, task_queue=queue):
            await stack.enter_async_context(worker)
        service = TicketService(client, databases.app_sessions, queue, signing_key=settings.signing_key)
        for index in range(WARM_UP + count):
            request = TicketRequest(
                text=auto_approved_text(index), requester=REQUESTER, approval=settings.approval_settings()
            )
            started = time.perf_counter()
            ticket = await service.start(request)
            outcome = await service.result(ticket.short_id)
            elapsed = time.perf_counter() - started
            if outcome.status is not OutcomeStatus.DONE:
                raise RuntimeError(f"{ticket.label} ended {outcome.status.value}: {outcome.reason}")
            if index < WARM_UP:
                continue
            run.end_to_end.append(elapsed)
            run.inside.append(timer.total(ticket.workflow_id))
            run.inside_local.append(sum(item.seconds for item in timer.times(ticket.workflow_id) if item.local))
            for item in timer.times(ticket.workflow_id):
                run.per_activity[item.name].append(item.seconds)
            run.histories.append(history_timing(await service.handle(ticket.short_id).fetch_history()))
    return run


def signed_as_a_front_door(request: TicketRequest, workflow_id: str, settings: Settings) -> TicketRequest:
    """`request` signed as `TicketService.start` signs it, where the tree signs requests."""
    try:
        from core.request_proof import sign_request
    except ImportError:  # a tree from before signed requests
        return request
    key = settings.signing_key
    return request if key is None else sign_request(request, workflow_id, key, datetime.now(UTC))


async def plain_tickets(settings: Settings, count: int) -> tuple[list[float], dict[str, list[float]]]:
    """The same activities chained without Temporal: end-to-end seconds and per-activity seconds."""
    end_to_end: list[float] = []
    per_activity: dict[str, list[float]] = defaultdict(list)
    databases = Databases.open(settings)
    activities = build_activity_set(settings, databases)
    notifier, _ = slack_dependencies(settings, databases)
    try:
        for index in range(WARM_UP + count):
            chain = PlainChain(activities, new_short_id(), notifier)
            request = TicketRequest(
                text=auto_approved_text(index), requester=REQUESTER, approval=settings.approval_settings()
            )
            started = time.perf_counter()
            outcome = await chain.run(signed_as_a_front_door(request, chain.workflow_id, settings))
            elapsed = time.perf_counter() - started
            if outcome.execution is None:
                raise RuntimeError("the plain chain did not execute its plan")
            if index < WARM_UP:
                continue
            end_to_end.append(elapsed)
            for name, seconds in chain.times:
                per_activity[name].append(seconds)
    finally:
        await activities.close()
        await databases.close()
    return end_to_end, per_activity


def per_ticket_ms(per_activity: dict[str, list[float]], tickets: int) -> dict[str, float]:
    return {name: round(1000 * sum(values) / tickets, 1) for name, values in sorted(per_activity.items())}


def why_overhead(run: TemporalRun, breakdown: dict[str, float]) -> str:
    """The overhead split into where it was spent, in means per ticket (ms)."""
    tickets = max(len(run.end_to_end), 1)
    overhead = 1000 * (sum(run.end_to_end) - sum(run.inside)) / tickets
    local = 1000 * sum(run.inside_local) / tickets
    remote = 1000 * (sum(run.inside) - sum(run.inside_local)) / tickets
    parts = {
        "workflow tasks waiting to be picked up": breakdown["workflow_task_wait_ms"],
        "workflow tasks being processed, beyond their local activities": breakdown["workflow_task_run_ms"] - local,
        "activities waiting to start": breakdown["activity_wait_ms"],
        "activities' results being reported": breakdown["activity_run_ms"] - remote,
    }
    rest = overhead - sum(parts.values())
    listed = ", ".join(f"{name} {value:.0f} ms" for name, value in parts.items())
    return (
        f"Why: of a mean {overhead:.0f} ms of overhead per ticket, {listed}, and {rest:.0f} ms outside the "
        "history (the start call, delivering the result to the client). Each workflow task and activity result "
        "is a round trip through the server, which writes it to its SQLite file before answering."
    )


async def main() -> None:
    count = scaled(50, 10)
    with workdir("overhead") as directory:
        async with dev_server(directory) as (server, _):
            timer = ActivityTimer()
            client = await Client.connect(server.address, data_converter=pydantic_data_converter, interceptors=[timer])
            settings = bench_settings(directory / "data", server.address, f"bench-{uuid.uuid4().hex[:6]}")
            await prepare_databases(settings)
            log(f"{count} auto-approved tickets through Temporal, one at a time")
            run = await temporal_tickets(client, settings, timer, count)
            log(f"{count} tickets through the same activities in plain asyncio")
            plain, plain_activities = await plain_tickets(settings, count)

    overhead = [total - spent for total, spent in zip(run.end_to_end, run.inside, strict=True)]
    e2e_stats, inside_stats, overhead_stats, plain_stats = (
        summarize(run.end_to_end),
        summarize(run.inside),
        summarize(overhead),
        summarize(plain),
    )
    ratio = e2e_stats.p50 / plain_stats.p50
    breakdown = mean_timing(run.histories)
    BenchResult(
        key="overhead",
        title="Orchestration overhead",
        how=(
            f"{count} auto-approved tickets (`show invoices for <customer>`, offline planner, SQLite) one at a "
            "time on the real workers in the benchmark's process; overhead = client start → result minus "
            "time inside activities (timed by a worker interceptor, local activities included). Baseline: "
            "the same activity methods chained in plain asyncio."
        ),
        result=(
            f"overhead p50 {overhead_stats.p50:.0f} ms (p90 {overhead_stats.p90:.0f}); end to end p50 "
            f"{e2e_stats.p50:.0f} ms vs plain asyncio {plain_stats.p50:.0f} ms: ratio {ratio:.1f}x"
        ),
        target=f"overhead p50 ≤ {TARGET_MS:.0f} ms per ticket; ratio reported",
        met=overhead_stats.p50 <= TARGET_MS,
        samples=f"{overhead_stats.n} tickets through Temporal, {plain_stats.n} in plain asyncio",
        notes=(
            f"Per ticket, from the histories: {breakdown['workflow_tasks']:.0f} workflow tasks (waiting to be picked "
            f"up {breakdown['workflow_task_wait_ms']:.0f} ms in all, being processed "
            f"{breakdown['workflow_task_run_ms']:.0f} ms, local activities included), {breakdown['activities']:.0f} "
            "activities "
            f"({breakdown['eager_activities']:.0f} dispatched eagerly; waiting {breakdown['activity_wait_ms']:.0f} ms, "
            f"started → completed {breakdown['activity_run_ms']:.0f} ms), {breakdown['local_activities']:.0f} local "
            f"activities, {breakdown['history_events']:.0f} history events. "
            + ("" if overhead_stats.p50 <= TARGET_MS else why_overhead(run, breakdown))
        ),
        figures={
            "end_to_end_ms": vars(e2e_stats),
            "inside_activities_ms": vars(inside_stats),
            "overhead_ms": vars(overhead_stats),
            "plain_asyncio_ms": vars(plain_stats),
            "ratio_p50": round(ratio, 2),
            "temporal_activity_ms_per_ticket": per_ticket_ms(run.per_activity, count),
            "history_per_ticket": {key: round(value, 1) for key, value in breakdown.items()},
            "plain_activity_ms_per_ticket": per_ticket_ms(plain_activities, count),
        },
    ).save()


if __name__ == "__main__":
    run_benchmark(main)
