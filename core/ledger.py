"""The ledgers in the target DB, written in the plan's own transaction: executions, budget, before-images.

They live in the target DB so that the records and the writes commit or roll back together:
finding a row for `(workflow id, plan hash)` proves the writes happened exactly once, a budget
charge exists exactly when the unapproved writes it counts were committed, and the before-images
of a change (what undo puts back) exist exactly when the change does. Private values in those
images stay where the data lives, never in Temporal's history. Plans may never read or change
any of these tables.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Index, Integer, MetaData, String, Table, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

LEDGER_TABLE = "agent_ticket_executions"
BUDGET_TABLE = "agent_ticket_budget"
SPENT_TABLE = "agent_ticket_spent_approvals"
LEDGER_TABLES = frozenset({LEDGER_TABLE, BUDGET_TABLE, SPENT_TABLE})

ledger_metadata = MetaData()

executions = Table(
    LEDGER_TABLE,
    ledger_metadata,
    Column("workflow_id", String(80), primary_key=True),
    Column("plan_hash", String(64), primary_key=True),
    Column("result", JSON, nullable=False),
    Column("executed_at", DateTime(timezone=True), nullable=False),
    # For undo (activities/before_images.py): who asked and approved, every changed row's before-
    # and after-image (None once the revert window has passed), and the links between a change
    # and its revert. In this row, so keeping them costs the plan no extra statement.
    Column("requester", String(200), nullable=True),
    Column("approved_by", JSON, nullable=True),
    Column("images", JSON, nullable=True),
    Column("reverts", String(80), nullable=True),
    Column("reverted_by", String(80), nullable=True),
    Index("ix_agent_ticket_executions_executed_at", "executed_at"),
    # A ticket runs one plan: two plans sent under one workflow id at once both found the ledger empty
    # and both ran (red team 22); the second insert now fails and rolls its writes back.
    Index("ux_agent_ticket_executions_workflow_id", "workflow_id", unique=True),
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

# Approval requests whose approvals went with a run the executor refused for good (the rows changed
# since, a statement refused): those approvals run nothing, ever. A ticket that closed without running
# its plan has no execution row, and a workflow of someone else's started under its id could run the
# plan later on them, against a rejection given since (red team 60). Written by the executor itself.
# Each run also claims its request here (a plan that needed no approval, its run key): a spend waits
# for an open run's claim, so "it did not run" is never said of a run that commits after.
spent_approvals = Table(
    SPENT_TABLE,
    ledger_metadata,
    Column("workflow_id", String(80), primary_key=True),
    Column("request_id", String(100), primary_key=True),
    Column("reason", String(500), nullable=False),
    Column("spent_at", DateTime(timezone=True), nullable=False),
)


def is_ledger_table(name: str) -> bool:
    """Whether `name` (in any case) is one of the ledgers, which no plan may touch."""
    return name.lower() in LEDGER_TABLES


async def create_ledger(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(ledger_metadata.create_all)
        await connection.run_sync(_add_missing_columns)


def _add_missing_columns(connection: Connection) -> None:
    """A ledger made by an earlier version gains the (nullable) columns and indexes added since."""
    inspector = inspect(connection)
    quote = connection.dialect.identifier_preparer.quote
    for table in ledger_metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present and column.nullable:
                kind = column.type.compile(dialect=connection.dialect)
                connection.execute(text(f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(column.name)} {kind}"))
        for index in table.indexes:
            index.create(connection, checkfirst=True)
