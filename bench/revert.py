"""Revert: from asking to undo an executed 10-operation ticket to the revert ticket done (p50 reported).

A revert is a new ticket with the deterministic inverse plan of an executed one, through the same
policy and approvals (docs/undo.md). Each round executes the database benchmark's 10-operation plan
(approved), asks for its revert, approves the revert as soon as it waits (the approvals are sent
by the benchmark, so the figure is the machine's time, not a person's), and times request →
revert done.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from bench.database import ten_operation_plan
from bench.harness import (
    BenchResult,
    bench_settings,
    dev_server,
    prepare_databases,
    run_benchmark,
    scaled,
    summarize,
    workdir,
)
from core.bootstrap import Databases
from core.models import OutcomeStatus, Stage
from tests.pipeline import REQUESTER, Pipeline, running_pipeline

TITLE = "Revert (10 operations)"
TARGET = "p50 reported"


async def approve_all_needed(pipeline: Pipeline, ticket: str, approvers: list[str]) -> None:
    """Approve as soon as it waits, with as many of `approvers` as it needs (none if it ran on its own)."""
    status = await pipeline.service.status(ticket)
    while status.outcome is None and status.stage is not Stage.AWAITING_APPROVAL:
        await asyncio.sleep(0.02)
        status = await pipeline.service.status(ticket)
    if status.outcome is None and status.approval is not None:
        await pipeline.approve(ticket, *approvers[: status.approval.required_approvals])


async def measure(runs: int) -> list[float]:
    samples: list[float] = []
    with workdir("revert") as directory:
        async with dev_server(directory) as (server, client):
            settings = bench_settings(directory / "data", server.address, f"bench-{uuid.uuid4().hex[:6]}")
            await prepare_databases(settings)
            databases = Databases.open(settings)
            try:
                async with running_pipeline(client, settings, databases) as pipeline:
                    for index in range(runs + 2):
                        plan = ten_operation_plan(index)
                        request = pipeline.request(plan.summary).model_copy(update={"proposed_plan": plan})
                        ticket = await pipeline.service.start(request)
                        await approve_all_needed(pipeline, ticket.short_id, ["alice", "bob"])
                        outcome = await pipeline.service.result(ticket.short_id)
                        if outcome.status is not OutcomeStatus.DONE:
                            raise RuntimeError(f"{ticket.label} ended {outcome.status.value}: {outcome.reason}")
                        began = time.perf_counter()
                        revert = await pipeline.revert(ticket.short_id, "carol")
                        await approve_all_needed(pipeline, revert.short_id, ["alice", "bob"])
                        ended = await pipeline.service.result(revert.short_id)
                        if ended.status is not OutcomeStatus.DONE:
                            raise RuntimeError(f"revert {revert.label} ended {ended.status.value}: {ended.reason}")
                        if index >= 2:  # warm-up
                            samples.append(time.perf_counter() - began)
            finally:
                await databases.close()
    return samples


async def main() -> None:
    runs = scaled(20, 5)
    samples = await measure(runs)
    stats = summarize(samples)
    BenchResult(
        key="revert",
        title=TITLE,
        how=(
            "An executed ticket with the 10-operation plan of the database benchmark (4 tables; updates, an "
            "insert, a delete, selects; approved) is reverted with `TicketService.revert` by another person; the "
            "revert ticket is approved by the benchmark as soon as it waits, by as many people as it needs; time "
            f"from the request to the revert ticket done, {runs} times after 2 warm-ups, real workers in the "
            "benchmark's process, SQLite."
        ),
        result=f"request → revert done {stats.brief()}",
        target=TARGET,
        met=None,
        samples=f"{stats.n} reverts",
        figures={"request_to_revert_done_ms": stats.figures(), "requester": REQUESTER},
    ).save()


if __name__ == "__main__":
    run_benchmark(main)
