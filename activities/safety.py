"""The `validate_plan` activity: deterministic safety rules plus a read-only look at the target.

The rules live in `activities/safety_rules.py`; this module supplies what they need from the
databases: the policy from the constraint table, the target's shape, and for each operation
the number of rows it touches and a before → after preview, all inside a transaction that is
rolled back (read-only on PostgreSQL).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import MetaData, Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from temporalio import activity

from activities import safety_rules as rules
from activities.sql import (
    AnyOperation,
    SqlCompileError,
    assigned_values,
    compile_operation,
    count_query,
    describe_db_error,
    is_transient_db_error,
    preview_query,
    reflect_target,
    row_to_dict,
    set_read_only,
    table_for,
    to_scalar,
)
from core.ledger import LEDGER_TABLE
from core.models import (
    Finding,
    InsertOperation,
    OperationImpact,
    Plan,
    Risk,
    RowChange,
    SafetyReport,
    SelectOperation,
    UpdateOperation,
    ValidatePlanInput,
    plan_hash,
)
from core.names import ACTIVITY_VALIDATE_PLAN, ticket_label
from core.policy import Policy, PolicyCache

logger = logging.getLogger(__name__)


def target_shape(metadata: MetaData) -> dict[str, rules.TableShape]:
    """Columns and insert-required columns of every reflected table except the ledger."""
    return {name: _table_shape(table) for name, table in metadata.tables.items() if name != LEDGER_TABLE}


def _table_shape(table: Table) -> rules.TableShape:
    generated = table.autoincrement_column
    required = {
        column.name
        for column in table.columns
        if not column.nullable
        and column.default is None
        and column.server_default is None
        and column.computed is None
        and column.identity is None
        and column is not generated
    }
    return rules.TableShape(
        columns=frozenset(table.columns.keys()),
        required=frozenset(required),
        primary_key=frozenset(column.name for column in table.primary_key.columns),
    )


@dataclass
class Measurement:
    """What the target says about a plan: impacts, and findings from counting them."""

    impacts: list[OperationImpact] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


class SafetyActivities:
    """Validates plans; receives the app DB (for the policy) and the target engine."""

    def __init__(self, app_sessions: async_sessionmaker[AsyncSession], target_engine: AsyncEngine) -> None:
        self._policy = PolicyCache(app_sessions)
        self._target = target_engine

    @activity.defn(name=ACTIVITY_VALIDATE_PLAN)
    async def validate_plan(self, input: ValidatePlanInput) -> SafetyReport:
        label = ticket_label(input.ticket_id)
        policy = await self._policy.current()
        metadata = await reflect_target(self._target)
        report = await self.assess(input.plan, policy, metadata, label)
        logger.info(
            "%s: plan %s is %s risk (%d findings, %d rows), %d approvals needed",
            label,
            report.plan_hash,
            report.risk.value,
            len(report.findings),
            report.rows_affected,
            report.required_approvals,
        )
        return report

    async def assess(self, plan: Plan, policy: Policy, metadata: MetaData, label: str) -> SafetyReport:
        """Static rules first; then count and preview only the operations that can be compiled.

        A plan that is not blocked has one impact per operation, in plan order, so the workflow
        can pass `[impact.rows_affected ...]` as the approved row counts of the execution.
        """
        findings = rules.static_findings(plan, policy, target_shape(metadata))
        measurement = await self._measure(plan, policy, metadata, findings, label)
        findings.extend(measurement.findings)
        findings.sort(key=lambda item: -1 if item.operation_index is None else item.operation_index)
        risk = rules.overall_risk(findings)
        return SafetyReport(
            risk=risk,
            findings=findings,
            impacts=measurement.impacts,
            required_approvals=policy.approvals_for(risk),
            plan_hash=plan_hash(plan),
        )

    async def _measure(
        self, plan: Plan, policy: Policy, metadata: MetaData, findings: list[Finding], label: str
    ) -> Measurement:
        result = Measurement()
        indexed = [(i, op) for i, op in enumerate(plan.operations) if rules.measurable(i, findings)]
        if not indexed:
            return result
        async with self._target.connect() as connection:
            transaction = await connection.begin()
            try:
                await set_read_only(connection)
                for index, operation in indexed:
                    if not await self._measure_one(connection, index, operation, policy, metadata, result, label):
                        break
            finally:
                await transaction.rollback()
        return result

    async def _measure_one(
        self,
        connection: AsyncConnection,
        index: int,
        operation: AnyOperation,
        policy: Policy,
        metadata: MetaData,
        result: Measurement,
        label: str,
    ) -> bool:
        """Count and preview one operation; False when the target refused and measuring must stop."""
        try:
            compile_operation(metadata, operation)
            impact = await _impact(connection, index, operation, metadata)
        except SqlCompileError as error:
            result.findings.append(
                Finding(rule=rules.RULE_INVALID_VALUE, risk=Risk.BLOCKED, message=str(error), operation_index=index)
            )
            return True
        except Exception as error:
            if is_transient_db_error(error):
                raise
            logger.warning("%s: counting operation %d failed: %s", label, index, describe_db_error(error))
            message = f"The target refused to count rows for this operation: {describe_db_error(error)}"
            result.findings.append(
                Finding(rule=rules.RULE_NOT_MEASURED, risk=Risk.BLOCKED, message=message, operation_index=index)
            )
            return False
        result.impacts.append(impact)
        result.findings.extend(rules.check_row_count(index, operation, impact.rows_affected, policy))
        return True


async def _impact(
    connection: AsyncConnection, index: int, operation: AnyOperation, metadata: MetaData
) -> OperationImpact:
    """Rows touched and a preview of up to five of them."""
    table = table_for(metadata, operation.table)
    impact = OperationImpact(operation_index=index, kind=operation.kind, table=operation.table, rows_affected=1)
    if isinstance(operation, InsertOperation):
        after = {name: to_scalar(value) for name, value in assigned_values(table, operation).items()}
        impact.preview = [RowChange(after=after)]
        return impact
    query = count_query(metadata, operation)
    if query is None:
        return impact
    counted = int(await connection.scalar(query) or 0)
    if isinstance(operation, SelectOperation):
        impact.rows_affected = min(counted, operation.limit)
        return impact
    impact.rows_affected = counted
    preview = preview_query(metadata, operation)
    if preview is not None:
        rows = [row_to_dict(row) for row in (await connection.execute(preview)).mappings()]
        impact.preview = [_change(row, operation, table) for row in rows]
    return impact


def _change(before: dict[str, Any], operation: AnyOperation, table: Table) -> RowChange:
    if not isinstance(operation, UpdateOperation):
        return RowChange(before=before)
    after = dict(before)
    after.update({name: to_scalar(value) for name, value in assigned_values(table, operation).items()})
    return RowChange(before=before, after=after)
