"""The `agent-ticket://policy` resource: the target tables an agent may plan against and the policy it is held to.

Only the tables the policy lists (the same ones the LLM planner is shown), their columns,
types and keys; no rows. The policy is read from the constraint table, so it is the one the
safety check applies now, not the file it was seeded from.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from activities.sql import reflect_target, type_name
from core.ledger import LEDGER_TABLE
from core.models import ColumnInfo, Plan, TableInfo
from core.policy import Policy, PolicyCache

CATALOG_URI = "agent-ticket://policy"

RULES = [
    "Every plan is dry-run and judged by this policy before anything runs; the policy has the last word.",
    "A table not listed cannot be touched; only the listed operation kinds are allowed on each table.",
    "Protected columns are never updated; writes to sensitive columns are high risk.",
    "An update or delete needs a filter; a write touching more than max_rows rows is blocked.",
    "Risk decides the approvals: see `approvals`. People approve; an agent never can.",
    "Values are bound parameters: they are data, never SQL.",
]


class Catalog(BaseModel):
    tables: list[TableInfo]
    policy: Policy
    rules: list[str] = Field(default_factory=lambda: list(RULES))
    plan_schema: dict[str, object] = Field(description="JSON Schema of a plan, as propose_plan takes its operations")


class CatalogReader:
    """Reads the catalog for the resource; the policy through a short-lived cache like the activities'."""

    def __init__(self, app_sessions: async_sessionmaker[AsyncSession], target_engine: AsyncEngine) -> None:
        self._policy = PolicyCache(app_sessions)
        self._target = target_engine

    async def read(self) -> Catalog:
        policy = await self._policy.current()
        metadata = await reflect_target(self._target)
        tables = [
            self._table(table, policy)
            for name, table in sorted(metadata.tables.items())
            if name in policy.tables and name.lower() != LEDGER_TABLE
        ]
        return Catalog(tables=tables, policy=policy, plan_schema=Plan.model_json_schema())

    def _table(self, table: Table, policy: Policy) -> TableInfo:
        """One table's columns, marked private as the safety check and the masking judge them."""
        private = set(policy.private_columns(table.name, table.columns.keys()))
        columns = [
            ColumnInfo(
                name=column.name,
                type=type_name(column, self._target.dialect),
                nullable=bool(column.nullable),
                primary_key=column.primary_key,
                foreign_key=next((key.target_fullname for key in column.foreign_keys), None),
                private=column.name in private,
            )
            for column in table.columns
        ]
        return TableInfo(name=table.name, columns=columns)
