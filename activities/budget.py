"""The per-requester budget of rows changed without approval, over a rolling window.

Kept in the target DB beside the execution ledger (`core/ledger.py`): the charge is written in
the execution's own transaction, so it exists exactly when the writes it counts committed,
however often the execution is retried. Validation reads it; execution checks it again under
a per-requester lock, because another ticket of the same requester may have run meanwhile.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from core.ledger import budget_charges


async def rows_charged(connection: AsyncConnection, requester: str, now: datetime, hours: int) -> int:
    """Rows `requester` changed without approval in the `hours` before `now`."""
    query = select(func.coalesce(func.sum(budget_charges.c.rows), 0)).where(
        budget_charges.c.requester == requester, budget_charges.c.charged_at > now - timedelta(hours=hours)
    )
    return int(await connection.scalar(query) or 0)


async def lock_budget(connection: AsyncConnection, requester: str) -> None:
    """Serialise budget checks of one requester until the transaction ends (PostgreSQL; SQLite has one writer)."""
    if connection.dialect.name == "postgresql":
        await connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"budget:{requester}"})


async def charge(
    connection: AsyncConnection, requester: str, workflow_id: str, plan_hash: str, rows: int, now: datetime
) -> None:
    await connection.execute(
        insert(budget_charges).values(
            requester=requester, workflow_id=workflow_id, plan_hash=plan_hash, rows=rows, charged_at=now
        )
    )
