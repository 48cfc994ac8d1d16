"""The execution ledger and the budget ledger, in the target DB, written in the plan's own transaction.

They live in the target DB so that the records and the writes commit or roll back together:
finding a row for `(workflow id, plan hash)` proves the writes happened exactly once, and a
budget charge exists exactly when the unapproved writes it counts were committed. Plans may
never read or change either table.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Index, Integer, MetaData, String, Table
from sqlalchemy.ext.asyncio import AsyncEngine

LEDGER_TABLE = "agent_ticket_executions"
BUDGET_TABLE = "agent_ticket_budget"
LEDGER_TABLES = frozenset({LEDGER_TABLE, BUDGET_TABLE})

ledger_metadata = MetaData()

executions = Table(
    LEDGER_TABLE,
    ledger_metadata,
    Column("workflow_id", String(80), primary_key=True),
    Column("plan_hash", String(64), primary_key=True),
    Column("result", JSON, nullable=False),
    Column("executed_at", DateTime(timezone=True), nullable=False),
)

# Rows each requester changed without approval: the per-requester budget over a rolling window.
budget_charges = Table(
    BUDGET_TABLE,
    ledger_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("requester", String(200), nullable=False),
    Column("workflow_id", String(80), nullable=False),
    Column("plan_hash", String(64), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("charged_at", DateTime(timezone=True), nullable=False),
    Index("ix_agent_ticket_budget_requester_charged_at", "requester", "charged_at"),
)


def is_ledger_table(name: str) -> bool:
    """Whether `name` (in any case) is one of the ledgers, which no plan may touch."""
    return name.lower() in LEDGER_TABLES


async def create_ledger(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(ledger_metadata.create_all)
