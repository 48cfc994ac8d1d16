"""The `execute_plan` activity: run an approved plan once, in one transaction, with a ledger row.

The ledger row `(workflow id, plan hash)` commits in the same transaction as the writes, so a
retry (or a second attempt running at the same time) finds it and returns the stored result
instead of writing again. Any failure rolls the whole plan back. The audit events the ticket
queued before this step (`ExecutePlanInput.events`) are written to the app DB before the plan runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import MetaData, insert, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.audit import AuditWriter
from activities.heartbeat import heartbeating
from activities.sql import (
    AnyOperation,
    SqlCompileError,
    Statement,
    compile_operation,
    describe_db_error,
    is_transient_db_error,
    reflect_target,
    row_to_dict,
    to_scalar,
)
from core.ledger import executions
from core.models import (
    DeleteOperation,
    ExecutePlanInput,
    ExecutionResult,
    InsertOperation,
    OperationResult,
    SelectOperation,
    UpdateOperation,
    plan_hash,
)
from core.names import ACTIVITY_EXECUTE_PLAN, ticket_label

logger = logging.getLogger(__name__)

MAX_RESULT_ROWS = 100  # rows of a select kept in the result, which lands in workflow history

ERROR_PLAN_HASH = "PlanHashMismatch"
ERROR_INVALID_OPERATION = "InvalidOperation"
ERROR_ROW_LIMIT = "RowLimitExceeded"
ERROR_OPERATION_FAILED = "OperationFailed"
ERROR_TARGET_UNAVAILABLE = "TargetUnavailable"


class _RowLimitExceeded(Exception):
    """An update or delete touched more rows than were approved."""


@dataclass(frozen=True)
class _Step:
    index: int
    operation: AnyOperation
    statement: Statement
    approved_rows: int | None


class ExecutionActivities:
    """Runs plans against the target DB; receives the target engine and the app DB's audit writer."""

    def __init__(self, target_engine: AsyncEngine, audit: AuditWriter) -> None:
        self._target = target_engine
        self._audit = audit

    @activity.defn(name=ACTIVITY_EXECUTE_PLAN)
    async def execute_plan(self, input: ExecutePlanInput) -> ExecutionResult:
        label = ticket_label(input.ticket_id)
        if input.events:
            # The steps that led here go on record first (once, however often this is retried): a
            # failed write is retried like any failure here, and the plan does not run meanwhile.
            async with heartbeating():  # a slow app DB must not look like a dead worker either
                await self._audit.append(input.events)
        expected = plan_hash(input.plan)
        if input.plan_hash != expected:
            raise ApplicationError(
                f"{label}: plan hash {input.plan_hash} does not match the plan ({expected}); refusing to run it",
                type=ERROR_PLAN_HASH,
                non_retryable=True,
            )
        steps = _compile(input, await reflect_target(self._target), label)
        async with heartbeating():  # a long transaction must not look like a dead worker
            result = await self._run(input, steps, label)
        verb = "replayed" if result.replayed else "executed"
        logger.info("%s: plan %s %s, %d rows changed", label, expected, verb, result.rows_changed)
        return result

    async def _run(self, input: ExecutePlanInput, steps: list[_Step], label: str) -> ExecutionResult:
        async with self._target.connect() as connection:
            try:
                return await self._run_once(connection, input, steps, label)
            except Exception as error:
                failure = _as_application_error(error, label)
                stored = await _stored_after_failure(connection, input)
                if stored is not None:
                    logger.info("%s: another attempt already executed plan %s", label, input.plan_hash)
                    return stored
                logger.warning("%s", failure.message)
                raise failure from error

    async def _run_once(
        self, connection: AsyncConnection, input: ExecutePlanInput, steps: list[_Step], label: str
    ) -> ExecutionResult:
        await connection.begin()
        stored = await _stored_result(connection, input)
        if stored is not None:
            await connection.rollback()
            logger.info("%s: plan %s was executed before; returning the stored result", label, input.plan_hash)
            return stored
        results = [await _run_step(connection, step) for step in steps]
        executed_at = datetime.now(UTC)
        result = ExecutionResult(plan_hash=input.plan_hash, results=results, executed_at=executed_at)
        await connection.execute(
            insert(executions).values(
                workflow_id=input.workflow_id,
                plan_hash=input.plan_hash,
                result=result.model_dump(mode="json"),
                executed_at=executed_at,
            )
        )
        await connection.commit()
        return result


def _compile(input: ExecutePlanInput, metadata: MetaData, label: str) -> list[_Step]:
    """Every statement, compiled before anything runs; unfiltered writes are refused outright."""
    steps = []
    for index, operation in enumerate(input.plan.operations):
        if isinstance(operation, UpdateOperation | DeleteOperation) and not operation.filters:
            raise ApplicationError(
                f"{label}: operation {index} ({operation.kind} on {operation.table}) has no filter; refusing to run",
                type=ERROR_INVALID_OPERATION,
                non_retryable=True,
            )
        try:
            statement = compile_operation(metadata, operation)
        except SqlCompileError as error:
            raise ApplicationError(
                f"{label}: operation {index} cannot run: {error}", type=ERROR_INVALID_OPERATION, non_retryable=True
            ) from error
        approved = input.approved_rows[index] if index < len(input.approved_rows) else None
        steps.append(_Step(index, operation, statement, approved))
    return steps


async def _run_step(connection: AsyncConnection, step: _Step) -> OperationResult:
    """One statement, one round trip; the approved row count guards updates and deletes."""
    operation = step.operation
    try:
        outcome = await connection.execute(step.statement)
    except sa_exc.DBAPIError as error:
        error.add_note(f"operation {step.index} ({operation.kind} on {operation.table})")
        raise
    result = OperationResult(operation_index=step.index, kind=operation.kind, table=operation.table, rows_affected=0)
    if isinstance(operation, SelectOperation):
        rows = outcome.mappings().all()
        result.rows_affected = len(rows)
        result.rows = [row_to_dict(row) for row in rows[:MAX_RESULT_ROWS]]
        return result
    if isinstance(operation, InsertOperation):
        result.rows_affected = 1
        result.rows = [_inserted_key(outcome, step)]
        return result
    result.rows_affected = max(int(getattr(outcome, "rowcount", 0) or 0), 0)
    if step.approved_rows is not None and result.rows_affected > step.approved_rows:
        raise _RowLimitExceeded(
            f"operation {step.index} ({operation.kind} on {operation.table}) touched {result.rows_affected} rows "
            f"but {step.approved_rows} were approved"
        )
    return result


def _inserted_key(outcome: Any, step: _Step) -> dict[str, Any]:
    """The new row's primary key, so the outcome can name what was created."""
    key = getattr(outcome, "inserted_primary_key", None)
    table = getattr(step.statement, "table", None)
    if key is None or table is None:
        return {}
    return {column.name: to_scalar(value) for column, value in zip(table.primary_key.columns, key, strict=False)}


async def _stored_result(connection: AsyncConnection, input: ExecutePlanInput) -> ExecutionResult | None:
    query = select(executions.c.result).where(
        executions.c.workflow_id == input.workflow_id, executions.c.plan_hash == input.plan_hash
    )
    stored = await connection.scalar(query)
    if stored is None:
        return None
    return ExecutionResult.model_validate(stored).model_copy(update={"replayed": True})


async def _stored_after_failure(connection: AsyncConnection, input: ExecutePlanInput) -> ExecutionResult | None:
    """Roll back, then look for a result that a concurrent attempt committed (its locks made this one fail)."""
    try:
        if connection.in_transaction():
            await connection.rollback()
        stored = await _stored_result(connection, input)
        await connection.rollback()
    except Exception:  # the connection itself is gone: the original error says more
        return None
    return stored


def _as_application_error(error: Exception, label: str) -> ApplicationError:
    """Say what failed; only failures a retry can fix stay retryable."""
    if isinstance(error, ApplicationError):
        return error
    if isinstance(error, _RowLimitExceeded):
        return ApplicationError(
            f"{label}: {error}; the whole plan was rolled back", type=ERROR_ROW_LIMIT, non_retryable=True
        )
    notes = "; ".join(getattr(error, "__notes__", []))
    where = f" in {notes}" if notes else ""
    if is_transient_db_error(error):
        return ApplicationError(
            f"{label}: the target DB failed{where}: {describe_db_error(error)}; nothing was changed, will retry",
            type=ERROR_TARGET_UNAVAILABLE,
        )
    return ApplicationError(
        f"{label}: the target DB refused{where}: {describe_db_error(error)}; the whole plan was rolled back",
        type=ERROR_OPERATION_FAILED,
        non_retryable=True,
    )
