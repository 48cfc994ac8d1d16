"""Revert: from asking to undo an executed ticket to the revert ticket done (the target: p50 reported).

A revert is a new ticket with the deterministic inverse plan of an executed one, through the same
policy and approvals (docs: design, step 7). This benchmark runs once the product has it: it looks
for `TicketService.revert(ticket, requester)` returning the revert ticket (a `StartedTicket`), and
otherwise saves the row as "not built yet". Each round executes a ticket that changes one row
(marking an unpaid invoice paid, one approval), asks for its revert, approves the revert as soon as
it waits (the approval is sent by the benchmark, so the figure is the machine's time, not a
person's), and times request → revert done. If the interface differs, the row says how.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from bench.harness import (
    BenchResult,
    approval_text,
    bench_settings,
    dev_server,
    log,
    prepare_databases,
    run_benchmark,
    scaled,
    summarize,
    unpaid_invoice_ids,
    workdir,
)
from core.bootstrap import Databases
from core.models import OutcomeStatus, Stage
from service.tickets import TicketService
from tests.pipeline import REQUESTER, running_pipeline

TITLE = "Revert"
TARGET = "p50 reported"


def revert_available() -> bool:
    return callable(getattr(TicketService, "revert", None))


async def measure(runs: int) -> list[float]:
    samples: list[float] = []
    invoices = unpaid_invoice_ids()
    with workdir("revert") as directory:
        async with dev_server(directory) as (server, client):
            settings = bench_settings(directory / "data", server.address, f"bench-{uuid.uuid4().hex[:6]}")
            await prepare_databases(settings)
            databases = Databases.open(settings)
            try:
                async with running_pipeline(client, settings, databases) as pipeline:
                    for index in range(runs + 2):
                        ticket = await pipeline.service.start(pipeline.request(approval_text(index, invoices)))
                        await pipeline.approve(ticket.short_id, "alice")
                        outcome = await pipeline.service.result(ticket.short_id)
                        if outcome.status is not OutcomeStatus.DONE:
                            raise RuntimeError(f"{ticket.label} ended {outcome.status.value}: {outcome.reason}")
                        began = time.perf_counter()
                        revert = await pipeline.service.revert(ticket.short_id, "bob")  # type: ignore[attr-defined]
                        status = await pipeline.service.status(revert.short_id)
                        while status.outcome is None and status.stage is not Stage.AWAITING_APPROVAL:
                            await asyncio.sleep(0.02)
                            status = await pipeline.service.status(revert.short_id)
                        if status.outcome is None:
                            await pipeline.approve(revert.short_id, "carol")
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
    if not revert_available():
        log("no revert in the product yet (TicketService.revert): saved as not built yet")
        BenchResult(
            key="revert",
            title=TITLE,
            how="Runs once `TicketService.revert` exists (see bench/revert.py).",
            result="not built yet",
            target=TARGET,
            met=None,
            samples="none",
        ).save()
        return
    try:
        samples = await measure(runs)
    except (TypeError, AttributeError) as error:
        BenchResult(
            key="revert",
            title=TITLE,
            how="",
            result="not measured",
            target=TARGET,
            met=None,
            samples="none",
            notes=f"The revert's interface differs from what bench/revert.py expects ({error!r}); adapt it.",
        ).save()
        return
    stats = summarize(samples)
    BenchResult(
        key="revert",
        title=TITLE,
        how=(
            "An executed ticket (an unpaid invoice marked paid, approved) is reverted with `TicketService.revert` "
            "by another person; the revert ticket is approved by the benchmark as soon as it waits; time from the "
            f"request to the revert ticket done, {runs} times after 2 warm-ups, real workers in the benchmark's "
            "process, SQLite, offline planner."
        ),
        result=f"request → revert done {stats.brief()}",
        target=TARGET,
        met=None,
        samples=f"{stats.n} reverts",
        figures={"request_to_revert_done_ms": stats.figures(), "requester": REQUESTER},
    ).save()


if __name__ == "__main__":
    run_benchmark(main)
