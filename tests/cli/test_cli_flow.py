"""The CLI against a real Temporal dev server and the real workers: submit, wait, approve, reject, show, list."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from core.bootstrap import Databases
from core.demo import demo_rows, invoices, users
from core.models import Stage
from core.schema import TicketRow
from tests.cli.conftest import CliEnv
from tests.support import recorded_at_stage
from worker.main import run_workers

TICKET_ID = re.compile(r"Submitted (T-[0-9a-f]+)")


@pytest.fixture
async def running(cli_env: CliEnv, local_env: WorkflowEnvironment) -> AsyncIterator[CliEnv]:
    """`init-db` through the CLI, then the real workers on this test's own task queue."""
    cli_env.set("TEMPORAL_ADDRESS", local_env.client.service_client.config.target_host)
    result = await cli_env.run("init-db")
    assert result.exit_code == 0, result.output
    assert "Target DB ready" in result.output
    stop = asyncio.Event()
    workers = asyncio.create_task(run_workers(cli_env.settings(), stop=stop, client=local_env.client))
    yield cli_env
    stop.set()
    await asyncio.wait_for(workers, 30)


def ticket_of(output: str) -> str:
    found = TICKET_ID.search(output)
    assert found, output
    return found.group(1)


async def role_of(env: CliEnv, email: str) -> str | None:
    databases = Databases.open(env.settings())
    try:
        async with databases.target_sessions() as session:
            return await session.scalar(select(users.c.role).where(users.c.email == email))
    finally:
        await databases.close()


async def test_low_risk_ticket_runs_to_done(running: CliEnv) -> None:
    result = await running.run("submit", "upgrade acme-corp to the pro plan", "--wait", "--as", "dave")
    assert result.exit_code == 0, result.output
    assert "done: executed: 1 row(s) changed" in result.output

    listing = await running.run("list", "--status", "done")
    assert listing.exit_code == 0, listing.output
    assert ticket_of(result.output) in listing.output


async def test_risky_ticket_waits_then_two_approvers_finish_it(running: CliEnv) -> None:
    submitted = await running.run("submit", "make carol@acme-corp.example an admin", "--wait", "--as", "dave")
    assert submitted.exit_code == 0, submitted.output
    assert "awaiting approval" in submitted.output
    ticket = ticket_of(submitted.output)
    assert f"agent-ticket approve {ticket}" in submitted.output

    own = await running.run("approve", ticket, "--as", "dave")
    assert own.exit_code == 1 and "cannot decide on their own ticket" in own.output
    stranger = await running.run("approve", ticket, "--as", "mallory")
    assert stranger.exit_code == 1 and "not an approver" in stranger.output

    first = await running.run("approve", ticket, "--as", "alice", "--comment", "checked with carol")
    assert first.exit_code == 0, first.output
    assert "1 of 2 approvals" in first.output
    assert await role_of(running, "carol@acme-corp.example") != "admin"
    again = await running.run("approve", ticket, "--as", "alice")
    assert again.exit_code == 1 and "already approved by this person" in again.output

    second = await running.run("approve", ticket, "--as", "bob", "--wait")
    assert second.exit_code == 0, second.output
    assert "done: executed: 1 row(s) changed" in second.output
    assert await role_of(running, "carol@acme-corp.example") == "admin"

    shown = await running.run("show", ticket, "--audit")
    assert shown.exit_code == 0, shown.output
    for expected in ("make carol@acme-corp.example an admin", "users", "role = 'admin'", "checked"):
        assert expected in shown.output
    assert "decision_accepted" in shown.output

    late = await running.run("reject", ticket, "--reason", "too late", "--as", "carol")
    assert late.exit_code == 1 and "not waiting for approval" in late.output


async def test_rejection_ends_the_ticket(running: CliEnv) -> None:
    submitted = await running.run("submit", "make carol@acme-corp.example an admin", "--wait", "--as", "dave")
    assert "awaiting approval" in submitted.output, submitted.output
    ticket = ticket_of(submitted.output)

    rejected = await running.run("reject", ticket, "--reason", "admins are set by IT", "--as", "carol", "--wait")
    assert rejected.exit_code == 1, rejected.output  # the change did not happen
    assert "rejected by carol: admins are set by IT" in rejected.output
    databases = Databases.open(running.settings())
    try:
        # The record follows the status: its events are written from a later workflow task.
        await recorded_at_stage(databases, ticket.removeprefix("T-"), Stage.FINISHED)
        async with databases.app_sessions() as session:
            row = await session.get(TicketRow, ticket.removeprefix("T-"))
    finally:
        await databases.close()
    assert row is not None and row.status == "rejected"


async def test_reject_with_replan_sends_it_back_to_the_planner(running: CliEnv) -> None:
    submitted = await running.run("submit", "make carol@acme-corp.example an admin", "--wait", "--as", "dave")
    ticket = ticket_of(submitted.output)
    first_request = re.search(r"request ([0-9a-f]+)", submitted.output)
    assert first_request, submitted.output

    sent_back = await running.run(
        "reject", ticket, "--replan", "--reason", "check with her manager first", "--as", "carol", "--wait"
    )
    assert sent_back.exit_code == 0, sent_back.output
    assert "Sent back for a new plan" in sent_back.output and "awaiting approval" in sent_back.output
    assert first_request.group(1) not in sent_back.output.split("Sent back", 1)[1]

    shown = await running.run("show", ticket)
    assert "Review rounds" in shown.output and "check with her manager first" in shown.output


# ------------------------------------------------------------------ revert


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
    status = json.loads(again.stdout)  # the CLI has no app DB to look first: the workflow refuses it
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
