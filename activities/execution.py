"""The `execute_plan` activity: run an approved plan once, in one transaction, with a ledger row.

The ledger row `(workflow id, plan hash)` commits in the same transaction as the writes, so a
retry (or a second attempt running at the same time) finds it and returns the stored result
instead of writing again. Any failure rolls the whole plan back.

The plan runs in order through the same `PlanRunner` as the dry run, and each operation's row
keys are compared with the approved ones: if the rows differ (a concurrent writer changed which
rows match), or the requester's budget of unapproved changes ran out since validation, nothing
is written and `ERROR_APPROVED_ROWS_CHANGED` tells the workflow to validate and ask again.

The same transaction keeps every changed row's before- and after-image (`activities/before_images.py`)
for undo, and a revert claims the change it undoes there too: a crash never half-reverts, and no
change is reverted twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import MetaData, Table, insert, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from activities import before_images, budget, revert
from activities.authority import ExecutionAuthority
from activities.heartbeat import heartbeating
from activities.plan_runner import PlanRunner, StepOutcome, key_columns, sort_keys
from activities.result_size import MAX_READ_CHARS, MAX_RESULT_BYTES, drop_from_the_end, model_bytes, row_bytes, shown
from activities.sql import (
    AnyOperation,
    SqlCompileError,
    compile_operation,
    describe_db_error,
    is_transient_db_error,
    plan_tables,
    reflect_target,
    shapes_digest,
)
from activities.to_the_end import run_to_the_end, stopped_where_it_may
from core.judgement import stale_approvals
from core.ledger import executions, spent_approvals
from core.masking import mask_row
from core.models import (
    DeleteOperation,
    ExecutePlanInput,
    ExecutionLookup,
    ExecutionResult,
    FindExecutionInput,
    InsertOperation,
    OperationResult,
    Plan,
    SelectOperation,
    UpdateOperation,
    plan_hash,
)
from core.names import (
    ACTIVITY_EXECUTE_PLAN,
    ACTIVITY_FIND_EXECUTION,
    ERROR_APPROVED_ROWS_CHANGED,
    ERROR_REVERT_REFUSED,
    ticket_label,
)
from core.policy import Policy, PolicyCache

logger = logging.getLogger(__name__)

MAX_RESULT_ROWS = 100  # rows of a select kept in the result, which lands in workflow history
MAX_KEYS_NAMED = 5  # row keys named in a message about changed rows
DEFAULT_REVERT_WINDOW = timedelta(days=7)

ERROR_PLAN_HASH = "PlanHashMismatch"
ERROR_NOT_AUTHORISED = "NotAuthorisedToRun"  # the executor's own check of judgement and approvals failed
ERROR_INVALID_OPERATION = "InvalidOperation"
ERROR_ROW_LIMIT = "RowLimitExceeded"
ERROR_OPERATION_FAILED = "OperationFailed"
ERROR_TARGET_UNAVAILABLE = "TargetUnavailable"
ERROR_STOPPED = "ExecutionStopped"  # cancelled: rolled back before its commit
USED_BY_A_RUN = "used by a run of the plan"  # a run's claim (`_claim`), written with the run


class _RowLimitExceeded(Exception):
    """An update or delete touched more rows than were approved (tickets that pass counts, not keys)."""


class _Stopped(Exception):
    """The activity was cancelled: the transaction goes no further and rolls back."""


def _unless_stopped(stop: asyncio.Event) -> None:
    if stop.is_set():
        raise _Stopped("the step was cancelled before its commit")


class _ApprovedRowsChanged(Exception):
    """The rows differ from the approved ones, or the budget ran out: roll back and ask again."""


class _ApprovalsSpent(_ApprovedRowsChanged):
    """The approvals sent went with a run refused for good before, or are too old: ask again."""


@dataclass(frozen=True)
class _Step:
    index: int
    operation: AnyOperation
    approved_rows: int | None
    approved_keys: list[str] | None
    approved_version: str = ""  # the rows' version the dry run showed (updates and deletes)
    # Whether a refusal may name the rows by key: not when the key holds a private value (red team 26).
    names_rows: bool = True


class ExecutionActivities:
    """Runs plans against the target DB; receives the target engine, what decides whether a plan may
    run, and the policy."""

    def __init__(
        self,
        target_engine: AsyncEngine,
        authority: ExecutionAuthority,
        policy: PolicyCache | None = None,
        *,
        revert_window: timedelta = DEFAULT_REVERT_WINDOW,
    ) -> None:
        self._authority = authority
        self._target = target_engine
        self._policy = policy
        self._revert_window = revert_window

    @activity.defn(name=ACTIVITY_EXECUTE_PLAN)
    async def execute_plan(self, input: ExecutePlanInput) -> ExecutionResult:
        # Cancelled (a missed heartbeat, the worker stopping), it ends once its transaction has.
        return await stopped_where_it_may(lambda stop: self._execute_plan(input, stop))

    async def _execute_plan(self, input: ExecutePlanInput, stop: asyncio.Event) -> ExecutionResult:
        try:
            return await self._checked_and_run(input, stop)
        except ApplicationError as failure:
            # Refused for good: the approvals it came with run nothing later (red teams 60, 61). Only the
            # ticket's own workflow spends them: another's would name a ticket still waiting for them.
            if failure.non_retryable and _approved(input) and activity.info().workflow_id == input.workflow_id:
                reason = f"{failure.type}: {failure.message}"
                try:
                    await _spend(self._target, input.workflow_id, input.approvals[0].request_id, reason)
                except Exception as error:  # the refusal stands; unspent, the approvals only age
                    logger.warning("%s: could not mark its approvals spent: %s", input.workflow_id, error)
            raise

    async def _checked_and_run(self, input: ExecutePlanInput, stop: asyncio.Event) -> ExecutionResult:
        label = ticket_label(input.ticket_id)
        expected = plan_hash(input.plan)
        if input.plan_hash != expected:
            raise ApplicationError(
                f"{label}: plan hash {input.plan_hash} does not match the plan ({expected}); refusing to run it",
                type=ERROR_PLAN_HASH,
                non_retryable=True,
            )
        refusal = await self._authority.refusal(input, activity.info().workflow_id or "")
        refusal = refusal or await _another_chain(input)
        if refusal is not None:
            logger.error("%s: plan %s refused: %s", label, input.plan_hash, refusal)
            raise ApplicationError(
                f"{label}: not authorised to run: {refusal}; nothing was written",
                type=ERROR_NOT_AUTHORISED,
                non_retryable=True,
            )
        metadata = await reflect_target(self._target)
        plan = await self._plan_to_run(input, label)
        policy = await self._policy.current() if self._policy is not None else None
        steps = _compile(input, plan, metadata, policy, label)
        async with heartbeating():  # a long transaction must not look like a dead worker
            result = await self._run(
                input, label, lambda connection: self._run_once(connection, input, steps, metadata, policy, label, stop)
            )
        verb = "replayed" if result.replayed else "executed"
        logger.info("%s: plan %s %s, %d rows changed", label, expected, verb, result.rows_changed)
        return result

    @activity.defn(name=ACTIVITY_FIND_EXECUTION)
    async def find_execution(self, input: FindExecutionInput) -> ExecutionLookup:
        """Whether the asking ticket's plan ran: its ledger row commits with its writes, so the row is the answer.

        Asked before a ticket is told its execution failed for want of an answer (a worker gone past the
        step's bound, a result that could not be reported): the plan may have committed all the same
        (red team 25). Only the asking workflow's own row is read.
        """
        workflow_id = activity.info().workflow_id or ""
        stored = await run_to_the_end(self._stored_result_else_spend(workflow_id, input))
        return ExecutionLookup(result=_bounded(stored) if stored is not None else None)

    async def _stored_result_else_spend(self, workflow_id: str, input: FindExecutionInput) -> ExecutionResult | None:
        stored = await self._look_up_stored_result(workflow_id, input.plan_hash)
        if stored is None and input.claim:
            told = "the ticket was told its execution failed: nothing was written"
            if not await _spend(self._target, workflow_id, input.claim, told):
                stored = await self._look_up_stored_result(workflow_id, input.plan_hash)  # a run claimed them
        return stored

    async def _look_up_stored_result(self, workflow_id: str, plan_hash: str) -> ExecutionResult | None:
        async with self._target.connect() as connection:
            return await _stored_result(connection, workflow_id, plan_hash)

    async def _plan_to_run(self, input: ExecutePlanInput, label: str) -> Plan:
        """The plan itself; for a revert, with the values its before-images hold where the plan shows them masked."""
        if not input.reverts:
            return input.plan
        async with self._target.connect() as connection:
            change = await before_images.load_change(connection, input.reverts)
            done_before = await _stored_result(connection, input.workflow_id, input.plan_hash) is not None
        try:
            filled = revert.filled_from_images(input.plan, change) if change is not None else None
        except ValueError:  # the images no longer make a valid plan: judged and refused before this
            filled = None
        if done_before:  # this revert ran already (its images may be purged since): the ledger answers
            return input.plan
        if filled is None:
            problem = before_images.refusal(change, input.reverts, datetime.now(UTC), self._revert_window)
            raise ApplicationError(
                f"{label}: {problem or 'the plan is not the inverse of that ticket change'}; nothing was written",
                type=ERROR_REVERT_REFUSED,
                non_retryable=True,
            )
        return filled

    async def _run(
        self,
        input: ExecutePlanInput,
        label: str,
        attempt: Callable[[AsyncConnection], Awaitable[ExecutionResult]],
    ) -> ExecutionResult:
        """`attempt` in a connection of its own; failed, what the ledger says instead, or why."""
        async with self._target.connect() as connection:
            try:
                return await attempt(connection)
            except Exception as error:
                failure = _as_application_error(error, label)
                stored, ran = await _stored_after_failure(connection, input)
                if stored is not None:
                    logger.info("%s: another attempt already executed plan %s", label, input.plan_hash)
                    return stored
                if ran is not None:  # another plan committed under this id meanwhile: this one rolled back
                    failure = _ran_another_plan(ran, label)
                logger.warning("%s", failure.message)
                if failure is error:  # `raise e from e` makes a cause loop the SDK cannot encode
                    raise
                raise failure from error

    async def _run_once(
        self,
        connection: AsyncConnection,
        input: ExecutePlanInput,
        steps: list[_Step],
        metadata: MetaData,
        policy: Policy | None,
        label: str,
        stop: asyncio.Event,
    ) -> ExecutionResult:
        await connection.begin()
        stored, ran = await _ledger_of(connection, input)
        if stored is not None:
            await connection.rollback()
            logger.info("%s: plan %s was executed before; returning the stored result", label, input.plan_hash)
            return stored
        if ran is not None:  # a workflow of one's own under a done ticket's id ran plans of its choosing (red team 21)
            await connection.rollback()
            raise _ran_another_plan(ran, label)
        executed_at = datetime.now(UTC)
        await _claim(connection, input, executed_at)
        if input.reverts:
            await before_images.claim_revert(
                connection, input.reverts, input.workflow_id, executed_at, self._revert_window
            )
        runner = PlanRunner(connection, metadata, every_column=bool(input.reverts))
        private = _private_columns(input, metadata, policy)
        outcomes = []
        for step in steps:
            _unless_stopped(stop)
            outcomes.append(await _run_step(runner, step))
        _unless_stopped(stop)
        await _check_schema(connection, input)
        results = [_result(outcome, private) for outcome in outcomes]
        written = {(o.operation.table, key) for o in outcomes if o.written for key in o.keys}
        if input.requester and _unapproved(input) and written and policy is not None:
            await _charge_budget(connection, input, len(written), policy, executed_at)
        await before_images.purge_now_and_then(connection, executed_at - self._revert_window)
        result = _bounded(ExecutionResult(plan_hash=input.plan_hash, results=results, executed_at=executed_at))
        await connection.execute(
            insert(executions).values(
                workflow_id=input.workflow_id,
                plan_hash=input.plan_hash,
                result=result.model_dump(mode="json"),
                executed_at=executed_at,
                requester=input.requester,
                approved_by=list(input.approved_by),
                images=before_images.image_rows(before_images.images_of(outcomes)),
                reverts=input.reverts or None,
            )
        )
        # Aged approvals are asked again, not a licence kept for later (red team 60). Checked last: by now
        # this attempt's writes have waited for any other attempt's, whose ledger row then stops it (red
        # teams 61 and 62: a retry of a plan that ran, told the plan did not).
        too_old = stale_approvals(input.approvals, executed_at)
        if too_old is not None:
            raise _ApprovalsSpent(too_old)
        _unless_stopped(stop)
        await connection.commit()
        return result


async def _check_schema(connection: AsyncConnection, input: ExecutePlanInput) -> None:
    """The plan's tables are defined as when it was judged; read after its statements, which hold their locks.

    A migration since approval may have added what the judgement would have weighed (a cascading key
    on another table, a key of another type): such a plan is judged and asked for again (red team 38).
    """
    judged = input.judgement.schema_digest if input.judgement is not None else input.schema_digest
    if judged and await shapes_digest(connection, plan_tables(input.plan)) != judged:
        raise _ApprovedRowsChanged("the tables it writes were altered since approval (a migration)")


def _compile(input: ExecutePlanInput, plan: Plan, metadata: MetaData, policy: Policy | None, label: str) -> list[_Step]:
    """Every statement checked before anything runs; unfiltered writes are refused outright."""
    operations = plan.operations
    approved_keys = input.approved_row_keys
    if approved_keys and len(approved_keys) != len(operations):
        raise ApplicationError(
            f"{label}: the approval covers the rows of {len(approved_keys)} operation(s) but the plan has "
            f"{len(operations)}; nothing was written",
            type=ERROR_APPROVED_ROWS_CHANGED,
            non_retryable=True,
        )
    steps = []
    for index, operation in enumerate(operations):
        if isinstance(operation, UpdateOperation | DeleteOperation) and not operation.filters:
            raise ApplicationError(
                f"{label}: operation {index} ({operation.kind} on {operation.table}) has no filter; refusing to run",
                type=ERROR_INVALID_OPERATION,
                non_retryable=True,
            )
        try:
            compile_operation(metadata, operation)
        except SqlCompileError as error:
            raise ApplicationError(
                f"{label}: operation {index} cannot run: {error}", type=ERROR_INVALID_OPERATION, non_retryable=True
            ) from error
        approved = input.approved_rows[index] if index < len(input.approved_rows) else None
        keys = approved_keys[index] if approved_keys else None
        version = input.approved_versions[index] if index < len(input.approved_versions) else ""
        names_rows = not _private_key(metadata.tables[operation.table], policy)
        steps.append(_Step(index, operation, approved, keys, version, names_rows))
    return steps


def _private_key(table: Table, policy: Policy | None) -> bool:
    """Whether the columns that name a row (its primary key; every column without one) hold a private value."""
    if policy is None:
        return False
    private = set(policy.private_columns(table.name, table.columns.keys()))
    return any(column.name in private for column in key_columns(table))


async def _run_step(runner: PlanRunner, step: _Step) -> StepOutcome:
    """One operation; the approved row keys (or, failing those, the approved row count) guard it."""
    operation = step.operation
    try:
        outcome = await runner.run(step.index, operation)
    except sa_exc.DBAPIError as error:
        error.add_note(f"operation {step.index} ({operation.kind} on {operation.table})")
        raise
    if step.approved_keys is not None:
        reason = rows_changed_reason(
            step.index, operation, outcome.keys, step.approved_keys, names_rows=step.names_rows
        )
        if reason is None and step.approved_version and outcome.version != step.approved_version:
            where = f"operation {step.index + 1} ({operation.kind} on {operation.table})"
            reason = f"the rows changed since approval: {where}: the same rows now hold other values"
        if reason:
            raise _ApprovedRowsChanged(reason)
    elif outcome.written and step.approved_rows is not None and outcome.rows_affected > step.approved_rows:
        raise _RowLimitExceeded(
            f"operation {step.index} ({operation.kind} on {operation.table}) touched {outcome.rows_affected} rows "
            f"but {step.approved_rows} were approved"
        )
    return outcome


def rows_changed_reason(
    index: int, operation: AnyOperation, touched: list[str], approved: list[str], *, names_rows: bool = True
) -> str | None:
    """Why the rows an operation touches now are not the approved ones, in words, or None if they are.

    `names_rows=False` counts the rows instead of naming them by key, for keys that hold private values.
    """
    added, gone = sort_keys(set(touched) - set(approved)), sort_keys(set(approved) - set(touched))
    if not added and not gone:
        return None
    verb = "read" if isinstance(operation, SelectOperation) else "change"
    named = _named if names_rows else _counted
    parts = []
    if added:
        parts.append(f"it would now also {verb} {named(added)}")
    if gone:
        parts.append(f"it would no longer {verb} {named(gone)}")
    where = f"operation {index + 1} ({operation.kind} on {operation.table})"
    return f"the rows changed since approval: {where}: {' and '.join(parts)}"


def _named(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_KEYS_NAMED])
    more = f" and {len(keys) - MAX_KEYS_NAMED} more" if len(keys) > MAX_KEYS_NAMED else ""
    return f"row{'s' if len(keys) > 1 else ''} {shown}{more}"


def _counted(keys: list[str]) -> str:
    return f"{len(keys)} row{'s' if len(keys) > 1 else ''}"


def _result(outcome: StepOutcome, private: dict[str, list[str]]) -> OperationResult:
    operation = outcome.operation
    result = OperationResult(
        operation_index=outcome.index, kind=operation.kind, table=operation.table, rows_affected=outcome.rows_affected
    )
    if isinstance(operation, SelectOperation):
        hidden = private.get(operation.table, [])
        result.rows = [shown(mask_row(row, hidden), MAX_READ_CHARS) for row in outcome.rows[:MAX_RESULT_ROWS]]
    elif isinstance(operation, InsertOperation):  # the new row's key, so the outcome can name what was created
        result.rows = list(outcome.primary_keys.values())
    return result


def _bounded(result: ExecutionResult) -> ExecutionResult:
    """The result within `MAX_RESULT_BYTES`, rows dropped from the end of the last select (their count
    stays): it is stored in the ledger and returned to history, and a result Temporal refuses would fail
    every retry of a plan already committed (red team 25)."""
    excess = model_bytes(result) - MAX_RESULT_BYTES
    if excess > 0:
        drop_from_the_end([item.rows for item in result.results], excess, row_bytes)
    return result


def _private_columns(input: ExecutePlanInput, metadata: MetaData, policy: Policy | None) -> dict[str, list[str]]:
    """Columns whose values a select result must mask: private ones, unless people approved the plan."""
    if input.approved_by or policy is None:
        return {}
    tables = {operation.table for operation in input.plan.operations if operation.table in metadata.tables}
    return {name: policy.private_columns(name, metadata.tables[name].columns.keys()) for name in tables}


async def _charge_budget(
    connection: AsyncConnection, input: ExecutePlanInput, rows: int, policy: Policy, now: datetime
) -> None:
    """Charge the requester for rows changed without approval, unless that passes the budget after all."""
    limits = policy.limits
    await budget.lock_budget(connection, input.requester)
    used = await budget.rows_charged(connection, input.requester, now, limits.requester_budget_hours)
    if used + rows > limits.requester_budget_rows:
        raise _ApprovedRowsChanged(
            f"{input.requester} changed {used} row(s) without approval in the last {limits.requester_budget_hours} h "
            f"since this plan was validated; its {rows} would pass the budget of {limits.requester_budget_rows}"
        )
    await budget.charge(connection, input.requester, input.workflow_id, input.plan_hash, rows, now)


async def _stored_result(connection: AsyncConnection, workflow_id: str, plan_hash: str) -> ExecutionResult | None:
    query = select(executions.c.result).where(
        executions.c.workflow_id == workflow_id, executions.c.plan_hash == plan_hash
    )
    stored = await connection.scalar(query)
    if stored is None:
        return None
    return ExecutionResult.model_validate(stored).model_copy(update={"replayed": True})


async def _ledger_of(connection: AsyncConnection, input: ExecutePlanInput) -> tuple[ExecutionResult | None, str | None]:
    """In one round trip: this plan's stored result, if it ran; else the hash of another plan this
    workflow id ran, if any."""
    query = select(executions.c.plan_hash, executions.c.result).where(executions.c.workflow_id == input.workflow_id)
    other = None
    for ran, result in (await connection.execute(query)).all():
        if ran == input.plan_hash:
            return ExecutionResult.model_validate(result).model_copy(update={"replayed": True}), None
        other = ran
    return None, other


def _claimed(input: ExecutePlanInput) -> str:
    """What a run of `input` claims: the approval request its approvals answer (all answer one:
    `signed_approvals`), else the run key the ticket gave a plan that needed none ("" from tools: nothing)."""
    return input.approvals[0].request_id if input.approvals else input.run_key


async def _claim(connection: AsyncConnection, input: ExecutePlanInput, now: datetime) -> None:
    """Record this run's claim as used, in its transaction; `_ApprovalsSpent` if it is spent already.

    One row per claim, so a spend and a run of it cannot both commit: a spend made while this run is
    open waits for its end, then finds its ledger row; a run of a spent claim stops here (red team 63:
    a stalled attempt committed after the ticket had been told nothing ran and its approvals spent; red
    team 66: the same for a plan that needed no approval, whose ticket then logged "nothing written").
    """
    claim = _claimed(input)
    if not claim:
        return
    used = {"workflow_id": input.workflow_id, "request_id": claim, "reason": USED_BY_A_RUN, "spent_at": now}
    try:
        await connection.execute(insert(spent_approvals).values(**used))
    except sa_exc.IntegrityError:
        await connection.rollback()
        spent = spent_approvals.c
        query = select(spent.reason).where(spent.workflow_id == input.workflow_id, spent.request_id == claim)
        reason = await connection.scalar(query)
        await connection.rollback()
        what = "its approvals went with" if input.approvals else "it was claimed by"
        raise _ApprovalsSpent(f"{what} a run refused before ({reason})") from None


async def _spend(target: AsyncEngine, workflow_id: str, request_id: str, reason: str) -> bool:
    """Keep the approvals of a run refused for good, or of one the ticket was told failed, from running
    anything later (red team 60).

    The workflow asks again with a new approval request, or ends the ticket; a workflow of someone
    else's under this id, once the ticket closed, finds these approvals spent. Should this write fail,
    the approvals still expire (`stale_approvals`). Whether no run had claimed them: False when a record
    was there already (a run's, which may have committed meanwhile, or an earlier spend). Any other
    failure is raised: a spend that waited out a run's lock cannot tell whether that run commits (red
    team 64), so the ticket must not be told that nothing ran.
    """
    row = {"workflow_id": workflow_id, "request_id": request_id, "reason": reason[:500], "spent_at": datetime.now(UTC)}
    try:
        async with target.begin() as connection:
            await connection.execute(insert(spent_approvals).values(**row))
    except sa_exc.IntegrityError:
        return False
    return True


async def _another_chain(input: ExecutePlanInput) -> str | None:
    """Why the calling run is not of the ticket whose plan was judged, or None: a workflow started under the
    ticket's id once it closed (terminated, say, while its approvals were complete) begins a chain of its
    own, which Temporal tells apart (red team 63). Judgements without a chain (tools, tests) are not asked."""
    judged = input.judgement.first_run_id if input.judgement is not None else ""
    if not judged or not _approved(input):
        return None
    info = activity.info()
    handle = activity.client().get_workflow_handle(info.workflow_id or "", run_id=info.workflow_run_id)
    try:
        described = await handle.describe()
    except RPCError as error:  # Temporal did not answer: retried
        asking = f"could not ask Temporal which run is asking: {error}"
        raise ApplicationError(asking, type="TemporalUnavailable") from error
    chain = described.raw_description.workflow_execution_info.first_run_id or info.workflow_run_id
    if chain == judged:
        return None
    return "it was judged for another run of this ticket's id (a workflow started under it since)"


def _approved(input: ExecutePlanInput) -> bool:
    """Whether the plan came with approvals its signed judgement asked for."""
    return bool(input.approvals) and input.judgement is not None and input.judgement.required_approvals > 0


def _unapproved(input: ExecutePlanInput) -> bool:
    """Whether the plan runs on the requester's budget: its signed judgement needed no approval (the
    executor's check refused approvers named beside such a judgement), else no one is named."""
    if input.judgement is not None:
        return input.judgement.required_approvals == 0
    return not input.approved_by


async def _stored_after_failure(
    connection: AsyncConnection, input: ExecutePlanInput
) -> tuple[ExecutionResult | None, str | None]:
    """Roll back, then look for what a concurrent attempt committed (its locks or the ledger's one row per
    workflow id made this one fail): this plan's result, or another plan's hash."""
    try:
        if connection.in_transaction():
            await connection.rollback()
        found = await _ledger_of(connection, input)
        await connection.rollback()
    except Exception:  # the connection itself is gone: the original error says more
        return None, None
    return found


def _ran_another_plan(ran: str, label: str) -> ApplicationError:
    return ApplicationError(
        f"{label}: this ticket ran plan {ran} already, and a ticket runs one plan; nothing was written",
        type=ERROR_NOT_AUTHORISED,
        non_retryable=True,
    )


def _as_application_error(error: Exception, label: str) -> ApplicationError:
    """Say what failed; only failures a retry can fix stay retryable."""
    if isinstance(error, ApplicationError):
        return error
    if isinstance(error, before_images.RevertRefused):
        return ApplicationError(f"{label}: {error}; nothing was written", type=ERROR_REVERT_REFUSED, non_retryable=True)
    if isinstance(error, _ApprovedRowsChanged):
        return ApplicationError(
            f"{label}: {error}; nothing was written", type=ERROR_APPROVED_ROWS_CHANGED, non_retryable=True
        )
    if isinstance(error, _Stopped):
        return ApplicationError(f"{label}: {error}; nothing was written", type=ERROR_STOPPED)
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
