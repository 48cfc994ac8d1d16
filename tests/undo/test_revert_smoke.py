"""Smoke: execute a ticket, revert it, and the row is back as it was (the full suite is in this package)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from core.demo import customers, demo_rows, invoices
from core.masking import MASK
from core.models import Assignment, Filter, FilterOperator, OutcomeStatus, Plan, UpdateOperation
from service.tickets import CannotRevert
from tests.pipeline import running_pipeline
from tests.support import build_settings


async def test_update_is_reverted(tmp_path: Path, local_env: WorkflowEnvironment) -> None:
    settings = build_settings(tmp_path / "data", f"undo-{uuid.uuid4().hex[:8]}")
    unpaid = next(row for row in demo_rows()["invoices"] if row["status"] != "paid")
    async with running_pipeline(local_env.client, settings) as pipeline:
        async with pipeline.databases.target_sessions() as session:
            before = (await session.execute(select(invoices).where(invoices.c.id == unpaid["id"]))).mappings().one()
        ticket = await pipeline.service.start(pipeline.request(f"mark invoice {unpaid['id']} as paid"))
        await pipeline.approve(ticket.short_id, "alice")
        assert (await pipeline.service.result(ticket.short_id)).status is OutcomeStatus.DONE
        revert = await pipeline.revert(ticket.short_id, "bob")
        await pipeline.approve(revert.short_id, "carol")
        outcome = await pipeline.service.result(revert.short_id)
        assert outcome.status is OutcomeStatus.DONE, outcome.reason
        async with pipeline.databases.target_sessions() as session:
            after = (await session.execute(select(invoices).where(invoices.c.id == unpaid["id"]))).mappings().one()
        assert dict(after) == dict(before)
        with pytest.raises(CannotRevert, match="already reverted by"):
            await pipeline.revert(ticket.short_id, "bob")


async def test_private_values_come_back_without_entering_history(
    tmp_path: Path, local_env: WorkflowEnvironment
) -> None:
    """The old billing email is put back from the images; the revert's plan, status and history only say MASK."""
    settings = build_settings(tmp_path / "data", f"undo-{uuid.uuid4().hex[:8]}")
    plan = Plan(
        summary="new billing address",
        operations=[
            UpdateOperation(
                table="customers",
                values=[Assignment(column="billing_email", value="ap@acme-corp.example")],
                filters=[Filter(column="id", op=FilterOperator.EQ, value=1)],
            )
        ],
    )
    async with running_pipeline(local_env.client, settings) as pipeline:
        async with pipeline.databases.target_sessions() as session:
            before = (await session.execute(select(customers).where(customers.c.id == 1))).mappings().one()
        old_email = str(before["billing_email"])
        request = pipeline.request("change acme's billing email").model_copy(update={"proposed_plan": plan})
        ticket = await pipeline.service.start(request)
        await pipeline.approve(ticket.short_id, "alice", "bob")
        assert (await pipeline.service.result(ticket.short_id)).status is OutcomeStatus.DONE
        revert = await pipeline.revert(ticket.short_id, "carol")
        await pipeline.approve(revert.short_id, "alice", "bob")
        outcome = await pipeline.service.result(revert.short_id)
        assert outcome.status is OutcomeStatus.DONE, outcome.reason

        async with pipeline.databases.target_sessions() as session:
            after = (await session.execute(select(customers).where(customers.c.id == 1))).mappings().one()
        assert dict(after) == dict(before)
        status = await pipeline.service.status(revert.short_id)
        assert status.plan is not None
        (operation,) = status.plan.operations
        assert isinstance(operation, UpdateOperation) and operation.values[0].value == MASK
        history = await pipeline.client.get_workflow_handle(revert.workflow_id).fetch_history()
        assert old_email not in history.to_json()
