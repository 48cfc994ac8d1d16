"""Slash-command ack under open-loop load, as people send commands: at a rate, not in lock-step.

Everything runs together on this machine: the dev server, `agent-ticket worker`, `agent-ticket bot`
and the fake Slack Web API (a process of its own). Every command is a signed `/agent-ticket` for a
new auto-approved ticket, which the worker runs meanwhile, posting to the fake Slack. Phases, in
one run:

1. **Sustainable throughput.** Lanes that each send a command and wait for its ticket to finish:
   tickets finished per second is the rate this machine sustains through the bot (R).
2. **Open loop at 0.8 R.** Commands arrive with Poisson spacing (exponential gaps) at 80 % of R,
   whatever the acks do; the target is ack p99 < 100 ms. Afterwards every ticket must finish.
3. **Burst at 2 R for 30 s.** Every ack must stay under Slack's 3 s, no acknowledged ticket may be
   lost, and the backlog must drain; the drain time is from the burst's end to the last ticket done.
4. **Saturation (closed loop).** 1, 20 and 50 senders, each sending as soon as its last ack came
   back, and Temporal alone accepting starts from 50 senders: what the old target measured. Kept
   as a measurement of capacity, saved as its own result (`ack_saturation`) without a target.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from temporalio.client import Client, WorkflowExecutionStatus

from bench.harness import (
    BenchResult,
    Stats,
    auto_approved_text,
    gather_limited,
    log,
    process_cpu_seconds,
    profile_dir,
    run_benchmark,
    scaled,
    summarize,
    workdir,
)
from bench.product import front_door
from bench.slack_stack import REQUESTER, BotStack, Sent, bot_stack
from core.models import TicketOutcome, TicketRequest
from core.settings import Settings

TARGET_P99_MS = 100.0
SLACK_LIMIT_MS = 3000.0
OPEN_LOOP_FRACTION = 0.8
BURST_FACTOR = 2.0
SUSTAIN_LANES = 20
LEVELS = (1, 20, 50)
DRAIN_LIMIT_SECONDS = 600.0


# ---------------------------------------------------------------- phases


@dataclass
class Sustained:
    per_second: float
    tickets: int
    seconds: float
    cpu_ms_per_ticket: dict[str, float]
    acks: Stats


async def sustainable_rate(stack: BotStack, seconds: float) -> Sustained:
    """Lanes of command → ticket finished → next command; tickets finished per second in the window."""
    finished = 0
    acks: list[float] = []
    deadline = time.monotonic() + seconds
    counter = iter(range(10**9))
    processes = cpu_processes(stack)
    cpu_before = {name: process_cpu_seconds(pid) for name, pid in processes.items()}

    async def lane() -> None:
        nonlocal finished
        while time.monotonic() < deadline:
            sent = await stack.user.command(auto_approved_text(next(counter)))
            if not sent.answered:
                raise RuntimeError(f"the bot did not acknowledge: {sent.answer}")
            acks.append(sent.ack_seconds)
            await stack.client.get_workflow_handle(sent.workflow_id).result()
            if time.monotonic() <= deadline:
                finished += 1

    await asyncio.gather(*(lane() for _ in range(SUSTAIN_LANES)))
    cpu = {name: process_cpu_seconds(pid) - cpu_before[name] for name, pid in processes.items()}
    return Sustained(
        per_second=finished / seconds,
        tickets=finished,
        seconds=seconds,
        cpu_ms_per_ticket={name: round(1000 * value / max(finished, 1), 1) for name, value in cpu.items()},
        acks=summarize(acks),
    )


def cpu_processes(stack: BotStack) -> dict[str, int]:
    found = {"worker": stack.worker.pid, "server": stack.server.child.pid, "bot": stack.bot.pid}
    if stack.fake_process is not None:
        found["fake Slack"] = stack.fake_process.pid
    found["load generator"] = os.getpid()
    return found


@dataclass
class OpenLoop:
    rate: float
    seconds: float
    sent: list[Sent] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)  # how late the generator sent each command
    ended_at: float = 0.0  # monotonic, when the last command was acked

    @property
    def acks(self) -> Stats:
        return summarize([sent.ack_seconds for sent in self.sent])

    @property
    def unacknowledged(self) -> int:
        return sum(1 for sent in self.sent if not sent.answered)

    @property
    def deferred(self) -> int:
        return sum(1 for sent in self.sent if sent.deferred)


async def open_loop(stack: BotStack, rate: float, seconds: float, rng: random.Random, first_index: int) -> OpenLoop:
    """Commands at Poisson-spaced instants at `rate` per second for `seconds`, each sent whatever the others do."""
    run = OpenLoop(rate=rate, seconds=seconds)
    tasks: list[asyncio.Task[Sent]] = []
    began = time.monotonic()
    offset = 0.0
    index = first_index
    while True:
        offset += rng.expovariate(rate)
        if offset >= seconds:
            break
        delay = began + offset - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        run.lags.append(max(0.0, time.monotonic() - (began + offset)))
        tasks.append(asyncio.create_task(stack.user.command(auto_approved_text(index))))
        index += 1
    run.sent = list(await asyncio.gather(*tasks))
    run.ended_at = time.monotonic()
    return run


async def running_tickets(client: Client) -> int:
    return (await client.count_workflows('ExecutionStatus="Running"')).count


async def drain_seconds(client: Client, since: float) -> float:
    """Seconds from `since` (monotonic) until no ticket is running, polled every 0.25 s."""
    deadline = time.monotonic() + DRAIN_LIMIT_SECONDS
    while await running_tickets(client) > 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"tickets still running {DRAIN_LIMIT_SECONDS:.0f} s later")
        await asyncio.sleep(0.25)
    return time.monotonic() - since


async def outcomes(client: Client, sent: list[Sent]) -> Counter[str]:
    """How each answered ticket ended: "done", another status, or "lost" (no such workflow, or not closed).

    A deferred ack ("slow to answer, not filed yet") promised news of a start still under way, so its
    ticket is looked for too: one that never started counts as lost.
    """
    found: Counter[str] = Counter()

    async def one(item: Sent) -> None:
        handle = client.get_workflow_handle(item.workflow_id, result_type=TicketOutcome)
        try:
            description = await handle.describe()
        except Exception:
            found["lost"] += 1
            return
        if description.status != WorkflowExecutionStatus.COMPLETED:
            found[f"workflow {description.status.name if description.status else 'unknown'}"] += 1
            return
        outcome = await handle.result()
        found[outcome.status.value] += 1

    await gather_limited(20, [functools.partial(one, item) for item in sent if item.answered])
    return found


# ---------------------------------------------------------------- saturation (closed loop)


async def closed_loop(concurrency: int, total: int, job: Callable[[int], Awaitable[float]]) -> list[float]:
    """`concurrency` senders, each running its next job as soon as its previous one is done; each job's time."""
    samples: list[float] = []
    counter = iter(range(total))

    async def sender() -> None:
        for index in counter:
            samples.append(await job(index))

    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return samples


@dataclass
class Acker:
    """Sends commands and keeps their ack times; at saturation a deferred ack is an answer, and is counted."""

    stack: BotStack
    deferred: int = 0

    async def __call__(self, index: int) -> float:
        sent = await self.stack.user.command(auto_approved_text(index))
        if not sent.answered:
            raise RuntimeError(f"the bot did not acknowledge: {sent.answer}")
        self.deferred += sent.deferred
        return sent.ack_seconds


@dataclass
class Saturation:
    levels: dict[int, Stats]
    rates: dict[int, float]
    deferred: dict[int, int]
    bot_cpu_ms: float
    alone: Stats
    alone_per_second: float
    alone_server_cpu_ms: float


async def saturation(stack: BotStack, totals: dict[int, int]) -> Saturation:
    levels: dict[int, Stats] = {}
    rates: dict[int, float] = {}
    deferred: dict[int, int] = {}
    bot_cpu = process_cpu_seconds(stack.bot.pid)
    for level in LEVELS:
        log(f"saturation: {totals[level]} slash commands, {level} at a time (closed loop)")
        began = time.perf_counter()
        acker = Acker(stack)
        levels[level] = summarize(await closed_loop(level, totals[level], acker))
        rates[level] = totals[level] / (time.perf_counter() - began)
        deferred[level] = acker.deferred
    bot_cpu_ms = 1000 * (process_cpu_seconds(stack.bot.pid) - bot_cpu) / sum(totals.values())
    await drain_seconds(stack.client, time.monotonic())
    log(f"saturation: Temporal alone, {totals[max(LEVELS)]} starts, {max(LEVELS)} at a time")
    alone, per_second, server_cpu = await temporal_start_capacity(
        stack.client, stack.settings, stack.server.child.pid, totals[max(LEVELS)]
    )
    return Saturation(levels, rates, deferred, bot_cpu_ms, alone, per_second, server_cpu)


async def temporal_start_capacity(
    client: Client, settings: Settings, server_pid: int, total: int
) -> tuple[Stats, float, float]:
    """Starts from a plain client, 50 at a time, on a queue no worker polls: the server only accepts starts."""
    service = front_door(client, settings, f"{settings.temporal_task_queue}-unpolled")
    request = TicketRequest(text=auto_approved_text(0), requester=REQUESTER, approval=settings.approval_settings())

    async def start(_: int) -> float:
        began = time.perf_counter()
        await service.start(request)
        return time.perf_counter() - began

    cpu = process_cpu_seconds(server_pid)
    began = time.perf_counter()
    samples = await closed_loop(max(LEVELS), total, start)
    elapsed = time.perf_counter() - began
    return summarize(samples), total / elapsed, 1000 * (process_cpu_seconds(server_pid) - cpu) / total


# ---------------------------------------------------------------- the run


async def main() -> None:
    sustain_s, open_s, burst_s = float(scaled(60, 15)), float(scaled(60, 15)), float(scaled(30, 10))
    totals = {1: scaled(100, 20), 20: scaled(400, 60), 50: scaled(1000, 150)}
    rng = random.Random(17)
    with workdir("ack") as directory:
        async with bot_stack(directory, slack_in_process=False, connections=0) as stack:
            await closed_loop(5, 20, Acker(stack))  # warm-up
            await drain_seconds(stack.client, time.monotonic())
            profiles = profile_dir()
            if profiles is not None:
                profiles.mkdir(parents=True, exist_ok=True)
                await stack.bot.start_profiler(profiles / "ack-bot.txt", sustain_s + open_s)
            log(f"sustainable throughput: {SUSTAIN_LANES} lanes of command → ticket done, {sustain_s:.0f} s")
            sustained = await sustainable_rate(stack, sustain_s)
            await drain_seconds(stack.client, time.monotonic())
            rate = OPEN_LOOP_FRACTION * sustained.per_second
            log(f"sustained {sustained.per_second:.1f} tickets/s; open loop at {rate:.1f}/s for {open_s:.0f} s")
            steady = await open_loop(stack, rate, open_s, rng, 10_000)
            steady_drain = await drain_seconds(stack.client, steady.ended_at)
            steady_outcomes = await outcomes(stack.client, steady.sent)
            burst_rate = BURST_FACTOR * sustained.per_second
            log(f"burst at {burst_rate:.1f}/s for {burst_s:.0f} s")
            burst = await open_loop(stack, burst_rate, burst_s, rng, 100_000)
            burst_drain = await drain_seconds(stack.client, burst.ended_at)
            burst_outcomes = await outcomes(stack.client, burst.sent)
            saturated = await saturation(stack, totals)

    save_open_loop(sustained, steady, steady_drain, steady_outcomes, burst, burst_drain, burst_outcomes)
    save_saturation(saturated, totals)


def save_open_loop(
    sustained: Sustained,
    steady: OpenLoop,
    steady_drain: float,
    steady_outcomes: Counter[str],
    burst: OpenLoop,
    burst_drain: float,
    burst_outcomes: Counter[str],
) -> None:
    steady_acks, burst_acks = steady.acks, burst.acks
    steady_lost = len(steady.sent) - steady_outcomes["done"]
    burst_lost = len(burst.sent) - burst_outcomes["done"]
    steady_met = steady_acks.p99 < TARGET_P99_MS and steady.unacknowledged == 0 and steady_lost == 0
    burst_met = burst_acks.max < SLACK_LIMIT_MS and burst.unacknowledged == 0 and burst_lost == 0
    lag = summarize(steady.lags + burst.lags)
    BenchResult(
        key="ack",
        title="Slash-command ack (open loop)",
        how=(
            "Signed `/agent-ticket show invoices for <customer>` commands to `agent-ticket bot`, each a new "
            "auto-approved ticket that `agent-ticket worker` runs meanwhile (Slack calls to the fake Slack, "
            f"its own process). Sustainable throughput R: {SUSTAIN_LANES} lanes of command → ticket done for "
            f"{sustained.seconds:.0f} s. Then commands at Poisson-spaced instants at {OPEN_LOOP_FRACTION:.0%} of R "
            f"for {steady.seconds:.0f} s, and at {BURST_FACTOR:g}x R for {burst.seconds:.0f} s; after each, every "
            "acknowledged ticket's workflow is checked to have completed `done`. Ack = until the bot's HTTP answer; "
            "drain = from the last ack until no ticket runs (visibility count, polled every 0.25 s)."
        ),
        result=(
            f"R = {sustained.per_second:.1f} tickets/s through the bot; at {steady.rate:.1f}/s: ack p50 "
            f"{steady_acks.p50:.0f} ms, p99 {steady_acks.p99:.0f} ms, {steady_lost} lost; burst at "
            f"{burst.rate:.1f}/s for {burst.seconds:.0f} s: ack p99 {burst_acks.p99:.0f} ms, max "
            f"{burst_acks.max:.0f} ms, {burst_lost} lost, backlog drained {burst_drain:.1f} s after the burst"
        ),
        target=(
            f"ack p99 < {TARGET_P99_MS:.0f} ms at {OPEN_LOOP_FRACTION:.0%} of R; burst at {BURST_FACTOR:g}x R: every "
            f"ack < {SLACK_LIMIT_MS / 1000:.0f} s, no ticket lost, drain time reported"
        ),
        met=steady_met and burst_met,
        samples=(
            f"{sustained.tickets} tickets for R, {len(steady.sent)} commands at {OPEN_LOOP_FRACTION:.0%} R, "
            f"{len(burst.sent)} in the burst"
        ),
        notes=(
            "CPU per ticket while sustaining R: "
            + ", ".join(f"{name} {value:.1f} ms" for name, value in sustained.cpu_ms_per_ticket.items())
            + f". Acks in the sustaining lanes: {sustained.acks.brief()}. Open loop at {OPEN_LOOP_FRACTION:.0%} R: "
            f"{steady_acks.brief()}, backlog gone {steady_drain:.1f} s after the last ack; outcomes "
            f"{dict(steady_outcomes)}. Burst: {burst_acks.brief()}, outcomes {dict(burst_outcomes)}. The load "
            f"generator sent commands late by p99 {lag.p99:.1f} ms (max {lag.max:.0f} ms) against their schedule."
        ),
        figures={
            "sustainable_per_second": round(sustained.per_second, 2),
            "sustain_tickets": sustained.tickets,
            "cpu_ms_per_ticket": sustained.cpu_ms_per_ticket,
            "sustain_acks_ms": sustained.acks.figures(),
            "open_loop": {
                "rate_per_second": round(steady.rate, 2),
                "commands": len(steady.sent),
                "unacknowledged": steady.unacknowledged,
                "deferred": steady.deferred,
                "acks_ms": steady_acks.figures(),
                "drain_seconds": round(steady_drain, 2),
                "outcomes": dict(steady_outcomes),
            },
            "burst": {
                "rate_per_second": round(burst.rate, 2),
                "seconds": burst.seconds,
                "commands": len(burst.sent),
                "unacknowledged": burst.unacknowledged,
                "deferred": burst.deferred,
                "acks_ms": burst_acks.figures(),
                "drain_seconds": round(burst_drain, 2),
                "outcomes": dict(burst_outcomes),
            },
            "generator_lag_ms": lag.figures(),
        },
    ).save()


def save_saturation(saturated: Saturation, totals: dict[int, int]) -> None:
    top = max(LEVELS)
    BenchResult(
        key="ack_saturation",
        title="Slash-command ack at saturation (closed loop)",
        how=(
            f"Closed loop: 1, 20 and {top} senders, each sending its next command as soon as its last was acked "
            f"({', '.join(str(totals[level]) for level in LEVELS)} commands), tickets running meanwhile; then "
            f"Temporal alone: {top} plain clients starting tickets on a queue no worker polls."
        ),
        result="; ".join(
            f"{level} senders: p50 {stats.p50:.0f} ms, p99 {stats.p99:.0f} ms, {saturated.rates[level]:.0f}/s"
            + (f", {saturated.deferred[level]} deferred" if saturated.deferred[level] else "")
            for level, stats in saturated.levels.items()
        )
        + f"; Temporal alone {saturated.alone_per_second:.0f} starts/s (p99 {saturated.alone.p99:.0f} ms)",
        target="a measurement of capacity, not a target",
        met=None,
        samples=", ".join(f"{totals[level]} commands at {level}" for level in LEVELS) + f", {totals[top]} plain starts",
        notes=(
            f"A closed loop of {top} senders keeps {top} starts queued, so each waits about {top} / rate: "
            f"{1000 * top / saturated.rates[top]:.0f} ms here. The bot used {saturated.bot_cpu_ms:.1f} ms of CPU "
            f"per command; the server {saturated.alone_server_cpu_ms:.1f} ms per start when alone. A deferred ack "
            "is the bot's answer when Temporal has not accepted the start within its 2 s budget: \"slow to answer, "
            "not filed yet\", with the start's outcome posted later; it counts as an ack, at its time."
        ),
        figures={
            **{f"concurrency_{level}_ms": stats.figures() for level, stats in saturated.levels.items()},
            "commands_per_second": {str(level): round(rate, 1) for level, rate in saturated.rates.items()},
            "deferred_acks": {str(level): count for level, count in saturated.deferred.items()},
            "bot_cpu_ms_per_command": round(saturated.bot_cpu_ms, 2),
            "temporal_alone_starts": {
                "senders": top,
                "per_second": round(saturated.alone_per_second, 1),
                "latency_ms": saturated.alone.figures(),
                "server_cpu_ms_per_start": round(saturated.alone_server_cpu_ms, 2),
            },
        },
    ).save()


if __name__ == "__main__":
    run_benchmark(main)
