"""Smoke: execute a ticket, revert it, and the row is back as it was (the full suite is in this package)."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from core.demo import demo_rows, invoices
from core.models import OutcomeStatus
from tests.pipeline import pipeline_settings, running_pipeline


async def test_update_is_reverted(tmp_path: Path, local_env: WorkflowEnvironment) -> None:
    settings = pipeline_settings(tmp_path / "data", f"undo-{uuid.uuid4().hex[:8]}")
    unpaid = next(row for row in demo_rows()["invoices"] if row["status"] != "paid")
    async with running_pipeline(local_env.client, settings) as pipeline:
        async with pipeline.databases.target_sessions() as session:
            before = (await session.execute(select(invoices).where(invoices.c.id == unpaid["id"]))).mappings().one()
        ticket = await pipeline.service.start(pipeline.request(f"mark invoice {unpaid['id']} as paid"))
        await pipeline.approve(ticket.short_id, "alice")
        assert (await pipeline.service.result(ticket.short_id)).status is OutcomeStatus.DONE
        revert = await pipeline.service.revert(ticket.short_id, "bob")
        await pipeline.approve(revert.short_id, "carol")
        outcome = await pipeline.service.result(revert.short_id)
        assert outcome.status is OutcomeStatus.DONE, outcome.reason
        async with pipeline.databases.target_sessions() as session:
            after = (await session.execute(select(invoices).where(invoices.c.id == unpaid["id"]))).mappings().one()
        assert dict(after) == dict(before)
        again = await pipeline.service.revert(ticket.short_id, "bob")
        refused = await pipeline.service.result(again.short_id)
        assert refused.status is OutcomeStatus.BLOCKED and "already reverted by" in refused.reason, refused
