"""Throughput: auto-approved tickets through one worker process, as fast as they finish, for 60 s,
against Temporal's own floor on the same server in the same run.

The worker is `agent-ticket worker` (both queues, SQLite, offline planner), as an operator runs
it. The driver keeps `IN_FLIGHT` tickets running: each finished ticket is replaced at once, so
the rate measured is what the worker and server sustain, without an ever-growing backlog that
would only measure queueing. Afterwards every history is checked for WorkflowTaskTimedOut.
CPU of the worker and of the server is read from /proc, giving CPU-seconds per ticket.

The floor (bench/floor_workflow.py) is a workflow of no-op activities with the ticket's server
round trips (its activities, queues and order, read from a warm-up ticket's history), run by a
worker process built like the product's, driven the same way for half the window before the
tickets and half after, on the same server: the ticket's rate as a ratio to it says how much of
the machine the ticket's own work takes beyond what Temporal needs to move it.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.api.enums.v1 import EventType, TimeoutType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from bench.floor import READY as FLOOR_READY
from bench.floor_workflow import BESIDE as FLOOR_BESIDE
from bench.floor_workflow import FLOOR_WORKFLOW
from bench.floor_workflow import LOCAL as FLOOR_LOCAL
from bench.floor_workflow import UPSERT as FLOOR_UPSERT
from bench.harness import (
    BIN_DIR,
    BenchResult,
    ChildProcess,
    DevServer,
    auto_approved_text,
    child_pythonpath,
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
from bench.product import TicketService, front_door
from core.models import OutcomeStatus, TicketRequest
from core.settings import Settings
from tests.pipeline import REQUESTER

TARGET_PER_SECOND = 15.0
TARGET_FLOOR_RATIO = 0.8
# Enough to keep worker and server saturated (Little's law: 15 tickets/s x ~1 s each); more only
# lengthens queues, and an open loop (start, never wait) would measure a growing backlog instead.
IN_FLIGHT = 20
LOCAL_ACTIVITY_MARKER = "core_local_activity"  # the SDK's marker for a local activity's result


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

    async def ticket(index: int, run: Run) -> str | None:
        request = TicketRequest(
            text=auto_approved_text(index), requester=REQUESTER, approval=settings.approval_settings()
        )
        started = await service.start(request)
        run.workflow_ids.append(started.workflow_id)
        outcome = await service.result(started.short_id)
        if outcome.status is not OutcomeStatus.DONE:
            return f"{started.label}: {outcome.status.value}: {outcome.reason}"
        return None

    return await keep_in_flight(ticket, seconds, in_flight)


async def keep_in_flight(one: Callable[[int, Run], Awaitable[str | None]], seconds: float, in_flight: int) -> Run:
    """`in_flight` lanes running `one(index, run)` back to back for `seconds`; a returned string is a failure."""
    run = Run()
    deadline = time.monotonic() + seconds
    interval = 10.0
    buckets = [0] * int(seconds // interval + 1)
    opened = time.monotonic()

    async def lane() -> None:
        while time.monotonic() < deadline:
            index = run.started
            run.started += 1
            began = time.monotonic()
            failure = await one(index, run)
            ended = time.monotonic()
            if failure is not None:
                run.failed.append(failure)
            if ended <= deadline:
                run.finished_in_window += 1
                run.latencies.append(ended - began)
                buckets[int((ended - opened) // interval)] += 1

    await asyncio.gather(*(lane() for _ in range(in_flight)))
    run.per_interval = buckets[: int(seconds // interval)]
    return run


@dataclass
class TaskWaits:
    """From the histories: workflow task time-outs by type, how long tasks waited to be picked up, and
    how long they took once picked up (what a workflow task time-out must leave room for at full load)."""

    timeouts: Counter[str] = field(default_factory=Counter)
    waits: list[float] = field(default_factory=list)
    runs: list[float] = field(default_factory=list)


async def workflow_task_waits(client: Client, workflow_ids: list[str]) -> TaskWaits:
    found = TaskWaits()

    async def read(workflow_id: str) -> None:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        scheduled = started = 0.0
        for event in history.events:
            when = event.event_time.ToMicroseconds() / 1e6
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
                scheduled = when
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                started = when
                found.waits.append(when - scheduled)
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                found.runs.append(when - started)
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
                timeout_type = event.workflow_task_timed_out_event_attributes.timeout_type
                found.timeouts[TimeoutType.Name(timeout_type)] += 1

    await gather_limited(20, [functools.partial(read, workflow_id) for workflow_id in workflow_ids])
    return found


@dataclass
class TicketShape:
    """What a ticket asks of Temporal, read from its history, as `FloorWorkflow` steps."""

    activities: list[str]  # each activity's task queue in order: "" = the ticket's own, "llm" = the LLM queue
    steps: list[str]  # the same, those that ran beside the next ones marked, with its local activities and upserts
    workflow_tasks: int


async def ticket_shape(client: Client, workflow_id: str, queue: str) -> TicketShape:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    events = list(history.events)
    activities: list[str] = []
    steps: list[str] = []
    tasks = 0
    for position, event in enumerate(events):
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            on = "" if event.activity_task_scheduled_event_attributes.task_queue.name == queue else "llm"
            activities.append(on)
            steps.append(FLOOR_BESIDE + on if _ran_beside(events, position) else on)
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            if event.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER:
                steps.append(FLOOR_LOCAL)
        elif event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            steps.append(FLOOR_UPSERT + ",".join(sorted(fields)))
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            tasks += 1
    return TicketShape(activities, steps, tasks)


def _ran_beside(events: list[HistoryEvent], position: int) -> bool:
    """Whether the activity scheduled at `position` was still running when the next one was scheduled."""
    scheduled_id = events[position].event_id
    for event in events[position + 1 :]:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            return True
        if event.activity_task_completed_event_attributes.scheduled_event_id == scheduled_id:
            return False
    return False


@dataclass
class Floor:
    """Temporal's floor: no-op workflows with the ticket's round trips, on the same server."""

    per_second: float = 0.0
    finished: int = 0
    seconds: float = 0.0
    worker_cpu: float = 0.0
    server_cpu: float = 0.0
    workflow_tasks: float = 0.0
    failed: list[str] = field(default_factory=list)

    @property
    def worker_cpu_ms(self) -> float:
        return 1000 * self.worker_cpu / max(self.finished, 1)

    @property
    def server_cpu_ms(self) -> float:
        return 1000 * self.server_cpu / max(self.finished, 1)

    def ratio_of(self, per_second: float) -> float:
        return per_second / self.per_second if self.per_second else float("nan")

    def figures(self) -> dict[str, object]:
        return {
            "per_second": round(self.per_second, 2),
            "workflows": self.finished,
            "seconds": self.seconds,
            "workflow_tasks": self.workflow_tasks,
            "worker_cpu_ms_per_workflow": round(self.worker_cpu_ms, 1),
            "server_cpu_ms_per_workflow": round(self.server_cpu_ms, 1),
            "failed": len(self.failed),
        }

    def add(self, run: Run, seconds: float, worker_cpu: float, server_cpu: float) -> None:
        self.finished += run.finished_in_window
        self.seconds += seconds
        self.worker_cpu += worker_cpu
        self.server_cpu += server_cpu
        self.failed += run.failed
        self.per_second = self.finished / self.seconds


class FloorDriver:
    def __init__(self, server: DevServer, client: Client, worker: ChildProcess, queue: str, steps: list[str]) -> None:
        self.server = server
        self.client = client
        self.worker = worker
        self.queue = queue
        self.steps = [self._on_queues(step, queue) for step in steps]

    @staticmethod
    def _on_queues(step: str, queue: str) -> str:
        """The step with "llm" as the floor's own LLM queue."""
        if step.removeprefix(FLOOR_BESIDE) != "llm":
            return step
        return step.replace("llm", f"{queue}-llm")

    async def one(self, index: int, run: Run) -> str | None:
        workflow_id = f"floor-{uuid.uuid4().hex[:10]}"
        handle = await self.client.start_workflow(
            FLOOR_WORKFLOW, self.steps, id=workflow_id, task_queue=self.queue, request_eager_start=True
        )
        run.workflow_ids.append(workflow_id)
        result = await handle.result()
        return None if result == len(self.steps) else f"{workflow_id}: returned {result}"

    async def measure(self, floor: Floor, seconds: float) -> None:
        cpu = process_cpu_seconds(self.worker.pid), process_cpu_seconds(self.server.child.pid)
        run = await keep_in_flight(self.one, seconds, IN_FLIGHT)
        floor.add(
            run,
            seconds,
            process_cpu_seconds(self.worker.pid) - cpu[0],
            process_cpu_seconds(self.server.child.pid) - cpu[1],
        )
        if run.workflow_ids:
            floor.workflow_tasks = (await ticket_shape(self.client, run.workflow_ids[0], self.queue)).workflow_tasks


def floor_worker(server: DevServer, directory: Path, queue: str) -> ChildProcess:
    return ChildProcess(
        "floor worker",
        [str(BIN_DIR / "python"), "-m", "bench.floor", "--address", server.address, "--queue", queue],
        directory / "floor-worker.log",
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": child_pythonpath(), "PYTHONUNBUFFERED": "1"},
        cwd=directory,
    )


async def main() -> None:
    seconds = float(scaled(60, 15))
    floor, shaped = Floor(), Floor()
    with workdir("throughput") as directory:
        async with (
            dev_server(directory) as (server, client),
            polling_worker(directory, server.address) as (settings, worker),
        ):
            service = front_door(client, settings, settings.temporal_task_queue)
            log("warming up")
            warm_up = await drive(service, settings, 5.0, 5)
            shape = await ticket_shape(client, warm_up.workflow_ids[-1], settings.temporal_task_queue)
            floor_queue = f"floor-{uuid.uuid4().hex[:6]}"
            floor_process = floor_worker(server, directory, floor_queue)
            await floor_process.start()
            try:
                await floor_process.wait_for_line(FLOOR_READY)
                floor_driver = FloorDriver(server, client, floor_process, floor_queue, shape.activities)
                shaped_driver = FloorDriver(server, client, floor_process, floor_queue, shape.steps)
                await keep_in_flight(floor_driver.one, 3.0, 5)  # warm-up
                await keep_in_flight(shaped_driver.one, 3.0, 5)
                log(f"floor: no-op activities on {shape.activities}, {seconds / 2:.0f} s")
                await floor_driver.measure(floor, seconds / 2)
                log(f"shaped floor: {shape.steps}, {seconds / 4:.0f} s")
                await shaped_driver.measure(shaped, seconds / 4)
                ticket_run, cpu = await measured_tickets(service, settings, server, worker, seconds)
                log(f"shaped floor again, {seconds / 4:.0f} s")
                await shaped_driver.measure(shaped, seconds / 4)
                log(f"floor again, {seconds / 2:.0f} s")
                await floor_driver.measure(floor, seconds / 2)
            finally:
                await floor_process.stop()
            tasks = await workflow_task_waits(client, ticket_run.workflow_ids)
    save(ticket_run, cpu, tasks, floor, shaped, seconds, shape)


@dataclass
class TicketCpu:
    worker: float
    server: float
    worker_rss_mb: float


async def measured_tickets(
    service: TicketService, settings: Settings, server: DevServer, worker: ChildProcess, seconds: float
) -> tuple[Run, TicketCpu]:
    """`IN_FLIGHT` tickets for `seconds`, with the worker's and server's CPU over that window."""
    cpu_before = process_cpu_seconds(worker.pid), process_cpu_seconds(server.child.pid)
    log(f"driving {IN_FLIGHT} tickets in flight for {seconds:.0f} s")
    profiles = profile_dir()
    if profiles is not None:
        profiles.mkdir(parents=True, exist_ok=True)
        await worker.start_profiler(profiles / "throughput-worker.txt", seconds)
    run = await drive(service, settings, seconds, IN_FLIGHT)
    cpu = TicketCpu(
        worker=process_cpu_seconds(worker.pid) - cpu_before[0],
        server=process_cpu_seconds(server.child.pid) - cpu_before[1],
        worker_rss_mb=process_rss_bytes(worker.pid) / 2**20,
    )
    return run, cpu


def save(
    run: Run, cpu: TicketCpu, tasks: TaskWaits, floor: Floor, shaped: Floor, seconds: float, shape: TicketShape
) -> None:
    worker_cpu, server_cpu, worker_rss = cpu.worker, cpu.server, cpu.worker_rss_mb
    timeouts = sum(tasks.timeouts.values())
    task_wait, task_run = summarize(tasks.waits), summarize(tasks.runs)
    rate = run.finished_in_window / seconds
    per_interval = [count / 10.0 for count in run.per_interval]
    lowest = min(per_interval) if per_interval else rate
    latency = summarize(run.latencies)
    finished = max(run.finished_in_window, 1)
    met = rate >= TARGET_PER_SECOND and lowest >= TARGET_PER_SECOND * 0.9 and timeouts == 0 and not run.failed
    ratio = floor.ratio_of(rate)
    floor_met = ratio >= TARGET_FLOOR_RATIO and not floor.failed
    shaped_of_floor = floor.ratio_of(shaped.per_second)
    BenchResult(
        key="throughput",
        title="Throughput",
        how=(
            f"`agent-ticket worker` (one process, both queues, SQLite, offline planner) and the dev server; "
            f"the driver keeps {IN_FLIGHT} auto-approved tickets in flight for {seconds:.0f} s, starting a new "
            "one as each finishes; histories checked for WorkflowTaskTimedOut; CPU from /proc. Temporal's floor: "
            f"a workflow of {len(shape.activities)} no-op activities on the ticket's queues in its order "
            f'({shape.activities or "none"}; "llm" = the `-llm` queue), a worker process built like the product\'s, '
            f"the same server and driver, {seconds / 2:.0f} s before the tickets and {seconds / 2:.0f} s after. The "
            f"shaped floor adds the ticket's {shape.steps.count(FLOOR_LOCAL)} local activities (no-ops) and "
            f"{sum(step.startswith(FLOOR_UPSERT) for step in shape.steps)} search attribute upserts where its history "
            f"has them, {seconds / 4:.0f} s on each side of the tickets inside the floor's."
        ),
        result=(
            f"{rate:.1f} tickets/s ({run.finished_in_window} in {seconds:.0f} s; slowest 10 s window "
            f"{lowest:.1f}/s), {timeouts} workflow task time-outs (tasks waited p99 {task_wait.p99:.0f} ms, max "
            f"{task_wait.max:.0f} ms to be picked up, then ran p99 {task_run.p99:.0f} ms, max {task_run.max:.0f} ms), "
            f"ticket latency {latency.brief()}; Temporal's floor "
            f"{floor.per_second:.1f}/s, ratio {ratio:.2f} (shaped floor {shaped.per_second:.1f}/s, "
            f"{shaped_of_floor:.2f} of the floor; the ticket {shaped.ratio_of(rate):.2f} of it); "
            "CPU per ticket: worker "
            f"{1000 * worker_cpu / finished:.0f} ms, server {1000 * server_cpu / finished:.0f} ms "
            "(bot: see the open-loop ack row)"
        ),
        target=(
            f"≥ {TARGET_PER_SECOND:.0f} tickets/s sustained over 60 s, no workflow task time-outs; ≥ "
            f"{TARGET_FLOOR_RATIO:g} of Temporal's floor"
        ),
        met=met and floor_met,
        samples=(
            f"{run.finished_in_window} tickets in {seconds:.0f} s, {floor.finished} floor workflows in "
            f"{floor.seconds:.0f} s, {shaped.finished} shaped in {shaped.seconds:.0f} s"
        ),
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
                (
                    f"The floor: {floor.workflow_tasks:.0f} workflow tasks per workflow against the ticket's "
                    f"{shape.workflow_tasks}; floor worker {floor.worker_cpu_ms:.1f} ms and server "
                    f"{floor.server_cpu_ms:.1f} ms of CPU per workflow, shaped floor {shaped.worker_cpu_ms:.1f} ms "
                    f"and {shaped.server_cpu_ms:.1f} ms. The ticket's CPU beyond the shaped floor's is its own work "
                    "(the activities' work, its sandboxed workflow code, its payloads)."
                ),
                f"{len(floor.failed)} floor workflow(s) failed: {floor.failed[:3]}." if floor.failed else "",
                f"{len(shaped.failed)} shaped floor workflow(s) failed: {shaped.failed[:3]}." if shaped.failed else "",
            )
            if part
        ),
        figures={
            "tickets_per_second": round(rate, 2),
            "per_10s_window": per_interval,
            "workflow_task_timeouts": dict(tasks.timeouts),
            "workflow_task_wait_ms": task_wait.figures(),
            "workflow_task_run_ms": task_run.figures(),
            "latency_ms": latency.figures(),
            "worker_cpu_ms_per_ticket": round(1000 * worker_cpu / finished, 1),
            "server_cpu_ms_per_ticket": round(1000 * server_cpu / finished, 1),
            "worker_cpu_percent": round(100 * worker_cpu / seconds, 1),
            "server_cpu_percent": round(100 * server_cpu / seconds, 1),
            "worker_rss_mb": round(worker_rss, 1),
            "in_flight": IN_FLIGHT,
            "failed": len(run.failed),
            "floor": {
                **floor.figures(),
                "ratio": round(ratio, 3),
                "activities": shape.activities,
                "ticket_workflow_tasks": shape.workflow_tasks,
            },
            "shaped_floor": {
                **shaped.figures(),
                "ratio": round(shaped.ratio_of(rate), 3),
                "of_floor": round(shaped_of_floor, 3),
                "steps": shape.steps,
            },
        },
    ).save()


if __name__ == "__main__":
    run_benchmark(main)
