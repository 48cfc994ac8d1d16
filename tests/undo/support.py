"""Shared pieces of the undo tests: a table of every column type, a pipeline on SQLite or PostgreSQL, helpers.

The demo tables hold no NULL, no decimal and no date; `undo_probes` does, so a revert is shown
to put back every kind of value exactly. It is added to a copy of the shipped policy (all four
operation kinds, `revert: true`, no row changed without approval).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from core.bootstrap import Databases, init_databases
from core.ledger import executions
from core.models import DecisionSource, OutcomeStatus, Plan, Stage, TicketOutcome, TicketRequest, TicketStatus
from core.settings import DEFAULT_POLICY_FILE
from tests.pipeline import REQUESTER, Pipeline, running_pipeline
from tests.postgres import fresh_postgres_database
from tests.support import build_settings

BACKENDS = ["sqlite", "postgresql"]

probe_metadata = MetaData()
probes = Table(
    "undo_probes",
    probe_metadata,
    Column("id", Integer, primary_key=True),
    Column("label", String(60), nullable=False, unique=True),
    Column("note", Text, nullable=True),
    Column("amount", Numeric(18, 4), nullable=True),
    Column("ratio", Float, nullable=True),
    Column("flag", Boolean, nullable=True),
    Column("due_on", Date, nullable=True),
    Column("seen_at", DateTime(timezone=True), nullable=True),
    Column("local_at", DateTime(timezone=False), nullable=True),
)

PROBE_POLICY = {
    "description": "Test rows of every column type, for undo.",
    "operations": ["select", "insert", "update", "delete"],
    "revert": True,
    "protected_columns": ["id"],
    "auto_approve_rows": 0,
    "max_rows": 100,
}


def probe_values(label: str, **overrides: Any) -> dict[str, Any]:
    """A probe row holding a value of every type (NULLs where `overrides` say so)."""
    values: dict[str, Any] = {
        "label": label,
        "note": 'déjà vu — 100 % "quoted"',
        "amount": Decimal("98765432109876.5432"),
        "ratio": 0.1 + 0.2,
        "flag": True,
        "due_on": date(2025, 2, 28),
        "seen_at": datetime(2025, 3, 1, 12, 30, 45, 123456, tzinfo=UTC),
        "local_at": datetime(2024, 12, 31, 23, 59, 59, 999999),
    }
    values.update(overrides)
    return values


def unique_label(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


async def add_probe(engine: AsyncEngine, label: str, **overrides: Any) -> int:
    """Insert a probe row directly (not through a ticket); its id."""
    async with engine.begin() as connection:
        result = await connection.execute(insert(probes).values(**probe_values(label, **overrides)))
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def policy_with_probes(directory: Path) -> Path:
    """The shipped policy plus the `undo_probes` table, as a file in `directory`."""
    policy = yaml.safe_load(DEFAULT_POLICY_FILE.read_text())
    policy["tables"][str(probes.name)] = PROBE_POLICY
    path = directory / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    return path


# Alembic's migration context is process-global: two `init_databases` at once in one process collide.
init_lock = asyncio.Lock()


@asynccontextmanager
async def undo_pipeline(backend: str, workdir: Path, client: Client, **overrides: object) -> AsyncIterator[Pipeline]:
    """Real workers on a queue of their own, over SQLite or a fresh PostgreSQL DB with `undo_probes`."""
    async with AsyncExitStack() as stack:
        urls: dict[str, object] = {}
        if backend == "postgresql":
            url = await stack.enter_async_context(fresh_postgres_database("agent_ticket_undo"))
            urls = {"app_database_url": url, "target_database_url": url}
        settings = build_settings(
            workdir / "data",
            f"undo-{backend[:2]}-{uuid.uuid4().hex[:8]}",
            policy_file=policy_with_probes(workdir),
            **urls,
            **overrides,
        )
        databases = Databases.open(settings)
        stack.push_async_callback(databases.close)
        async with init_lock:
            await init_databases(databases, settings)
        async with databases.target_engine.begin() as connection:
            await connection.run_sync(probe_metadata.create_all)
        yield await stack.enter_async_context(running_pipeline(client, settings, databases))


# ---------------------------------------------------------------- rows


async def rows_of(engine: AsyncEngine, table: Table) -> list[dict[str, Any]]:
    """Every row of `table`, full and typed as the driver returns them, in key order."""
    async with engine.connect() as connection:
        result = await connection.execute(select(table).order_by(*table.primary_key.columns))
        return [dict(row) for row in result.mappings()]


async def snapshot(engine: AsyncEngine, tables: Sequence[Table]) -> dict[str, list[dict[str, Any]]]:
    return {table.name: await rows_of(engine, table) for table in tables}


async def ledger_row(engine: AsyncEngine, workflow_id: str) -> dict[str, Any] | None:
    async with engine.connect() as connection:
        row = (await connection.execute(select(executions).where(executions.c.workflow_id == workflow_id))).mappings()
        found = row.first()
    return dict(found) if found is not None else None


async def age_execution(engine: AsyncEngine, workflow_id: str, by: timedelta) -> None:
    """Pretend the change ran `by` earlier (the ledger row's executed_at is what the window is measured from)."""
    async with engine.begin() as connection:
        executed_at = await connection.scalar(
            select(executions.c.executed_at).where(executions.c.workflow_id == workflow_id)
        )
        assert executed_at is not None
        await connection.execute(
            update(executions).where(executions.c.workflow_id == workflow_id).values(executed_at=executed_at - by)
        )


# ---------------------------------------------------------------- tickets


def proposed(pipeline: Pipeline, plan: Plan, requester: str = REQUESTER) -> TicketRequest:
    """A ticket whose plan is given (the MCP door's path): planning returns it as is, the rest is the same."""
    return TicketRequest(
        text=plan.summary, requester=requester, approval=pipeline.settings.approval_settings(), proposed_plan=plan
    )


async def settled(pipeline: Pipeline, ticket: str) -> TicketStatus:
    """The ticket's status once it finished or waits for approval."""
    for _ in range(600):
        status = await pipeline.service.status(ticket)
        if status.outcome is not None or status.stage is Stage.AWAITING_APPROVAL:
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"{ticket} neither finished nor asked for approval")


async def approve_all(pipeline: Pipeline, ticket: str, deciders: Sequence[str] = ("alice", "bob", "carol")) -> None:
    """Approve with as many of `deciders` as the ticket needs, skipping those who may not decide on it."""
    status = await settled(pipeline, ticket)
    if status.outcome is not None:
        return
    approval = status.approval
    assert approval is not None
    allowed = [d for d in deciders if d != status.request.requester and d not in approval.excluded]
    assert len(allowed) >= approval.required_approvals, (allowed, approval)
    for decider in allowed[: approval.required_approvals]:
        record = await pipeline.service.decide(ticket, approval.decision(decider, DecisionSource.DASHBOARD))
        assert record is not None and record.accepted, record


async def finished(pipeline: Pipeline, ticket: str) -> TicketOutcome:
    """Approve the ticket as far as it needs and wait for its outcome; fail at once if it asks again."""
    await approve_all(pipeline, ticket)
    status = await pipeline.service.status(ticket)
    while status.outcome is None:
        assert not status.rejudged_because, f"{ticket} was judged again: {status.rejudged_because}"
        await asyncio.sleep(0.05)
        status = await pipeline.service.status(ticket)
    return status.outcome


async def run_done(pipeline: Pipeline, request: TicketRequest) -> tuple[str, TicketOutcome]:
    """Start a ticket, approve it as far as it needs, and check it executed: its short id and outcome."""
    started = await pipeline.service.start(request)
    outcome = await finished(pipeline, started.short_id)
    assert outcome.status is OutcomeStatus.DONE, outcome.reason
    return started.short_id, outcome


async def revert_done(pipeline: Pipeline, ticket: str, requester: str = REQUESTER) -> tuple[str, TicketOutcome]:
    """Revert `ticket`, approve the revert as far as it needs, and check it executed."""
    started = await pipeline.revert(ticket, requester)
    outcome = await finished(pipeline, started.short_id)
    assert outcome.status is OutcomeStatus.DONE, outcome.reason
    return started.short_id, outcome
