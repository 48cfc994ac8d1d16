"""Limits over the whole plan, from its dry run: each distinct row counted once, per table and in all.

Splitting a change into many small operations, or touching the same rows twice, therefore
counts the same as one operation would. `max_rows` counts the rows of a table the plan reads
or changes, together; the other row limits count the rows it changes. Pure functions, like the
other rule modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from activities.safety_rules import RULE_MAX_ROWS, RULE_NO_ROWS, RULE_ROW_COUNT
from core.models import Finding, OperationImpact, Risk
from core.policy import Policy

RULE_PLAN_ROWS = "plan_rows"
RULE_ROWS_RETURNED = "rows_returned"
RULE_TENANTS = "tenants"
RULE_BUDGET = "requester_budget"


@dataclass
class Tally:
    """Distinct rows per table a plan writes and reads, and the rows its selects return."""

    written: dict[str, set[str]] = field(default_factory=dict)
    read: dict[str, set[str]] = field(default_factory=dict)
    returned: int = 0

    @property
    def rows_changed(self) -> int:
        return sum(len(keys) for keys in self.written.values())


def tally(impacts: Sequence[OperationImpact]) -> Tally:
    result = Tally()
    for impact in impacts:
        if impact.kind == "select":
            result.read.setdefault(impact.table, set()).update(impact.row_keys)
            result.returned += impact.rows_affected
        else:
            result.written.setdefault(impact.table, set()).update(impact.row_keys)
    return result


def _finding(rule: str, risk: Risk, message: str, index: int | None = None) -> Finding:
    return Finding(rule=rule, risk=risk, message=message, operation_index=index)


def check_table_rows(table: str, rows: int, policy: Policy) -> list[Finding]:
    """Distinct rows of one table the plan changes: past max_rows blocked, high_risk_rows high, auto-approval medium."""
    limits = policy.tables.get(table)
    if limits is None:
        return []
    if rows > limits.max_rows:
        message = f"The plan changes {rows} distinct rows of {table}; the table's limit is {limits.max_rows}."
        return [_finding(RULE_MAX_ROWS, Risk.BLOCKED, message)]
    high = policy.limits.high_risk_rows
    if rows > high:
        return [
            _finding(RULE_ROW_COUNT, Risk.HIGH, f"The plan changes {rows} distinct rows of {table} (more than {high}).")
        ]
    if rows > limits.auto_approve_rows:
        message = f"The plan changes {rows} distinct rows of {table} (auto-approval covers {limits.auto_approve_rows})."
        return [_finding(RULE_ROW_COUNT, Risk.MEDIUM, message)]
    message = f"The plan changes {rows} row(s) of {table}, within the table's auto-approve limit."
    return [_finding(RULE_ROW_COUNT, Risk.LOW, message)]


def check_plan_rows(rows: int, policy: Policy) -> list[Finding]:
    """Distinct rows the whole plan changes, over all tables."""
    limits = policy.limits
    if rows > limits.max_rows_changed:
        message = f"The plan changes {rows} distinct rows in all; the limit is {limits.max_rows_changed}."
        return [_finding(RULE_PLAN_ROWS, Risk.BLOCKED, message)]
    if rows > limits.high_risk_rows:
        return [_finding(RULE_PLAN_ROWS, Risk.HIGH, f"The plan changes {rows} distinct rows in all.")]
    if rows > limits.auto_approve_rows:
        message = f"The plan changes {rows} distinct rows in all (auto-approval covers {limits.auto_approve_rows})."
        return [_finding(RULE_PLAN_ROWS, Risk.MEDIUM, message)]
    return []


def check_touched(tally: Tally, policy: Policy) -> list[Finding]:
    """Distinct rows read or changed per table within max_rows; rows all selects return within max_rows_returned.

    A row both read and changed counts once. A table whose changed rows alone pass max_rows is
    left to `check_table_rows`, which blocks it already.
    """
    findings = []
    for table in sorted(tally.read.keys() | tally.written.keys()):
        limits = policy.tables.get(table)
        read, written = tally.read.get(table, set()), tally.written.get(table, set())
        touched = len(read | written)
        if limits is None or touched <= limits.max_rows or len(written) > limits.max_rows:
            continue
        if written:
            what = f"reads or changes {touched} distinct rows of {table} ({len(read)} read, {len(written)} changed)"
        else:
            what = f"reads {touched} distinct rows of {table}"
        findings.append(
            _finding(RULE_MAX_ROWS, Risk.BLOCKED, f"The plan {what}; the table's limit is {limits.max_rows}.")
        )
    cap = policy.limits.max_rows_returned
    if tally.returned > cap:
        message = f"The plan's selects return {tally.returned} rows in all; the limit is {cap}."
        findings.append(_finding(RULE_ROWS_RETURNED, Risk.BLOCKED, message))
    return findings


def check_tenants(tenants: set[str]) -> list[Finding]:
    """A plan that changes rows of more than one tenant is high risk."""
    if len(tenants) <= 1:
        return []
    message = f"The plan changes rows of {len(tenants)} tenants ({', '.join(sorted(tenants)[:5])})."
    return [_finding(RULE_TENANTS, Risk.HIGH, message)]


def check_no_rows(impacts: Sequence[OperationImpact]) -> list[Finding]:
    return [
        _finding(RULE_NO_ROWS, Risk.LOW, f"{impact.kind} on {impact.table} matches no rows.", impact.operation_index)
        for impact in impacts
        if impact.kind != "select" and impact.rows_affected == 0
    ]


def limit_findings(impacts: Sequence[OperationImpact], tenants: set[str], policy: Policy) -> list[Finding]:
    """Every whole-plan limit over the dry run's impacts."""
    counted = tally(impacts)
    findings = check_no_rows(impacts)
    for table, keys in sorted(counted.written.items()):
        findings.extend(check_table_rows(table, len(keys), policy))
    findings.extend(check_plan_rows(counted.rows_changed, policy))
    findings.extend(check_touched(counted, policy))
    findings.extend(check_tenants(tenants))
    return findings


def check_budget(requester: str, used: int, rows: int, policy: Policy) -> list[Finding]:
    """Rows a requester changed without approval in the window, plus this plan's, within the budget."""
    budget, hours = policy.limits.requester_budget_rows, policy.limits.requester_budget_hours
    if rows == 0 or used + rows <= budget:
        return []
    message = (
        f"{requester} changed {used} row(s) without approval in the last {hours} h; this plan's {rows} would pass "
        f"the budget of {budget}: it needs approval."
    )
    return [_finding(RULE_BUDGET, Risk.MEDIUM, message)]
