"""`agent-ticket worker`'s process: it polls, spares the garbage collector its start-up objects, and stops;
it starts without loading what only other commands need."""

from __future__ import annotations

import asyncio
import gc
import io
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from temporalio.testing import WorkflowEnvironment

from cli.running import run_worker_command
from core.bootstrap import Databases, init_databases
from core.settings import PROJECT_ROOT
from tests.support import build_settings
from worker.build import QueueRole


class PrintedLines(io.StringIO):
    """What the command prints; `polling` is set when it says it is polling."""

    def __init__(self) -> None:
        super().__init__()
        self.polling = asyncio.Event()

    def write(self, text: str) -> int:
        if "Worker polling" in text:
            self.polling.set()
        return super().write(text)


async def test_once_polling_the_worker_freezes_what_start_up_made(
    local_env: WorkflowEnvironment, tmp_path: Path, task_queue: str
) -> None:
    address = local_env.client.service_client.config.target_host
    settings = build_settings(tmp_path, task_queue, temporal_address=address)
    databases = Databases.open(settings)
    await init_databases(databases, settings)
    await databases.close()
    output = PrintedLines()
    frozen_while_polling: list[int] = []
    watching: list[asyncio.Task[None]] = []

    def stop_once_polling(stop: asyncio.Event) -> None:
        async def watch() -> None:
            await output.polling.wait()
            # The command freezes in the same step as it announces, before this task runs again.
            frozen_while_polling.append(gc.get_freeze_count())
            stop.set()

        watching.append(asyncio.get_running_loop().create_task(watch()))

    gc.unfreeze()
    try:
        await asyncio.wait_for(
            run_worker_command(settings, QueueRole.ALL, stop_once_polling, Console(file=output)), timeout=60
        )
    finally:
        gc.unfreeze()  # this test process keeps collecting as before
    assert frozen_while_polling and frozen_while_polling[0] > 0
    assert "Worker stopped." in output.getvalue()


def test_the_worker_command_imports_neither_alembic_nor_the_http_stack() -> None:
    """Start-up time is crash-recovery time: a worker never migrates or serves HTTP, so it loads neither."""
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, cli.main, cli.servers, cli.running, worker.main; print(' '.join(sorted(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT_ROOT,
    ).stdout.split()
    only_elsewhere = {"alembic", "mako", "pygments", "starlette", "uvicorn"}
    assert [name for name in loaded if name.split(".")[0] in only_elsewhere] == []
