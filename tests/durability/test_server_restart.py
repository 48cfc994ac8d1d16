"""Stop the Temporal dev server (SQLite persistence) with tickets in flight and awaiting approval, start it again.

The server is a process of this test's own (`temporal server start-dev --db-filename ...`), so
the session's shared server is not disturbed. The workers run in this process and are never
restarted: they reconnect by themselves. Afterwards every ticket is still listed, approvals
sent after the restart are honoured, and every ticket completes with its write applied once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from sqlalchemy import select
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from core.bootstrap import Databases, init_databases
from core.demo import subscriptions, users
from core.models import Decision, DecisionSource, OutcomeStatus, Stage, TicketStatus
from core.names import WORKFLOW_NAME
from core.settings import Settings
from service.temporal import temporal_cli_path
from service.tickets import StartedTicket, TicketService
from tests.durability.processes import ChildProcess, free_port, temporal_dev_server
from tests.durability.support import ledger_rows, ticket_request, wait_for_stage
from tests.pipeline import pipeline_settings
from worker.activities import build_activity_set
from worker.build import build_workers

LOW_RISK = [
    ("upgrade acme-corp to the pro plan", 1, 3),
    ("move globex to the pro plan", 2, 3),
]
HIGH_RISK = [  # `role` is sensitive: two approvers
    ("make carol@acme-corp.example an admin", "carol@acme-corp.example"),
    ("make erin@globex.example an admin", "erin@globex.example"),
]
IN_FLIGHT = [("move cyberdyne to the enterprise plan", 9, 4)]  # started just before the stop


async def start_server(server: ChildProcess, address: str, within: float = 60.0) -> Client:
    """Start the dev server process and connect once it answers."""
    await server.start()
    deadline = time.monotonic() + within
    while True:
        try:
            return await Client.connect(address, data_converter=pydantic_data_converter)
        except RuntimeError:
            assert server.running, f"the Temporal server exited:\n{server.output()}"
            assert time.monotonic() < deadline, f"the Temporal server did not answer:\n{server.output()}"
            await asyncio.sleep(0.2)


def approval(status: TicketStatus, decider: str) -> Decision:
    assert status.approval is not None
    return status.approval.decision(decider, DecisionSource.CLI)


async def listed_ticket_ids(client: Client, queue: str) -> set[str]:
    query = f"WorkflowType = '{WORKFLOW_NAME}' AND TaskQueue = '{queue}'"
    return {execution.id async for execution in client.list_workflows(query)}


async def target_value(settings_databases: Databases, column: object, where: object) -> object:
    async with settings_databases.target_engine.connect() as connection:
        return await connection.scalar(select(column).where(where))  # type: ignore[call-overload]


@pytest.mark.timeout(150)
async def test_server_restart_keeps_every_ticket_and_honours_later_approvals(tmp_path: Path) -> None:
    queue = f"restart-{uuid.uuid4().hex[:8]}"
    settings: Settings = pipeline_settings(tmp_path / "data", queue)
    db_file = tmp_path / "temporal.db"
    port, ui_port = free_port(), free_port()
    address = f"127.0.0.1:{port}"
    first = temporal_dev_server("temporal (first run)", temporal_cli_path(), db_file, port, ui_port)
    second = temporal_dev_server("temporal (second run)", temporal_cli_path(), db_file, port, ui_port)
    databases = Databases.open(settings)
    try:
        await init_databases(databases, settings)
        client = await start_server(first, address)
        service = TicketService(client, databases.app_sessions, queue, signing_key=settings.signing_key)
        async with AsyncExitStack() as stack:
            for worker in build_workers(client, build_activity_set(settings, databases), task_queue=queue):
                await stack.enter_async_context(worker)

            low = [await service.start(ticket_request(settings, text)) for text, _, _ in LOW_RISK]
            high = [await service.start(ticket_request(settings, text)) for text, _ in HIGH_RISK]
            for ticket in low:
                assert (await service.result(ticket.short_id)).status is OutcomeStatus.DONE
            waiting = [await wait_for_stage(service, ticket.short_id, Stage.AWAITING_APPROVAL) for ticket in high]
            # One approval of the two needed before the stop; the second comes after the restart.
            await service.decide(high[0].short_id, approval(waiting[0], "alice"))
            in_flight: list[StartedTicket] = [
                await service.start(ticket_request(settings, text)) for text, _, _ in IN_FLIGHT
            ]

            stop_started = time.monotonic()
            assert await first.stop(grace=30) == 0, first.output()
            down_for = time.monotonic() - stop_started
            restart_started = time.monotonic()
            await start_server(second, address)
            restart_seconds = time.monotonic() - restart_started

            everyone = [*low, *high, *in_flight]
            assert {ticket.workflow_id for ticket in everyone} <= await listed_ticket_ids(client, queue)

            after = [await wait_for_stage(service, ticket.short_id, Stage.AWAITING_APPROVAL) for ticket in high]
            assert [len([d for d in status.decisions if d.accepted]) for status in after] == [1, 0]
            await service.decide(high[0].short_id, approval(after[0], "bob"))
            await service.decide(high[1].short_id, approval(after[1], "alice"))
            await service.decide(high[1].short_id, approval(after[1], "carol"))
            outcomes = await asyncio.wait_for(
                asyncio.gather(*(service.result(ticket.short_id) for ticket in [*high, *in_flight])), timeout=60
            )
            recovered_seconds = time.monotonic() - restart_started
        print(
            f"\n[durability] Temporal server restart: stopped in {down_for:.1f} s, answering again "
            f"{restart_seconds:.1f} s after restart; {len(everyone)} tickets listed, "
            f"{len(high)} approved after the restart, all done {recovered_seconds:.1f} s after restart"
        )

        assert [outcome.status for outcome in outcomes] == [OutcomeStatus.DONE] * len(outcomes), outcomes
        assert sorted(outcomes[0].decided_by) == ["alice", "bob"]
        assert sorted(outcomes[1].decided_by) == ["alice", "carol"]
        for ticket in everyone:
            assert await ledger_rows(databases, ticket.workflow_id) == 1
        for _, email in HIGH_RISK:
            assert await target_value(databases, users.c.role, users.c.email == email) == "admin"
        for _, subscription_id, plan_id in [*LOW_RISK, *IN_FLIGHT]:
            assert (
                await target_value(databases, subscriptions.c.plan_id, subscriptions.c.id == subscription_id) == plan_id
            )
    finally:
        await first.stop()
        await second.stop()
        await databases.close()
