"""Idle cost: 1,000 tickets waiting for approval, then all approved.

The worker is `agent-ticket worker` (one process). Tickets are "mark invoice N as paid"
(medium risk, one approver). Once every ticket's row in the app DB says it is awaiting
approval, the worker's CPU and RSS are read from /proc for a while; then each ticket is
approved the way the CLI and dashboard do it (`TicketService.decide`: status query, checks,
signal) and every one must finish `done`.
"""

from __future__ import annotations

import asyncio
import functools
import time

from sqlalchemy import func, select

from bench.harness import (
    BenchResult,
    approval_text,
    dev_server,
    gather_limited,
    log,
    polling_worker,
    process_rss_bytes,
    run_benchmark,
    sample_process,
    scaled,
    unpaid_invoice_ids,
    workdir,
)
from bench.product import APPROVERS, StartedTicket, TicketService, front_door
from core.bootstrap import Databases
from core.models import DecisionSource, OutcomeStatus, Stage, TicketRequest
from core.schema import TicketRow
from tests.pipeline import REQUESTER

TARGET_CPU_PERCENT = 1.0
TARGET_RSS_MB = 300.0
CONCURRENCY = 20


async def count_waiting(databases: Databases) -> int:
    async with databases.app_sessions() as session:
        query = select(func.count()).select_from(TicketRow).where(TicketRow.stage == Stage.AWAITING_APPROVAL.value)
        return int(await session.scalar(query) or 0)


async def wait_until_waiting(databases: Databases, expected: int, within: float) -> float:
    """Seconds until `expected` tickets are awaiting approval."""
    began = time.monotonic()
    while (waiting := await count_waiting(databases)) < expected:
        if time.monotonic() - began > within:
            raise TimeoutError(f"only {waiting} of {expected} tickets reached approval in {within:.0f} s")
        await asyncio.sleep(1.0)
    return time.monotonic() - began


async def approve(service: TicketService, ticket: StartedTicket) -> OutcomeStatus:
    status = await service.status(ticket.short_id)
    assert status.approval is not None, f"{ticket.label} is not waiting: {status.stage}"
    await service.decide(ticket.short_id, status.approval.decision(APPROVERS[0], DecisionSource.CLI))
    return (await service.result(ticket.short_id)).status


async def main() -> None:
    tickets_wanted = scaled(1000, 100)
    window = float(scaled(30, 10))
    invoices = unpaid_invoice_ids()
    with workdir("idle") as directory:
        async with (
            dev_server(directory) as (server, client),
            polling_worker(directory, server.address) as (settings, worker),
        ):
            databases = Databases.open(settings)
            try:
                service = front_door(client, settings, settings.temporal_task_queue, databases.app_sessions)
                log(f"starting {tickets_wanted} tickets that need approval")
                began = time.monotonic()
                requests = [
                    TicketRequest(
                        text=approval_text(index, invoices),
                        requester=REQUESTER,
                        approval=settings.approval_settings(),
                    )
                    for index in range(tickets_wanted)
                ]
                tickets = await gather_limited(
                    CONCURRENCY, [functools.partial(service.start, request) for request in requests]
                )
                settle = await wait_until_waiting(databases, tickets_wanted, within=1800)
                log(f"all {tickets_wanted} waiting after {time.monotonic() - began:.0f} s; settling 5 s")
                await asyncio.sleep(5)
                log(f"sampling the worker for {window:.0f} s")
                worker_idle = await sample_process(worker.pid, window)
                server_idle = await sample_process(server.child.pid, 5.0)
                log("approving every ticket")
                approved_at = time.monotonic()
                outcomes = await gather_limited(
                    CONCURRENCY, [functools.partial(approve, service, ticket) for ticket in tickets]
                )
                approval_seconds = time.monotonic() - approved_at
                rss_after = process_rss_bytes(worker.pid) / 2**20
            finally:
                await databases.close()

    done = sum(1 for outcome in outcomes if outcome is OutcomeStatus.DONE)
    met = (
        worker_idle.cpu_percent < TARGET_CPU_PERCENT
        and worker_idle.rss_max_mb < TARGET_RSS_MB
        and done == tickets_wanted
    )
    BenchResult(
        key="idle",
        title="Idle cost",
        how=(
            f"{tickets_wanted} `mark invoice N as paid` tickets (medium risk, one approver) on `agent-ticket worker`; "
            f"once all are awaiting approval (app DB), the worker process's CPU (utime+stime) and RSS are read from "
            f"/proc over {window:.0f} s; then each is approved through `TicketService.decide` ({CONCURRENCY} at a "
            "time) and its result awaited."
        ),
        result=(
            f"worker CPU {worker_idle.cpu_percent:.2f}% of a core, RSS {worker_idle.rss_max_mb:.0f} MB while "
            f"{tickets_wanted} wait; {done}/{tickets_wanted} done {approval_seconds:.0f} s after approving began"
        ),
        target=(
            f"CPU < {TARGET_CPU_PERCENT:.0f}%, RSS < {TARGET_RSS_MB:.0f} MB while waiting; all complete when approved"
        ),
        met=met,
        samples=f"{tickets_wanted} waiting tickets, CPU and RSS sampled once a second while they waited",
        figures={
            "tickets": tickets_wanted,
            "seconds_to_all_waiting": round(settle, 1),
            "worker_cpu_percent": round(worker_idle.cpu_percent, 3),
            "worker_rss_max_mb": round(worker_idle.rss_max_mb, 1),
            "worker_rss_after_approvals_mb": round(rss_after, 1),
            "server_cpu_percent_while_waiting": round(server_idle.cpu_percent, 2),
            "approve_all_seconds": round(approval_seconds, 1),
            "done": done,
        },
    ).save()


if __name__ == "__main__":
    run_benchmark(main)
