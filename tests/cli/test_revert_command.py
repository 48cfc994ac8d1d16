"""`agent-ticket revert` against a real Temporal dev server and the real workers: undo, approve, refuse twice."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from core.bootstrap import Databases
from core.demo import demo_rows, invoices
from tests.cli.conftest import CliEnv
from worker.main import run_workers

TICKET_ID = re.compile(r"Submitted (T-[0-9a-f]+)")


@pytest.fixture
async def running(cli_env: CliEnv, local_env: WorkflowEnvironment) -> AsyncIterator[CliEnv]:
    """`init-db` through the CLI, then the real workers on this test's own task queue."""
    cli_env.set("TEMPORAL_ADDRESS", local_env.client.service_client.config.target_host)
    result = await cli_env.run("init-db")
    assert result.exit_code == 0, result.output
    stop = asyncio.Event()
    workers = asyncio.create_task(run_workers(cli_env.settings(), stop=stop, client=local_env.client))
    yield cli_env
    stop.set()
    await asyncio.wait_for(workers, 30)


def ticket_of(output: str) -> str:
    found = TICKET_ID.search(output)
    assert found, output
    return found.group(1)


async def invoice_status(env: CliEnv, invoice: object) -> str | None:
    databases = Databases.open(env.settings())
    try:
        async with databases.target_sessions() as session:
            return await session.scalar(select(invoices.c.status).where(invoices.c.id == invoice))
    finally:
        await databases.close()


async def test_revert_puts_the_row_back_after_approval_and_refuses_a_second_time(running: CliEnv) -> None:
    unpaid = next(row for row in demo_rows()["invoices"] if row["status"] not in ("paid", "void"))
    was = await invoice_status(running, unpaid["id"])
    submitted = await running.run("submit", f"mark invoice {unpaid['id']} as paid", "--wait", "--as", "dave")
    original = ticket_of(submitted.output)
    approved = await running.run("approve", original, "--as", "alice", "--wait")
    assert approved.exit_code == 0 and "done" in approved.output, approved.output
    assert await invoice_status(running, unpaid["id"]) == "paid"

    asked = await running.run("revert", original, "--as", "dave", "--wait")
    assert asked.exit_code == 0, asked.output
    revert = ticket_of(asked.output)
    assert f"Submitted {revert}, which reverts {original}, as dave" in asked.output
    assert "awaiting approval" in asked.output
    assert await invoice_status(running, unpaid["id"]) == "paid"  # nothing runs before the approval
    done = await running.run("approve", revert, "--as", "bob", "--wait")
    assert done.exit_code == 0 and "done: executed: 1 row(s) changed" in done.output, done.output
    assert await invoice_status(running, unpaid["id"]) == was

    again = await running.run("revert", original, "--as", "dave", "--wait", "--json")
    assert again.exit_code == 1, again.output
    status = json.loads(again.stdout)
    assert status["outcome"]["status"] == "blocked"
    assert status["outcome"]["reason"] == f"{original} was already reverted by {revert}"
    assert await invoice_status(running, unpaid["id"]) == was


async def test_revert_of_a_ticket_that_changed_nothing_is_refused_at_once(running: CliEnv) -> None:
    read = await running.run("submit", "show invoices for acme-corp", "--wait", "--as", "dave")
    assert read.exit_code == 0 and "done" in read.output, read.output
    refused = await running.run("revert", ticket_of(read.output), "--as", "dave")
    assert refused.exit_code == 1
    assert "Cannot revert:" in refused.output and "changed no rows" in refused.output
    unknown = await running.run("revert", "T-0000000000", "--as", "dave")
    assert unknown.exit_code != 0 and "no ticket T-0000000000" in unknown.output, unknown.output
