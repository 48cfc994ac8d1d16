"""Throughput: auto-approved tickets through one worker process, as fast as they finish, for 60 s.

The worker is `agent-ticket worker` (both queues, SQLite, offline planner), as an operator runs
it. The driver keeps `IN_FLIGHT` tickets running: each finished ticket is replaced at once, so
the rate measured is what the worker and server sustain, without an ever-growing backlog that
would only measure queueing. Afterwards every history is checked for WorkflowTaskTimedOut.
CPU of the worker and of the server is read from /proc, giving CPU-seconds per ticket.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import Counter
from dataclasses import dataclass, field

from temporalio.api.enums.v1 import EventType, TimeoutType
from temporalio.client import Client

from bench.harness import (
    BenchResult,
    auto_approved_text,
    dev_server,
    gather_limited,
    log,
    polling_worker,
    process_cpu_seconds,
    process_rss_bytes,
    profile_dir,
    run_benchmark,
    scaled,
    summarize,
    workdir,
)
from core.models import OutcomeStatus, TicketRequest
from core.settings import Settings
from core.tickets import TicketService
from tests.pipeline import REQUESTER

TARGET_PER_SECOND = 15.0
# Enough to keep worker and server saturated (Little's law: 15 tickets/s x ~1 s each); more only
# lengthens queues, and an open loop (start, never wait) would measure a growing backlog instead.
IN_FLIGHT = 20


@dataclass
class Run:
    started: int = 0
    finished_in_window: int = 0
    failed: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    workflow_ids: list[str] = field(default_factory=list)
    per_interval: list[int] = field(default_factory=list)


async def drive(service: TicketService, settings: Settings, seconds: float, in_flight: int) -> Run:
    """Keep `in_flight` tickets running until `seconds` have passed; count those that finish in time."""
    run = Run()
    deadline = time.monotonic() + seconds
    interval = 10.0
    buckets = [0] * int(seconds // interval + 1)
    opened = time.monotonic()

    async def lane() -> None:
        while time.monotonic() < deadline:
            index = run.started
            run.started += 1
            request = TicketRequest(
                text=auto_approved_text(index), requester=REQUESTER, approval=settings.approval_settings()
            )
            began = time.monotonic()
            ticket = await service.start(request)
            run.workflow_ids.append(ticket.workflow_id)
            outcome = await service.result(ticket.short_id)
            ended = time.monotonic()
            if outcome.status is not OutcomeStatus.DONE:
                run.failed.append(f"{ticket.label}: {outcome.status.value}: {outcome.reason}")
            if ended <= deadline:
                run.finished_in_window += 1
                run.latencies.append(ended - began)
                buckets[int((ended - opened) // interval)] += 1

    await asyncio.gather(*(lane() for _ in range(in_flight)))
    run.per_interval = buckets[: int(seconds // interval)]
    return run


@dataclass
class TaskWaits:
    """From the histories: workflow task time-outs by type, and how long tasks waited to be picked up."""

    timeouts: Counter[str] = field(default_factory=Counter)
    waits: list[float] = field(default_factory=list)


async def workflow_task_waits(client: Client, workflow_ids: list[str]) -> TaskWaits:
    found = TaskWaits()

    async def read(workflow_id: str) -> None:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        scheduled = 0.0
        for event in history.events:
            when = event.event_time.ToMicroseconds() / 1e6
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
                scheduled = when
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                found.waits.append(when - scheduled)
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
                timeout_type = event.workflow_task_timed_out_event_attributes.timeout_type
                found.timeouts[TimeoutType.Name(timeout_type)] += 1

    await gather_limited(20, [functools.partial(read, workflow_id) for workflow_id in workflow_ids])
    return found


async def main() -> None:
    seconds = float(scaled(60, 15))
    with workdir("throughput") as directory:
        async with (
            dev_server(directory) as (server, client),
            polling_worker(directory, server.address) as (settings, worker),
        ):
            service = TicketService(client, task_queue=settings.temporal_task_queue)
            log("warming up")
            await drive(service, settings, 5.0, 5)
            server_pid = server.child.pid
            cpu_before = process_cpu_seconds(worker.pid), process_cpu_seconds(server_pid)
            log(f"driving {IN_FLIGHT} tickets in flight for {seconds:.0f} s")
            profiles = profile_dir()
            if profiles is not None:
                profiles.mkdir(parents=True, exist_ok=True)
                await worker.start_profiler(profiles / "throughput-worker.txt", seconds)
            run = await drive(service, settings, seconds, IN_FLIGHT)
            worker_cpu = process_cpu_seconds(worker.pid) - cpu_before[0]
            server_cpu = process_cpu_seconds(server_pid) - cpu_before[1]
            worker_rss = process_rss_bytes(worker.pid) / 2**20
            tasks = await workflow_task_waits(client, run.workflow_ids)

    timeouts = sum(tasks.timeouts.values())
    task_wait = summarize(tasks.waits)
    rate = run.finished_in_window / seconds
    per_interval = [count / 10.0 for count in run.per_interval]
    lowest = min(per_interval) if per_interval else rate
    latency = summarize(run.latencies)
    finished = max(run.finished_in_window, 1)
    met = rate >= TARGET_PER_SECOND and lowest >= TARGET_PER_SECOND * 0.9 and timeouts == 0 and not run.failed
    BenchResult(
        key="throughput",
        title="Throughput",
        how=(
            f"`agent-ticket worker` (one process, both queues, SQLite, offline planner) and the dev server; "
            f"the driver keeps {IN_FLIGHT} auto-approved tickets in flight for {seconds:.0f} s, starting a new "
            "one as each finishes; histories checked for WorkflowTaskTimedOut; CPU from /proc."
        ),
        result=(
            f"{rate:.1f} tickets/s ({run.finished_in_window} in {seconds:.0f} s; slowest 10 s window "
            f"{lowest:.1f}/s), {timeouts} workflow task time-outs (tasks waited p99 {task_wait.p99:.0f} ms, max "
            f"{task_wait.max:.0f} ms to be picked up), ticket latency {latency.brief()}"
        ),
        target=f"≥ {TARGET_PER_SECOND:.0f} tickets/s sustained over 60 s, no workflow task time-outs",
        met=met,
        notes=" ".join(
            part
            for part in (
                f"{len(run.failed)} ticket(s) did not finish done: {run.failed[:3]}." if run.failed else "",
                (
                    f"Why: the worker process used {100 * worker_cpu / seconds:.0f} % of a core, "
                    f"{1000 * worker_cpu / finished:.0f} ms of CPU per ticket (a Python process runs on one core), "
                    f"and the server {1000 * server_cpu / finished:.0f} ms per ticket: one worker tops out near "
                    f"{finished / worker_cpu:.0f} tickets/s, and {TARGET_PER_SECOND:.0f}/s would need about "
                    f"{1000 / TARGET_PER_SECOND:.0f} ms per ticket."
                )
                if not met
                else "",
            )
            if part
        ),
        figures={
            "tickets_per_second": round(rate, 2),
            "per_10s_window": per_interval,
            "workflow_task_timeouts": dict(tasks.timeouts),
            "workflow_task_wait_ms": vars(task_wait),
            "latency_ms": vars(latency),
            "worker_cpu_ms_per_ticket": round(1000 * worker_cpu / finished, 1),
            "server_cpu_ms_per_ticket": round(1000 * server_cpu / finished, 1),
            "worker_cpu_percent": round(100 * worker_cpu / seconds, 1),
            "server_cpu_percent": round(100 * server_cpu / seconds, 1),
            "worker_rss_mb": round(worker_rss, 1),
            "in_flight": IN_FLIGHT,
            "failed": len(run.failed),
        },
    ).save()


if __name__ == "__main__":
    run_benchmark(main)
