"""The `validate_plan` activity: deterministic safety rules plus a dry run of the whole plan.

The rules live in `activities/safety_rules.py`, `value_rules.py` and `plan_limits.py`; this
module supplies what they need from the databases: the policy from the constraint table, the
target's shape, the dry run of the plan in order (`activities/dry_run.py`) and the requester's
budget of unapproved changes (`activities/budget.py`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Column, MetaData, Table
from sqlalchemy import types as sa_types
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import plan_limits
from activities import revert as undo
from activities import safety_rules as rules
from activities.authority import ExecutionAuthority
from activities.before_images import lineage, load_change, refusal
from activities.budget import rows_charged
from activities.cascades import Cascade, Cascades
from activities.dry_run import dry_run
from activities.heartbeat import heartbeating
from activities.result_size import MAX_RESULT_BYTES, drop_from_the_end, model_bytes
from activities.sql import CASCADES, INHERITED, forget_reflection, plan_tables, reflect_target
from activities.to_the_end import run_to_the_end
from core.ledger import is_ledger_table
from core.masking import mask_row
from core.models import (
    Finding,
    OperationImpact,
    Plan,
    RevertCheck,
    RevertOf,
    Risk,
    SafetyReport,
    ValidatePlanInput,
    plan_hash,
)
from core.names import ACTIVITY_VALIDATE_PLAN, ticket_label
from core.policy import Policy, PolicyCache

logger = logging.getLogger(__name__)

ERROR_REPORT_TOO_LARGE = "ReportTooLarge"

RULE_REVERT = "revert"
RULE_REVERT_CONFLICT = "revert_conflict"


def target_shape(metadata: MetaData) -> dict[str, rules.TableShape]:
    """Columns, insert-required columns and keys of every reflected table except the ledgers."""
    cascades: Cascades = metadata.info.get(CASCADES, {})
    return {
        name: _table_shape(table, cascades.get(name, ()))
        for name, table in metadata.tables.items()
        if not is_ledger_table(name)
    }


def _table_shape(table: Table, cascades: tuple[Cascade, ...] = ()) -> rules.TableShape:
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
        foreign_keys=frozenset(column.name for column in table.columns if column.foreign_keys),
        inexact_key=frozenset(column.name for column in table.primary_key.columns if not _read_exactly(column)),
        inherited=bool(table.info.get(INHERITED)),
        cascades=cascades,
    )


# Key types whose values come back from the driver as stored: two different rows never read back alike.
_EXACT_KEY_TYPES = (sa_types.Integer, sa_types.String, sa_types.Uuid, sa_types.LargeBinary)


def _read_exactly(column: Column[Any]) -> bool:
    return isinstance(column.type, _EXACT_KEY_TYPES)


@dataclass(frozen=True)
class JudgedRevert:
    """A revert plan checked against its images: what was found, and the plan with their values to run."""

    check: RevertCheck | None
    findings: list[Finding]
    runs: Plan | None = None


def bounded_report(report: SafetyReport) -> SafetyReport:
    """The report within `MAX_RESULT_BYTES`, so it can be recorded: a blocked plan's row keys are dropped
    (it never runs), then preview rows from the end.

    A report that still does not fit fails the step for good, with the reason, rather than fail the
    workflow task on every try and hold the ticket unanswered (red team 25).
    """
    if model_bytes(report) <= MAX_RESULT_BYTES:
        return report
    impacts = [impact.model_copy(deep=True) for impact in report.impacts]
    if report.risk is Risk.BLOCKED:  # it never runs, so nothing binds to its keys
        for impact in impacts:
            impact.row_keys = []
    bounded = report.model_copy(update={"impacts": impacts})
    excess = drop_from_the_end(
        [impact.preview for impact in impacts], model_bytes(bounded) - MAX_RESULT_BYTES, model_bytes
    )
    if excess > 0:
        raise ApplicationError(
            f"the plan's safety report is {model_bytes(bounded)} bytes even without its preview, over the "
            f"{MAX_RESULT_BYTES} a step may record",
            type=ERROR_REPORT_TOO_LARGE,
            non_retryable=True,
        )
    return bounded


def _private_after_masked(impact: OperationImpact, private: list[str]) -> OperationImpact:
    """A revert's preview with old private values masked after the change too: they come from the images."""
    if not private:
        return impact
    preview = [
        change.model_copy(update={"after": mask_row(change.after, private) if change.after else change.after})
        for change in impact.preview
    ]
    return impact.model_copy(update={"preview": preview})


class SafetyActivities:
    """Validates plans; receives the app DB (for the policy), the target engine and the authority that
    signs the judgement."""

    def __init__(
        self,
        app_sessions: async_sessionmaker[AsyncSession],
        target_engine: AsyncEngine,
        authority: ExecutionAuthority,
        *,
        revert_window: timedelta = undo.DEFAULT_WINDOW,
    ) -> None:
        self._policy = PolicyCache(app_sessions)
        self._target = target_engine
        self._authority = authority
        self._revert_window = revert_window

    @activity.defn(name=ACTIVITY_VALIDATE_PLAN)
    async def validate_plan(self, input: ValidatePlanInput) -> SafetyReport:
        async with heartbeating():  # a dry run waiting on a lock must not look like a dead worker
            return await run_to_the_end(self._validate(input))

    async def _validate(self, input: ValidatePlanInput) -> SafetyReport:
        label = ticket_label(input.ticket_id)
        policy = await self._policy.current()
        requester, reverts = input.judged_requester, input.judged_reverts
        if reverts is not None:  # judged against the columns as they are now (activities/revert.py)
            forget_reflection(self._target)
        metadata = await reflect_target(self._target, plan_tables(input.plan))
        report = bounded_report(await self.assess(input.plan, policy, metadata, requester=requester, reverts=reverts))
        # What the executor will require: vouched for the workflow that asked, as Temporal names it.
        report = self._authority.vouch(report, input.request, activity.info().workflow_id or "", input.first_run_id)
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

    async def assess(
        self, plan: Plan, policy: Policy, metadata: MetaData, *, requester: str = "", reverts: RevertOf | None = None
    ) -> SafetyReport:
        """Static rules; then the dry run and the limits over the whole plan; then the requester's budget.

        A plan that is not blocked has one impact per operation, in plan order, so the workflow
        can pass `report.approved_row_keys` to the execution. A revert is also checked against
        the before-images it claims to put back (`_judge_revert`).
        """
        shown = plan
        judged = None if reverts is None else await self._judge_revert(plan, reverts, policy, metadata)
        if judged is not None and judged.runs is None:  # not a revert that can run: nothing more to judge
            return SafetyReport(risk=Risk.BLOCKED, findings=judged.findings, plan_hash=plan_hash(shown))
        check = judged.check if judged else None
        findings = list(judged.findings) if judged else []
        if judged is not None and judged.runs is not None:
            plan = judged.runs  # the values the images hold where the plan shows MASK
        findings.extend(rules.static_findings(plan, policy, target_shape(metadata), revert=check is not None))
        run = await dry_run(self._target, metadata, plan, policy, findings, revert=check is not None)
        findings.extend(run.findings)
        if rules.overall_risk(findings) is not Risk.BLOCKED:
            findings.extend(plan_limits.limit_findings(run.impacts, run.tenants, policy))
            findings.extend(await self._budget(requester, run.impacts, policy))
        if judged is not None and judged.runs is not None:  # a rule's words may quote a value put back
            findings = undo.without_hidden_values(findings, undo.hidden_values(shown, judged.runs))
        findings.sort(key=lambda item: -1 if item.operation_index is None else item.operation_index)
        risk = rules.overall_risk(findings)
        touched = {operation.table for operation in plan.operations if operation.table in metadata.tables}
        private = {
            name: columns
            for name in sorted(touched)
            if (columns := policy.private_columns(name, metadata.tables[name].columns.keys()))
        }
        required = policy.approvals_for(risk)
        impacts = run.impacts
        if check is not None:  # at least as many people as approved the change it undoes
            required = max(required, check.original_approvals)
            impacts = [_private_after_masked(impact, private.get(impact.table, [])) for impact in impacts]
        return SafetyReport(
            risk=risk,
            findings=findings,
            impacts=impacts,
            required_approvals=required,
            plan_hash=plan_hash(shown),
            private_columns=private,
            revert=check,
            schema_digest=run.schema_digest,
        )

    async def _judge_revert(self, plan: Plan, reverts: RevertOf, policy: Policy, metadata: MetaData) -> JudgedRevert:
        """Whether `plan` is the inverse of the change it names, and which rows changed since that change."""
        async with self._target.connect() as connection:
            change = await load_change(connection, reverts.workflow_id)
            problem = refusal(change, reverts.workflow_id, datetime.now(UTC), self._revert_window)
            runs = None
            if change is not None and problem is None:
                problem = undo.unrevertable(change, metadata)
                try:
                    runs = undo.filled_from_images(plan, change) if problem is None else None
                except ValueError as error:
                    problem = f"it cannot be reverted: {error}"
                if problem is None and runs is None:
                    problem = "the plan is not the inverse of that ticket's change"
            if change is None or runs is None:
                return JudgedRevert(
                    None, [Finding(rule=RULE_REVERT, risk=Risk.BLOCKED, message=f"Cannot revert: {problem}.")]
                )
            conflicts = await undo.find_conflicts(connection, metadata, change)
            family = await lineage(connection, change)
        check = undo.revert_check(change, family, reverts, undo.masked_conflicts(conflicts, policy, metadata))
        if not conflicts:
            return JudgedRevert(check, [], runs)
        rows = ", ".join(f"{conflict.table} {conflict.key}" for conflict in conflicts[:5])
        more = f" and {len(conflicts) - 5} more" if len(conflicts) > 5 else ""
        changed = f"{len(conflicts)} row(s) were changed after the original ran: {rows}{more}"
        if reverts.include_conflicts:
            message = f"Overwrites changes made since: {changed}."
            return JudgedRevert(check, [Finding(rule=RULE_REVERT_CONFLICT, risk=Risk.HIGH, message=message)], runs)
        message = f"{changed}. Reverting would overwrite them; ask again with --include-conflicts to approve that."
        return JudgedRevert(check, [Finding(rule=RULE_REVERT_CONFLICT, risk=Risk.BLOCKED, message=message)], runs)

    async def _budget(self, requester: str, impacts: list[OperationImpact], policy: Policy) -> list[Finding]:
        rows = plan_limits.tally(impacts).rows_changed
        if not requester or rows == 0:
            return []
        async with self._target.connect() as connection:
            used = await rows_charged(connection, requester, datetime.now(UTC), policy.limits.requester_budget_hours)
        return plan_limits.check_budget(requester, used, rows, policy)
