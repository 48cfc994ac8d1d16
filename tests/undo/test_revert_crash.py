"""SIGKILL a worker in the middle of a revert's transaction: a replacement reverts exactly once.

A real worker process (tests/undo/stalling_worker.py) runs a ticket, then its revert, and stalls
inside the revert's execution after the claim on the original and the first row are written,
uncommitted. The test checks nothing of it shows, kills the process, lets a warm replacement
take over, and checks: the revert is done, its execution was retried (not replayed: nothing had
committed), the row is back, the target DB saw the revert's write once, and the ledger holds one
claim and one execution row for the revert. On SQLite and PostgreSQL at once.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from core.bootstrap import Databases, init_databases
from core.demo import subscriptions
from core.models import OutcomeStatus
from core.names import ACTIVITY_EXECUTE_PLAN
from service.tickets import TicketService
from tests.durability.processes import ChildProcess, go, wait_until_polling, warm_up
from tests.durability.support import (
    WRITE_LOG,
    activity_runs,
    install_write_log,
    ledger_rows,
    ticket_request,
    worker_env,
    writes_logged,
)
from tests.postgres import fresh_postgres_database
from tests.support import build_settings
from tests.undo.support import BACKENDS, init_lock, ledger_row, rows_of

UPGRADE = "upgrade acme-corp to the pro plan"  # low risk: subscription 1 moves to plan 3, no approval
SUBSCRIPTION = 1


def undo_worker(name: str, env: dict[str, str]) -> ChildProcess:
    return ChildProcess(name, [sys.executable, "-m", "tests.undo.stalling_worker"], env)


async def install_pg_write_log(engine: AsyncEngine, table: str) -> None:
    """PostgreSQL's form of `install_write_log`: every UPDATE of `table` logged in its own transaction."""
    async with engine.begin() as connection:
        await connection.execute(text(f"CREATE TABLE {WRITE_LOG} (tbl TEXT NOT NULL, row_id INTEGER NOT NULL)"))
        await connection.execute(
            text(
                f"CREATE FUNCTION {table}_log_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"INSERT INTO {WRITE_LOG} (tbl, row_id) VALUES (TG_TABLE_NAME, NEW.id); RETURN NEW; END $$"
            )
        )
        await connection.execute(
            text(
                f"CREATE TRIGGER {table}_write_log AFTER UPDATE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {table}_log_write()"
            )
        )


async def wait_for_marker(marker: Path, worker: ChildProcess, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(marker.exists):
        assert worker.running, f"the stalling worker died early:\n{worker.output()}"
        assert time.monotonic() < deadline, f"the revert never reached its stall:\n{worker.output()}"
        await asyncio.sleep(0.1)


async def kill_mid_revert(backend: str, workdir: Path, local_env: WorkflowEnvironment) -> None:
    async with AsyncExitStack() as stack:
        urls: dict[str, str] = {}
        if backend == "postgresql":
            url = await stack.enter_async_context(fresh_postgres_database("agent_ticket_undo_crash"))
            urls = {"app_database_url": url, "target_database_url": url}
        settings = build_settings(workdir / "data", f"undo-crash-{backend[:2]}-{uuid.uuid4().hex[:8]}", **urls)
        env = worker_env(settings, local_env.client.service_client.config.target_host)
        env.update({"APP_DATABASE_URL": settings.app_db_url, "TARGET_DATABASE_URL": settings.target_db_url})
        marker_dir = workdir / "markers"
        stalling = undo_worker(f"stalling worker ({backend})", {**env, "STALL_MARKER_DIR": str(marker_dir)})
        fresh = undo_worker(f"replacement worker ({backend})", {**env, "WAIT_FOR_GO": "1"})
        stack.push_async_callback(fresh.stop)
        stack.push_async_callback(stalling.stop)
        databases = Databases.open(settings)
        stack.push_async_callback(databases.close)

        await asyncio.gather(stalling.start(), fresh.start())  # they import while the databases are made
        async with init_lock:
            await init_databases(databases, settings)
        engine = databases.target_engine
        await (install_pg_write_log if backend == "postgresql" else install_write_log)(engine, subscriptions.name)
        before = await rows_of(engine, subscriptions)
        service = TicketService(
            local_env.client, databases.app_sessions, settings.temporal_task_queue, signing_key=settings.signing_key
        )
        await asyncio.gather(wait_until_polling(stalling), warm_up(fresh))

        original = await service.start(ticket_request(settings, UPGRADE))
        assert (await service.result(original.short_id)).status is OutcomeStatus.DONE
        changed = await rows_of(engine, subscriptions)
        assert changed != before
        revert = await service.revert(original.short_id, "dave", approval=settings.approval_settings())
        await wait_for_marker(marker_dir / revert.workflow_id, stalling)

        # Mid-transaction: the claim and the write are made but not committed, so neither shows.
        assert await rows_of(engine, subscriptions) == changed
        claimed = await ledger_row(engine, original.workflow_id)
        assert claimed is not None and claimed["reverted_by"] is None
        await stalling.kill()
        await go(fresh)
        await wait_until_polling(fresh)
        outcome = await asyncio.wait_for(service.result(revert.short_id), timeout=90)

        assert outcome.status is OutcomeStatus.DONE, outcome.reason
        assert outcome.execution is not None and not outcome.execution.replayed  # nothing had committed
        runs = [
            run
            for run in await activity_runs(local_env.client, revert.workflow_id)
            if run.name == ACTIVITY_EXECUTE_PLAN
        ]
        assert len(runs) == 1 and runs[0].completed and runs[0].attempt >= 2, runs
        assert await rows_of(engine, subscriptions) == before
        assert await writes_logged(engine, subscriptions.name, SUBSCRIPTION) == 2  # the original's, the revert's
        claimed = await ledger_row(engine, original.workflow_id)
        assert claimed is not None and claimed["reverted_by"] == revert.workflow_id
        assert await ledger_rows(databases, revert.workflow_id) == 1
        async with engine.connect() as connection:
            plan_id = await connection.scalar(select(subscriptions.c.plan_id).where(subscriptions.c.id == SUBSCRIPTION))
        assert plan_id == 2


@pytest.mark.timeout(180)
async def test_a_worker_killed_mid_revert_never_half_reverts(tmp_path: Path, local_env: WorkflowEnvironment) -> None:
    await asyncio.gather(*(kill_mid_revert(backend, tmp_path / backend, local_env) for backend in BACKENDS))
