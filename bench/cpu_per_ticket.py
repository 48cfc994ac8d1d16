"""Diagnostic, not one of the targets: CPU and history per auto-approved ticket, for before/after runs.

Latency on a shared machine moves ±20 % between identical runs; CPU seconds per ticket (from
/proc) and history counts move much less, so product changes are compared with this. It runs
`agent-ticket worker` and a few tickets in flight, then prints tickets/s, worker and server
CPU per ticket, latency, and workflow tasks, activities and events per ticket.

    python -m bench.cpu_per_ticket [--tickets 60] [--in-flight 4] [--strace]

`BENCH_PRODUCT_ROOT=<checkout>` runs the worker from another checkout (e.g. a `git worktree` of
the commit before a change); `BENCH_SERVER_ARGS` replaces the dev server's tuning flags;
`--strace` counts the dev server's fsync and write calls.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from pathlib import Path

from bench.harness import (
    auto_approved_text,
    dev_server,
    load_average,
    polling_worker,
    process_cpu_seconds,
    run_benchmark,
    summarize,
    workdir,
)
from bench.history_timing import history_timing, mean_timing
from bench.product import TicketService
from core.models import OutcomeStatus, TicketRequest
from tests.pipeline import REQUESTER

WARM_UP = 5


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=60)
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--strace", action="store_true", help="count the dev server's fsync/write system calls")
    return parser.parse_args()


async def strace_server(pid: int, output: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "strace", "-f", "-c", "-e", "trace=fsync,fdatasync,pwrite64,write", "-o", str(output), "-p", str(pid)
    )


async def main() -> None:
    options = arguments()
    with workdir("cpu") as directory:
        async with (
            dev_server(directory) as (server, client),
            polling_worker(directory, server.address) as (settings, worker),
        ):
            service = TicketService(client, task_queue=settings.temporal_task_queue)

            async def one(index: int) -> float:
                request = TicketRequest(
                    text=auto_approved_text(index), requester=REQUESTER, approval=settings.approval_settings()
                )
                began = time.perf_counter()
                ticket = await service.start(request)
                outcome = await service.result(ticket.short_id)
                if outcome.status is not OutcomeStatus.DONE:
                    raise RuntimeError(f"{ticket.label}: {outcome.status.value}: {outcome.reason}")
                workflow_ids.append(ticket.workflow_id)
                return time.perf_counter() - began

            workflow_ids: list[str] = []
            for index in range(WARM_UP):
                await one(index)
            workflow_ids.clear()
            tracer = None
            if options.strace:
                tracer = await strace_server(server.child.pid, directory / "strace.txt")
                await asyncio.sleep(1.0)
            cpu = process_cpu_seconds(worker.pid), process_cpu_seconds(server.child.pid)
            latencies: list[float] = []
            began = time.perf_counter()
            counter = iter(range(options.tickets))

            async def lane() -> None:
                for index in counter:
                    latencies.append(await one(index))

            await asyncio.gather(*(lane() for _ in range(options.in_flight)))
            elapsed = time.perf_counter() - began
            worker_cpu = process_cpu_seconds(worker.pid) - cpu[0]
            server_cpu = process_cpu_seconds(server.child.pid) - cpu[1]
            if tracer is not None:
                tracer.send_signal(signal.SIGINT)
                await tracer.wait()
            histories = [
                history_timing(await client.get_workflow_handle(workflow_id).fetch_history())
                for workflow_id in workflow_ids
            ]
            tickets = options.tickets
            shape = mean_timing(histories)
            print(
                f"product from {os.environ.get('BENCH_PRODUCT_ROOT', 'this checkout')}: {tickets / elapsed:.1f} "
                f"tickets/s, worker CPU {1000 * worker_cpu / tickets:.0f} ms/ticket, server CPU "
                f"{1000 * server_cpu / tickets:.0f} ms/ticket, latency {summarize(latencies).brief()}; per ticket "
                f"{shape['workflow_tasks']:.0f} workflow tasks, {shape['activities']:.0f} activities, "
                f"{shape['local_activities']:.0f} local activities, {shape['history_events']:.0f} events; "
                f"load {load_average()}"
            )
            if options.strace:
                print(await asyncio.to_thread((directory / "strace.txt").read_text))


if __name__ == "__main__":
    run_benchmark(main)
