"""What an outside red team broke in undo, each kept as a case (docs/undo.md)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import JSON, Column, Integer, MetaData, Table, text, update
from temporalio.testing import WorkflowEnvironment

from activities.before_images import Change, RowImage
from activities.revert import unrevertable
from core.approval import REVERTED_REQUESTER
from core.demo import customers, demo_rows
from core.models import (
    ApprovalSettings,
    Assignment,
    DecisionSource,
    Filter,
    FilterOperator,
    OutcomeStatus,
    Plan,
    Stage,
    UpdateOperation,
)
from rendering.words import window_in_words
from tests.pipeline import Pipeline, running_pipeline
from tests.support import build_settings

SECRET_EMAIL = "ceo.home.secret@localhost"  # breaks today's billing_email pattern (no dot after the @)


@pytest.fixture
async def pipeline(tmp_path: Path, local_env: WorkflowEnvironment) -> AsyncIterator[Pipeline]:
    # The workers' APPROVERS hold today's approvers too: a ticket's list can only narrow what they hold.
    approvers = ["alice", "bob", "carol", "erin", "frank"]
    settings = build_settings(tmp_path / "data", f"undo-rt-{uuid.uuid4().hex[:8]}", approvers=approvers)
    async with running_pipeline(local_env.client, settings) as running:
        yield running


def billing_change(email: str) -> Plan:
    return Plan(
        summary="new billing address",
        operations=[
            UpdateOperation(
                table="customers",
                values=[Assignment(column="billing_email", value=email)],
                filters=[Filter(column="id", op=FilterOperator.EQ, value=2)],
            )
        ],
    )


async def executed(pipeline: Pipeline, plan: Plan, requester: str, *approvers: str) -> str:
    request = pipeline.request(plan.summary, requester=requester).model_copy(update={"proposed_plan": plan})
    ticket = await pipeline.service.start(request)
    await pipeline.approve(ticket.short_id, *approvers)
    outcome = await pipeline.service.result(ticket.short_id)
    assert outcome.status is OutcomeStatus.DONE, outcome.reason
    return ticket.short_id


async def old_private_value(pipeline: Pipeline, value: str) -> None:
    async with pipeline.databases.target_sessions() as session:
        await session.execute(update(customers).where(customers.c.id == 2).values(billing_email=value))
        await session.commit()


async def test_an_old_private_value_that_breaks_a_rule_is_never_quoted(pipeline: Pipeline) -> None:
    await old_private_value(pipeline, SECRET_EMAIL)
    original = await executed(pipeline, billing_change("billing@globex.example"), "dave", "alice", "bob")

    revert = await pipeline.revert(original, "dave")
    outcome = await pipeline.service.result(revert.short_id)

    assert outcome.status is OutcomeStatus.BLOCKED
    assert "billing_email" in outcome.reason and SECRET_EMAIL not in outcome.reason
    history = await pipeline.client.get_workflow_handle(revert.workflow_id).fetch_history()
    assert SECRET_EMAIL not in history.to_json()
    trail = await pipeline.service.audit_trail(revert.short_id)
    assert all(SECRET_EMAIL not in (event.summary or "") for event in trail)


async def test_an_old_value_too_long_for_a_plan_refuses_at_once_without_quoting_it(pipeline: Pipeline) -> None:
    secret = "sk_live_TOPSECRET_" + "Z" * 10_050 + "_END@example.com"
    await old_private_value(pipeline, secret)
    original = await executed(pipeline, billing_change("billing@globex.example"), "dave", "alice", "bob")

    revert = await pipeline.revert(original, "dave")
    outcome = await pipeline.service.result(revert.short_id)  # not 30 minutes of retries

    assert outcome.status is OutcomeStatus.BLOCKED and "cannot be reverted" in outcome.reason
    history = (await pipeline.client.get_workflow_handle(revert.workflow_id).fetch_history()).to_json()
    assert "TOPSECRET" not in history and "ZZZZZZZZ" not in history


async def test_reverting_a_revert_excludes_every_requester_up_the_chain(pipeline: Pipeline) -> None:
    """Reverting a revert puts alice's change back: alice may not approve that either."""
    original = await executed(pipeline, billing_change("ap@globex.example"), "alice", "bob", "carol")
    revert = await pipeline.revert(original, "dave")
    await pipeline.approve(revert.short_id, "bob", "carol")
    assert (await pipeline.service.result(revert.short_id)).status is OutcomeStatus.DONE

    again = await pipeline.revert(revert.short_id, "dave")
    status = await pipeline.wait_for_stage(again.short_id, Stage.AWAITING_APPROVAL)
    assert status.approval is not None and status.approval.required_approvals == 2
    assert status.approval.excluded == ["alice"]
    verdict = await pipeline.service.decide(again.short_id, status.approval.decision("alice", DecisionSource.CLI))
    assert verdict is not None and (verdict.accepted, verdict.reason) == (False, REVERTED_REQUESTER)


async def test_a_revert_is_approved_by_todays_approvers(pipeline: Pipeline) -> None:
    original = await executed(pipeline, billing_change("ap@globex.example"), "dave", "alice", "bob")
    today = ApprovalSettings(approvers=["bob", "erin", "frank"])
    revert = await pipeline.service.revert(original, "dave", approval=today)
    status = await pipeline.wait_for_stage(revert.short_id, Stage.AWAITING_APPROVAL)
    assert status.approval is not None and status.approval.approvers == ["bob", "erin", "frank"]


def test_tables_whose_values_a_plan_cannot_carry_are_not_reverted() -> None:
    metadata = MetaData()
    Table("settings", metadata, Column("id", Integer, primary_key=True), Column("config", JSON))
    image = RowImage(0, 0, "settings", "update", {"id": 1}, {"id": 1, "config": "{}"}, {"id": 1, "config": "[]"})
    change = Change("ticket-T-1", "h", "dave", [], datetime.now(UTC), None, None, [image])
    problem = unrevertable(change, metadata)
    assert problem is not None and "config" in problem and "JSON" in problem


@pytest.mark.parametrize(
    ("window", "words"),
    [
        (timedelta(days=7), "7 days"),
        (timedelta(days=1), "1 day"),
        (timedelta(hours=12), "12 h"),
        (timedelta(minutes=5), "5 min"),
    ],
)
def test_the_window_in_words(window: timedelta, words: str) -> None:
    assert window_in_words(window) == words


async def test_a_table_altered_since_the_change_is_not_reverted(pipeline: Pipeline) -> None:
    """Red team: a column added while the worker ran was missing from the images, and the revert of a
    delete put the row back without it. A table whose columns changed since is refused."""
    unpaid = next(row for row in demo_rows()["invoices"] if row["status"] != "paid")
    original = await pipeline.service.start(pipeline.request(f"mark invoice {unpaid['id']} as paid"))
    await pipeline.approve(original.short_id, "alice")
    assert (await pipeline.service.result(original.short_id)).status is OutcomeStatus.DONE
    async with pipeline.databases.target_engine.begin() as connection:
        await connection.execute(text("ALTER TABLE invoices ADD COLUMN memo VARCHAR(40)"))

    revert = await pipeline.revert(original.short_id, "bob")
    outcome = await pipeline.service.result(revert.short_id)

    assert outcome.status is OutcomeStatus.BLOCKED and "columns changed since" in outcome.reason, outcome.reason
