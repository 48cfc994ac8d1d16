"""Ticket search attributes: registered, set at start, kept current by the workflow, and filterable."""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.client import Client, WorkflowExecution, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from core.models import OutcomeStatus, Stage
from core.search_attributes import (
    TICKET_REQUESTER,
    TICKET_RISK,
    TICKET_STATUS,
    SearchAttributeCheck,
    ensure_registered,
    missing_attributes,
    visibility_query,
)
from service.temporal import data_converter
from tests.observability.conftest import pipeline_factory
from workflows.ticket import TicketWorkflow


async def listed(client: Client, query: str, expected: int) -> list[WorkflowExecution]:
    """Visibility is eventually consistent: list until `expected` executions match."""
    found: list[WorkflowExecution] = []
    for _ in range(100):
        found = [execution async for execution in client.list_workflows(query)]
        if len(found) >= expected:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{query!r} listed {len(found)} of {expected}")


async def test_the_test_server_has_them_and_registering_again_is_a_no_op(local_env: WorkflowEnvironment) -> None:
    assert await missing_attributes(local_env.client, local_env.client.namespace) == []
    assert await ensure_registered(local_env.client, local_env.client.namespace)
    assert await SearchAttributeCheck(local_env.client, local_env.client.namespace).registered()


async def test_tickets_are_filterable_by_status_risk_and_requester(
    local_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    requester = f"req-{tmp_path.name[-12:]}"
    async with pipeline_factory(local_env, tmp_path)() as pipeline:
        done = await pipeline.service.start(pipeline.request("upgrade acme-corp to the pro plan", requester))
        waiting = await pipeline.service.start(pipeline.request("make carol@acme-corp.example an admin", requester))
        assert (await pipeline.service.result(done.short_id)).status is OutcomeStatus.DONE
        await pipeline.wait_for_stage(waiting.short_id, Stage.AWAITING_APPROVAL)
        client = pipeline.client

        (finished,) = await listed(client, visibility_query(status="done", requester=requester), 1)
        (pending,) = await listed(client, visibility_query(status="awaiting_approval", requester=requester), 1)
        assert finished.id == done.workflow_id and pending.id == waiting.workflow_id
        assert finished.typed_search_attributes.get(TICKET_RISK) == "low"
        assert pending.typed_search_attributes.get(TICKET_RISK) == "high"
        assert pending.typed_search_attributes.get(TICKET_STATUS) == "awaiting_approval"
        assert {e.id for e in await listed(client, visibility_query(requester=requester), 2)} == {
            done.workflow_id,
            waiting.workflow_id,
        }
        described = await pipeline.service.handle(done.short_id).describe()
        assert described.typed_search_attributes.get(TICKET_REQUESTER) == requester

        # The history with the upserts replays against the current code.
        history = await pipeline.service.handle(done.short_id).fetch_history()
        waiting_history = await pipeline.service.handle(waiting.short_id).fetch_history()
        await pipeline.service.handle(waiting.short_id).terminate("test over")

    # Upserted only where the ticket rests (each upsert is a visibility write on the server): the
    # auto-approved ticket once, at its outcome; the other once so far, as it waits for approval.
    assert upserted_statuses(history) == ["done"]
    assert upserted_statuses(waiting_history) == ["awaiting_approval"]
    replayer = Replayer(workflows=[TicketWorkflow], data_converter=data_converter(pipeline.settings))
    await replayer.replay_workflow(history)


def upserted_statuses(history: WorkflowHistory) -> list[str]:
    statuses = []
    for event in history.events:
        if event.HasField("upsert_workflow_search_attributes_event_attributes"):
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            statuses.append(fields[TICKET_STATUS.name].data.decode().strip('"'))
    return statuses
