"""The dry run: the whole plan, in order, in a transaction that is always rolled back.

Each operation sees what the ones before it did, so the preview shows the rows that would
really change, in the order they would change, with their values before and after. What the
database refuses here (a foreign key, a unique key, a NOT NULL, a type) blocks the plan with
the database's reason in words. Statements run under the policy's `dry_run_timeout_ms`.

A plan that the static rules already block is only counted, read-only, and never written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from activities import safety_rules as rules
from activities.plan_runner import PlanRunner, StepOutcome, sort_keys
from activities.result_size import shown
from activities.sql import (
    AnyOperation,
    SqlCompileError,
    assigned_values,
    count_query,
    describe_db_error,
    is_transient_db_error,
    judged_shapes_digest,
    plan_tables,
    set_read_only,
    shapes_digest,
    to_scalar,
)
from activities.statement_timeout import is_timeout, statement_timeout
from core.masking import MASK
from core.models import (
    DeleteOperation,
    Finding,
    InsertOperation,
    OperationImpact,
    Plan,
    Risk,
    RowChange,
    Scalar,
    SelectOperation,
    UpdateOperation,
)
from core.policy import Policy

logger = logging.getLogger(__name__)

DIFF_ROWS = 10  # rows per operation whose values before and after approvers are shown
# Rows one operation may touch and still be approved row by row: their keys travel in the report and the
# approval, which must fit in workflow history (a select reads at most 500).
MAX_KEYED_ROWS = 500

# How the databases word a refused constraint, and what that means for the plan.
_CONSTRAINT_MEANINGS = (
    ("foreign key", "it refers to a row that does not exist, or removes a row that others still refer to"),
    ("unique", "a row with that value already exists"),
    ("not null", "it leaves a required value empty"),
    ("check", "a value breaks a rule of the table"),
)


@dataclass
class DryRun:
    """Impacts in plan order, findings from the database, and the tenants whose rows the plan writes."""

    impacts: list[OperationImpact] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    tenants: set[str] = field(default_factory=set)
    schema_digest: str = ""  # the plan's tables' definitions it ran on (`shapes_digest`)


class SchemaChangedWhileJudged(RuntimeError):
    """A migration landed while the plan was judged (its statements waited for it): judged again on a retry."""


async def dry_run(
    engine: AsyncEngine, metadata: MetaData, plan: Plan, policy: Policy, static: list[Finding], *, revert: bool = False
) -> DryRun:
    """Run (or, for a plan already blocked, count) every operation whose table and columns exist."""
    result = DryRun()
    runnable = [(index, op) for index, op in enumerate(plan.operations) if rules.measurable(index, static)]
    if not runnable:
        return result
    count_only = rules.overall_risk(static) is Risk.BLOCKED
    async with engine.connect() as connection:
        transaction = await connection.begin()
        try:
            if count_only:
                await set_read_only(connection)
            elif connection.dialect.name == "sqlite":
                # The write lock first, then the clock: under a burst the wait for another dry run's lock
                # counted as this plan's run time, and a plan was blocked as too expensive (item 39).
                await connection.exec_driver_sql("BEGIN IMMEDIATE")
            async with statement_timeout(connection, policy.limits.dry_run_timeout_ms):
                runner = PlanRunner(connection, metadata, every_column=revert)
                for index, operation in runnable:
                    try:
                        if count_only:
                            result.impacts.append(await _counted(connection, metadata, index, operation))
                        else:
                            outcome = await runner.run(index, operation)
                            result.impacts.append(_impact(outcome, policy, metadata))
                            result.tenants |= _tenants(outcome, policy)
                            result.findings.extend(_too_many_to_key(index, operation, outcome))
                    except Exception as error:
                        result.findings.append(_refusal(index, operation, error, policy))
                        break
                else:  # every operation ran (a refused one blocks the plan, and aborts a PostgreSQL transaction)
                    await _check_schema(connection, metadata, plan, result)
        finally:
            await transaction.rollback()
    return result


async def _check_schema(connection: AsyncConnection, metadata: MetaData, plan: Plan, result: DryRun) -> None:
    """The plan ran on the tables as reflected: read after its statements, which waited for any migration."""
    tables = plan_tables(plan)
    result.schema_digest = await shapes_digest(connection, tables)
    if result.schema_digest != judged_shapes_digest(metadata, tables):
        raise SchemaChangedWhileJudged("the plan's tables changed while it was judged (a migration); judged again")


async def _counted(
    connection: AsyncConnection, metadata: MetaData, index: int, operation: AnyOperation
) -> OperationImpact:
    impact = OperationImpact(operation_index=index, kind=operation.kind, table=operation.table, rows_affected=1)
    query = count_query(metadata, operation)
    if query is not None:
        counted = int(await connection.scalar(query) or 0)
        impact.rows_affected = min(counted, operation.limit) if isinstance(operation, SelectOperation) else counted
    return impact


def _too_many_to_key(index: int, operation: AnyOperation, outcome: StepOutcome) -> list[Finding]:
    """A block for an operation touching more rows than an approval can name (its keys are then dropped)."""
    if len(outcome.keys) <= MAX_KEYED_ROWS:
        return []
    where = f"operation {index + 1} ({operation.kind} on {operation.table})"
    message = f"{where} touches {len(outcome.keys)} rows; more than {MAX_KEYED_ROWS} cannot be approved row by row."
    return [Finding(rule=rules.RULE_MAX_ROWS, risk=Risk.BLOCKED, message=message, operation_index=index)]


def _refusal(index: int, operation: AnyOperation, error: Exception, policy: Policy) -> Finding:
    """The finding for an operation the dry run could not run; errors a retry can fix are raised."""
    where = f"operation {index + 1} ({operation.kind} on {operation.table})"
    if isinstance(error, SqlCompileError):
        return Finding(rule=rules.RULE_INVALID_VALUE, risk=Risk.BLOCKED, message=str(error), operation_index=index)
    if is_timeout(error):
        limit = policy.limits.dry_run_timeout_ms
        message = f"The dry run of {where} took longer than {limit} ms; the plan is too expensive to run."
        return Finding(rule=rules.RULE_DRY_RUN_TIMEOUT, risk=Risk.BLOCKED, message=message, operation_index=index)
    if is_transient_db_error(error):
        raise error
    reason = describe_db_error(error)
    meaning = next((words for needle, words in _CONSTRAINT_MEANINGS if needle in reason.lower()), "")
    message = f"The database refused {where}: {reason}" + (f" ({meaning})." if meaning else ".")
    logger.info("dry run refused: %s", message)
    return Finding(rule=rules.RULE_DATABASE_REFUSED, risk=Risk.BLOCKED, message=message, operation_index=index)


def _impact(outcome: StepOutcome, policy: Policy, metadata: MetaData) -> OperationImpact:
    operation = outcome.operation
    table = metadata.tables[operation.table]
    private = set(policy.private_columns(table.name, table.columns.keys()))
    impact = OperationImpact(
        operation_index=outcome.index,
        kind=operation.kind,
        table=operation.table,
        rows_affected=outcome.rows_affected,
        row_keys=sort_keys(outcome.keys),
        rows_version=outcome.version,
    )
    if isinstance(operation, InsertOperation):
        after = shown({name: to_scalar(value) for name, value in assigned_values(table, operation).items()})
        impact.preview = [RowChange(key=outcome.keys[0], after=after)]
    elif isinstance(operation, UpdateOperation):
        assigned = [item.column for item in operation.values]
        filtered = [item.column for item in operation.filters]  # what made the row match, to recognise it by
        columns = [column.name for column in table.primary_key.columns] + filtered + assigned
        impact.preview = [
            RowChange(
                key=key,
                before=_masked(_pick(before, columns), private),
                after=_masked(_pick(outcome.after.get(key, before), columns), private - set(assigned)),
            )
            for key, before in list(outcome.before.items())[:DIFF_ROWS]
        ]
    elif isinstance(operation, DeleteOperation):
        impact.preview = [
            RowChange(key=key, before=_masked(before, private))
            for key, before in list(outcome.before.items())[:DIFF_ROWS]
        ]
    return impact


def _pick(row: dict[str, Scalar], names: list[str]) -> dict[str, Scalar]:
    return {name: row.get(name) for name in dict.fromkeys(names)}


def _masked(row: dict[str, Scalar], private: set[str]) -> dict[str, Scalar]:
    """The row as approvers see it: private values masked, long ones cut."""
    return shown({name: MASK if name in private and value is not None else value for name, value in row.items()})


def _tenants(outcome: StepOutcome, policy: Policy) -> set[str]:
    """The tenant of every row a write touched (from its values after, or as deleted)."""
    operation = outcome.operation
    table = policy.tables.get(operation.table)
    if isinstance(operation, SelectOperation) or table is None or table.tenant_key is None:
        return set()
    key: str = table.tenant_key
    values: list[Any] = [row.get(key) for row in (*outcome.after.values(), *outcome.before.values())]
    return {str(value) for value in values if value is not None}
