"""Crash recovery: the worker is SIGKILLed while the plan step runs; a new worker finishes it.

The LLM is the fake OpenAI server (real HTTP, the real `openai` client in the worker): its first
answer is held back, so the kill lands while `plan_ticket` is running and heartbeating; the
retried attempt is answered at once. The new worker process is started right after the kill
(the worst case: Temporal has not yet noticed the missing heartbeats) and, in a second
scenario, a few seconds later, as a supervisor with a restart delay would. Times are wall
clock on this machine; the step's completion time is the server's ActivityTaskCompleted event.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.harness import (
    WORKER_READY,
    BenchResult,
    auto_approved_text,
    bench_settings,
    dev_server,
    log,
    prepare_databases,
    run_benchmark,
    scaled,
    workdir,
    worker_process,
)
from core.models import OutcomeStatus, TicketRequest
from core.names import ACTIVITY_PLAN_TICKET
from core.settings import Settings
from core.tickets import StartedTicket, TicketService
from tests.fakes.openai_server import FAKE_API_KEY, FakeOpenAIServer, json_reply, slow_reply
from tests.pipeline import REQUESTER
from workflows.options import PLAN_TICKET

TARGET_SECONDS = 3.0
HELD_BACK_SECONDS = 120.0  # the first attempt's answer; the kill comes long before
EMPTY_PLAN = {"summary": "Nothing to change.", "rationale": "benchmark", "operations": []}


HEARTBEAT_S = (PLAN_TICKET.heartbeat or timedelta(0)).total_seconds()
RETRY_S = PLAN_TICKET.retry.initial_interval.total_seconds()


@dataclass
class Recovery:
    restart_delay: float
    step_after_spawn: float  # new worker process started → plan step completed
    step_after_ready: float  # new worker polling → plan step completed
    step_after_kill: float
    worker_startup: float
    ticket_after_spawn: float


async def plan_completed_at(client: Client, workflow_id: str, within: float = 120.0) -> float:
    """Wall-clock time of the plan step's ActivityTaskCompleted event, once there is one."""
    deadline = time.monotonic() + within
    handle = client.get_workflow_handle(workflow_id)
    while time.monotonic() < deadline:
        history = await handle.fetch_history()
        plan_ids = {
            event.event_id
            for event in history.events
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            and event.activity_task_scheduled_event_attributes.activity_type.name == ACTIVITY_PLAN_TICKET
        }
        for event in history.events:
            if (
                event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
                and event.activity_task_completed_event_attributes.scheduled_event_id in plan_ids
            ):
                return event.event_time.ToDatetime().timestamp()
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{workflow_id}: the plan step did not complete within {within:.0f} s")


async def wait_for_llm_request(fake: FakeOpenAIServer, seen: int, within: float = 60.0) -> None:
    """Until the fake LLM has received more than `seen` requests (it offers no event to wait on)."""
    deadline = time.monotonic() + within
    while len(fake.requests) <= seen:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no LLM request within {within:.0f} s")
        await asyncio.sleep(0.02)


async def one_crash(
    client: Client, settings: Settings, fake: FakeOpenAIServer, restart_delay: float, run: int
) -> Recovery:
    logs = settings.data_dir / f"worker-{run}-{restart_delay:.0f}s"
    first = worker_process(settings, logs.with_suffix(".a.log"))
    await first.start()
    await first.wait_for_line(WORKER_READY)
    fake.enqueue(slow_reply(HELD_BACK_SECONDS, json_reply(EMPTY_PLAN)), json_reply(EMPTY_PLAN))
    asked = len(fake.requests)
    service = TicketService(client, task_queue=settings.temporal_task_queue)
    request = TicketRequest(text=auto_approved_text(run), requester=REQUESTER, approval=settings.approval_settings())
    ticket: StartedTicket = await service.start(request)
    await wait_for_llm_request(fake, asked)  # the plan step is now waiting for the LLM
    await asyncio.sleep(1.5)  # a few heartbeats in
    first.kill()
    killed = time.time()
    await first.stop()
    await asyncio.sleep(restart_delay)
    second = worker_process(settings, logs.with_suffix(".b.log"))
    spawned = time.time()
    await second.start()
    try:
        startup = await second.wait_for_line(WORKER_READY)
        ready = spawned + startup
        completed = await plan_completed_at(client, ticket.workflow_id)
        outcome = await service.result(ticket.short_id)
        finished = time.time()
        if outcome.status is not OutcomeStatus.DONE:
            raise RuntimeError(f"{ticket.label} ended {outcome.status.value}: {outcome.reason}")
    finally:
        await second.stop()
    return Recovery(
        restart_delay=restart_delay,
        step_after_spawn=completed - spawned,
        step_after_ready=completed - ready,
        step_after_kill=completed - killed,
        worker_startup=startup,
        ticket_after_spawn=finished - spawned,
    )


def brief(runs: list[Recovery]) -> str:
    after_spawn = [run.step_after_spawn for run in runs]
    return (
        f"step done {statistics.median(after_spawn):.1f} s (max {max(after_spawn):.1f}) after the new worker "
        f"started, {statistics.median(run.step_after_ready for run in runs):.1f} s after it said it was polling; "
        f"ticket done {statistics.median(run.ticket_after_spawn for run in runs):.1f} s after the new worker started"
    )


async def main() -> None:
    repeats = scaled(5, 2)
    delays = (0.0, 5.0)
    results: dict[float, list[Recovery]] = {delay: [] for delay in delays}
    async with FakeOpenAIServer() as fake:
        with workdir("recovery") as directory:
            async with dev_server(directory) as (server, client):
                settings = bench_settings(
                    directory / "data",
                    server.address,
                    f"bench-{uuid.uuid4().hex[:6]}",
                    openai_api_key=FAKE_API_KEY,
                    openai_base_url=fake.base_url,
                )
                await prepare_databases(settings)
                for run in range(repeats):
                    for delay in delays:
                        log(f"crash {run + 1}/{repeats}, new worker {delay:.0f} s after the kill")
                        results[delay].append(await one_crash(client, settings, fake, delay, run))

    immediate, delayed = results[delays[0]], results[delays[1]]
    every = immediate + delayed
    met = max(run.step_after_spawn for run in every) <= TARGET_SECONDS
    after_kill = [run.step_after_kill for run in immediate]
    startups = [run.worker_startup for run in every]
    BenchResult(
        key="recovery",
        title="Crash recovery",
        how=(
            f"`agent-ticket worker` with the OpenAI planner against the fake OpenAI server; the first answer is "
            f"held back, the worker is SIGKILLed 1.5 s into `plan_ticket` (heartbeat timeout {HEARTBEAT_S:g} s, "
            f"retry after {RETRY_S:g} s), "
            f"and a new worker process is started at once or {delays[1]:.0f} s later; {repeats} crashes each. "
            "Completion is the server's ActivityTaskCompleted time."
        ),
        result=f"restart at once: {brief(immediate)}; restart after {delays[1]:.0f} s: {brief(delayed)}",
        target=f"step completes ≤ {TARGET_SECONDS:.0f} s after the new worker starts",
        met=met,
        notes=(
            ""
            if met
            else (
                f"Why: with the replacement started at once, the step completed {min(after_kill):.1f}-"
                f"{max(after_kill):.1f} s after the kill: Temporal notices the dead worker when the heartbeat "
                f"time-out ({HEARTBEAT_S:g} s after the last heartbeat it received) runs out, then waits the retry "
                f"interval ({RETRY_S:g} s), so a replacement that is ready sooner still waits; replacements took "
                f"{min(startups):.1f}-{max(startups):.1f} s to their 'polling' line."
            )
        ),
        figures={f"restart_after_{delay:.0f}s": [vars(run) for run in runs] for delay, runs in results.items()},
    ).save()


if __name__ == "__main__":
    run_benchmark(main)
