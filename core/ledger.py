"""The execution ledger: one row per executed plan, written in the plan's own transaction.

It lives in the target DB so that the record and the writes commit or roll back together:
finding a row for `(workflow id, plan hash)` proves the writes happened exactly once.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, MetaData, String, Table
from sqlalchemy.ext.asyncio import AsyncEngine

LEDGER_TABLE = "agent_ticket_executions"

ledger_metadata = MetaData()

executions = Table(
    LEDGER_TABLE,
    ledger_metadata,
    Column("workflow_id", String(80), primary_key=True),
    Column("plan_hash", String(64), primary_key=True),
    Column("result", JSON, nullable=False),
    Column("executed_at", DateTime(timezone=True), nullable=False),
)


async def create_ledger(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(ledger_metadata.create_all)
