"""The safety rules: pure functions from a plan, the policy and the target's shape to findings.

Kept free of I/O so each rule can be tested alone and read as the policy it enforces. The
activity in `activities/safety.py` supplies the target's shape and the row counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from activities import value_rules
from activities.cascades import Cascade
from core.ledger import is_ledger_table
from core.models import (
    DeleteOperation,
    Finding,
    InsertOperation,
    Plan,
    Risk,
    SelectOperation,
    UpdateOperation,
)
from core.policy import Policy

AnyOperation = SelectOperation | InsertOperation | UpdateOperation | DeleteOperation

RULE_EMPTY_PLAN = "empty_plan"
RULE_PLAN_SIZE = "plan_size"
RULE_LEDGER = "ledger_table"
RULE_TABLE_EXISTS = "table_exists"
RULE_TABLE_LISTED = "table_listed"
RULE_COLUMN_EXISTS = "column_exists"
RULE_OPERATION_KIND = "operation_kind"
RULE_FILTER_REQUIRED = "filter_required"
RULE_PROTECTED_COLUMN = "protected_column"
RULE_SENSITIVE_COLUMN = "sensitive_column"
RULE_REQUIRED_COLUMN = "required_column"
RULE_DELETE = "delete"
RULE_READ_ONLY = "read_only"
RULE_INVALID_VALUE = "invalid_value"
RULE_MAX_ROWS = "max_rows"
RULE_ROW_COUNT = "row_count"
RULE_NO_ROWS = "no_rows"
RULE_NOT_MEASURED = "not_measured"
RULE_DATABASE_REFUSED = "database_refused"
RULE_DRY_RUN_TIMEOUT = "dry_run_timeout"
RULE_NO_PRIMARY_KEY = "no_primary_key"
RULE_FOREIGN_KEY = "foreign_key"
RULE_CASCADE = "cascade"
RULE_TENANT_MOVE = "tenant_move"
RULE_PRIVATE_READ = "private_read"
RULE_PRIVATE_PROBE = "private_probe"

# Filters that test a private value for more than equality: they can probe it a character at a time.
PROBING_OPERATORS = frozenset({"like", "lt", "le", "gt", "ge", "ne"})

# Rules after which an operation cannot be compiled or counted against the target.
UNMEASURABLE_RULES = frozenset({RULE_LEDGER, RULE_TABLE_EXISTS, RULE_TABLE_LISTED, RULE_COLUMN_EXISTS})
# Rules judged from the plan and the policy alone, never from the dry run's rows: the only rule names
# a requester's view may carry before people approve (the others, e.g. `no_rows`, tell row counts).
PLAN_RULES = frozenset(
    {
        RULE_EMPTY_PLAN,
        RULE_PLAN_SIZE,
        RULE_LEDGER,
        RULE_TABLE_EXISTS,
        RULE_TABLE_LISTED,
        RULE_COLUMN_EXISTS,
        RULE_OPERATION_KIND,
        RULE_FILTER_REQUIRED,
        RULE_PROTECTED_COLUMN,
        RULE_SENSITIVE_COLUMN,
        RULE_REQUIRED_COLUMN,
        RULE_DELETE,
        RULE_READ_ONLY,
        RULE_INVALID_VALUE,
        RULE_NO_PRIMARY_KEY,
        RULE_FOREIGN_KEY,
        RULE_CASCADE,
        RULE_TENANT_MOVE,
        RULE_PRIVATE_READ,
        RULE_PRIVATE_PROBE,
        value_rules.RULE_HIDDEN_CHARACTER,
        value_rules.RULE_VALUE_RULE,
    }
)


@dataclass(frozen=True)
class TableShape:
    """What the safety rules need to know about one target table."""

    columns: frozenset[str]
    required: frozenset[str] = frozenset()  # NOT NULL, no default, not generated: an insert must set them
    primary_key: frozenset[str] = frozenset()
    foreign_keys: frozenset[str] = frozenset()  # columns that refer to another table's rows
    # Key columns whose values the driver reads back as something other than what is stored (a SQLite
    # DATE, a NUMERIC, an untyped column; a PostgreSQL date's 'infinity', an array's bounds): two rows
    # can read back alike, so a write cannot name its rows one by one (red team 30).
    inexact_key: frozenset[str] = frozenset()
    # PostgreSQL tables inherit from it: its queries reach their rows, which its key does not keep apart.
    inherited: bool = False
    cascades: tuple[Cascade, ...] = ()


TargetShape = Mapping[str, TableShape]


def _finding(rule: str, risk: Risk, message: str, index: int | None) -> Finding:
    return Finding(rule=rule, risk=risk, message=message, operation_index=index)


def referenced_columns(operation: AnyOperation) -> list[str]:
    """Every column an operation names: selected, filtered on or assigned."""
    names: list[str] = []
    if isinstance(operation, SelectOperation):
        names.extend(operation.columns)
    if isinstance(operation, InsertOperation | UpdateOperation):
        names.extend(item.column for item in operation.values)
    if not isinstance(operation, InsertOperation):
        names.extend(item.column for item in operation.filters)
    return list(dict.fromkeys(names))


def written_columns(operation: AnyOperation) -> list[str]:
    if isinstance(operation, InsertOperation | UpdateOperation):
        return list(dict.fromkeys(item.column for item in operation.values))
    return []


def is_write(operation: AnyOperation) -> bool:
    return not isinstance(operation, SelectOperation)


# ---------------------------------------------------------------- plan-wide rules


def check_plan_size(plan: Plan, policy: Policy, *, revert: bool = False) -> list[Finding]:
    """An empty plan does nothing (low); one longer than the policy allows is blocked.

    A revert has one operation per row (or group of rows) its original changed: the row limits,
    which the original met, bound it instead.
    """
    count = len(plan.operations)
    if count == 0:
        return [_finding(RULE_EMPTY_PLAN, Risk.LOW, "The plan has no operations: it changes nothing.", None)]
    limit = policy.limits.max_operations
    if count > limit and not revert:
        return [_finding(RULE_PLAN_SIZE, Risk.BLOCKED, f"The plan has {count} operations; the limit is {limit}.", None)]
    return []


# ---------------------------------------------------------------- per-operation rules


def check_table(index: int, operation: AnyOperation, policy: Policy, shape: TargetShape) -> list[Finding]:
    """The ledger and tables missing from the target or from the policy cannot be touched."""
    name = operation.table
    if is_ledger_table(name):
        message = f"Table {name} is a ledger of agent-ticket (executions or budget); plans may never read or change it."
        return [_finding(RULE_LEDGER, Risk.BLOCKED, message, index)]
    if name not in shape:
        return [_finding(RULE_TABLE_EXISTS, Risk.BLOCKED, f"Table {name} does not exist in the target DB.", index)]
    if name not in policy.tables:
        message = f"Table {name} is not listed in the policy, so the agent may not touch it."
        return [_finding(RULE_TABLE_LISTED, Risk.BLOCKED, message, index)]
    return []


def check_columns(index: int, operation: AnyOperation, shape: TargetShape) -> list[Finding]:
    table = shape.get(operation.table)
    if table is None:
        return []
    unknown = [name for name in referenced_columns(operation) if name not in table.columns]
    if not unknown:
        return []
    message = f"Table {operation.table} has no column {', '.join(unknown)}."
    return [_finding(RULE_COLUMN_EXISTS, Risk.BLOCKED, message, index)]


def check_operation_kind(index: int, operation: AnyOperation, policy: Policy, *, revert: bool = False) -> list[Finding]:
    """The table's allowed kinds; a revert may also use the inverse ones where the policy allows undo."""
    table = policy.tables.get(operation.table)
    if table is None or operation.kind in table.operations or (revert and table.revert):
        return []
    allowed = ", ".join(table.operations) or "nothing"
    message = f"{operation.kind} is not allowed on {operation.table} (allowed: {allowed})."
    if revert:
        message += " Its policy does not allow reverts (revert: false)."
    return [_finding(RULE_OPERATION_KIND, Risk.BLOCKED, message, index)]


def check_filters(index: int, operation: AnyOperation) -> list[Finding]:
    """An update or delete without a filter would touch every row."""
    if isinstance(operation, UpdateOperation | DeleteOperation) and not operation.filters:
        message = f"{operation.kind} on {operation.table} has no filter: it would touch every row."
        return [_finding(RULE_FILTER_REQUIRED, Risk.BLOCKED, message, index)]
    return []


def check_protected_columns(index: int, operation: AnyOperation, policy: Policy, shape: TargetShape) -> list[Finding]:
    """Protected columns and the primary key never change once a row exists; an insert never sets the key."""
    table = policy.tables.get(operation.table)
    if table is None:
        return []
    target = shape.get(operation.table)
    keys = set(target.primary_key) if target else set()
    protected = set(table.protected_columns) | keys
    if isinstance(operation, InsertOperation):
        protected = keys
    hits = [name for name in written_columns(operation) if name in protected]
    if not hits:
        return []
    if isinstance(operation, InsertOperation):
        message = f"{', '.join(hits)} on {operation.table} is assigned by the database, never by the agent."
    else:
        message = f"{', '.join(hits)} on {operation.table} is protected and never changed by the agent."
    return [_finding(RULE_PROTECTED_COLUMN, Risk.BLOCKED, message, index)]


def check_sensitive_columns(index: int, operation: AnyOperation, policy: Policy) -> list[Finding]:
    table = policy.tables.get(operation.table)
    if table is None:
        return []
    hits = [name for name in written_columns(operation) if name in table.sensitive_columns]
    if not hits:
        return []
    message = f"Writes sensitive column {', '.join(hits)} on {operation.table}."
    return [_finding(RULE_SENSITIVE_COLUMN, Risk.HIGH, message, index)]


def check_required_columns(index: int, operation: AnyOperation, shape: TargetShape) -> list[Finding]:
    """An insert that leaves a NOT NULL column without default unset would fail when run."""
    table = shape.get(operation.table)
    if not isinstance(operation, InsertOperation) or table is None:
        return []
    missing = sorted(table.required - set(written_columns(operation)))
    if not missing:
        return []
    message = f"Insert into {operation.table} leaves required column {', '.join(missing)} unset."
    return [_finding(RULE_REQUIRED_COLUMN, Risk.BLOCKED, message, index)]


def check_primary_key(index: int, operation: AnyOperation, shape: TargetShape) -> list[Finding]:
    """A write must be able to name the rows it touches, which approvals are bound to."""
    table = shape.get(operation.table)
    if (
        table is None
        or not is_write(operation)
        or (table.primary_key and not table.inexact_key and not table.inherited)
    ):
        return []
    if table.inherited:
        message = (
            f"Tables inherit from {operation.table}: a write to it reaches their rows too, which its key does "
            "not tell apart from its own, so the rows cannot be named one by one."
        )
    elif table.primary_key:
        columns = ", ".join(sorted(table.inexact_key))
        message = (
            f"Table {operation.table}'s key ({columns}) is of a type read back inexactly, so the rows a write "
            "touches cannot be named one by one."
        )
    else:
        message = f"Table {operation.table} has no primary key, so the rows a write touches cannot be named."
    return [_finding(RULE_NO_PRIMARY_KEY, Risk.BLOCKED, message, index)]


def check_references(index: int, operation: AnyOperation, policy: Policy, shape: TargetShape) -> list[Finding]:
    """A row never moves to another tenant; pointing a row at another table's row is high risk.

    The policy names a table's `tenant_key`, and the foreign keys whose writes are ordinary. A
    new row must name its tenant, so an insert may set the tenant key.
    """
    table = policy.tables.get(operation.table)
    target = shape.get(operation.table)
    if table is None or target is None:
        return []
    written = written_columns(operation)
    findings = []
    if isinstance(operation, UpdateOperation) and table.tenant_key in written:
        message = f"Moves rows of {operation.table} to another tenant ({table.tenant_key}); rows never change tenant."
        findings.append(_finding(RULE_TENANT_MOVE, Risk.BLOCKED, message, index))
    exempt = set(table.ordinary_foreign_keys) | {table.tenant_key}
    references = [name for name in written if name in target.foreign_keys and name not in exempt]
    if references:
        message = f"Points {operation.table}.{', '.join(references)} at another table's row (a foreign key)."
        findings.append(_finding(RULE_FOREIGN_KEY, Risk.HIGH, message, index))
    return findings


def check_cascades(index: int, operation: AnyOperation, shape: TargetShape) -> list[Finding]:
    """A write that makes the database change other tables' rows (red team 38) needs people to approve it.

    An update of the columns another table's foreign key refers to `ON UPDATE CASCADE` (or `SET NULL`,
    `SET DEFAULT`), or a delete under `ON DELETE` ones, changes rows of that table the plan does not name:
    the dry run neither counts nor shows them, no row limit or budget holds them, and undo does not put
    them back. Renaming one team's code (one row, within the auto-approve limit) rewrote 50 members' rows.
    """
    table = shape.get(operation.table)
    if table is None or not isinstance(operation, UpdateOperation | DeleteOperation):
        return []
    if isinstance(operation, UpdateOperation):
        written = {name.lower() for name in written_columns(operation)}
        verb, actions = (
            "Updating",
            [
                (cascade.table, f"ON UPDATE {cascade.on_update}")
                for cascade in table.cascades
                if cascade.on_update and (cascade.derived or cascade.columns & written)
            ],
        )
    else:
        verb, actions = (
            "Deleting",
            [(cascade.table, f"ON DELETE {cascade.on_delete}") for cascade in table.cascades if cascade.on_delete],
        )
    if not actions:
        return []
    reached = ", ".join(f"{other} ({action})" for other, action in sorted(set(actions)))
    message = (
        f"{verb} rows of {operation.table} also changes the rows of {reached} that refer to them: those rows "
        "are not counted or shown here, and undo does not put them back."
    )
    return [_finding(RULE_CASCADE, Risk.HIGH, message, index)]


def check_private_reads(index: int, operation: AnyOperation, policy: Policy, shape: TargetShape) -> list[Finding]:
    """Reading private values needs approval; so does testing them with anything but equality."""
    target = shape.get(operation.table)
    if target is None:
        return []
    private = set(policy.private_columns(operation.table, sorted(target.columns)))
    if not private:
        return []
    findings = []
    returned = set(operation.columns or target.columns) & private if isinstance(operation, SelectOperation) else set()
    filtered = (
        set() if isinstance(operation, InsertOperation) else {item.column for item in operation.filters} & private
    )
    if returned or filtered:
        # Finding rows by a private value tells which rows hold it, whatever the operation does with them.
        what = ", ".join(sorted(returned | filtered))
        verb = "returns" if returned else "filters on"
        message = f"Reads private column {what} of {operation.table} ({verb} it): needs approval."
        findings.append(_finding(RULE_PRIVATE_READ, Risk.MEDIUM, message, index))
    if not isinstance(operation, InsertOperation):
        probed = sorted({item.column for item in operation.filters if item.op.value in PROBING_OPERATORS} & private)
        if probed:
            message = f"Tests private column {', '.join(probed)} of {operation.table} with a pattern or range."
            findings.append(_finding(RULE_PRIVATE_PROBE, Risk.MEDIUM, message, index))
    return findings


def check_kind_risk(index: int, operation: AnyOperation) -> list[Finding]:
    """Deletes are at least high risk; selects only read."""
    if isinstance(operation, DeleteOperation):
        return [_finding(RULE_DELETE, Risk.HIGH, f"Deletes rows from {operation.table}.", index)]
    if isinstance(operation, SelectOperation):
        return [_finding(RULE_READ_ONLY, Risk.LOW, f"Reads {operation.table}; changes nothing.", index)]
    return []


def operation_findings(
    index: int, operation: AnyOperation, policy: Policy, shape: TargetShape, *, revert: bool = False
) -> list[Finding]:
    """Every static rule on one operation; a missing or forbidden table ends the checks.

    A revert re-inserts deleted rows as they were, key and protected columns included: only a
    plan proven to be the inverse of an executed one (activities/revert.py) is judged so.
    """
    findings = check_table(index, operation, policy, shape)
    if findings:
        return findings
    findings = check_columns(index, operation, shape)
    if findings:
        return findings
    return [
        *check_operation_kind(index, operation, policy, revert=revert),
        *check_filters(index, operation),
        *check_primary_key(index, operation, shape),
        *(
            []
            if revert and isinstance(operation, InsertOperation)
            else check_protected_columns(index, operation, policy, shape)
        ),
        *check_sensitive_columns(index, operation, policy),
        *check_references(index, operation, policy, shape),
        *check_cascades(index, operation, shape),
        *check_private_reads(index, operation, policy, shape),
        *check_required_columns(index, operation, shape),
        *value_rules.check_values(index, operation, policy),
        *check_kind_risk(index, operation),
    ]


def static_findings(plan: Plan, policy: Policy, shape: TargetShape, *, revert: bool = False) -> list[Finding]:
    """All rules that need no dry run, plan-wide first.

    A revert's values come from the rows as they were, not from an LLM, so its text is not
    screened for characters no person types: it puts back what the database held.
    """
    findings = check_plan_size(plan, policy, revert=revert)
    if not revert:
        findings.extend(value_rules.check_plan_text(plan))
    for index, operation in enumerate(plan.operations):
        findings.extend(operation_findings(index, operation, policy, shape, revert=revert))
    return findings


# ---------------------------------------------------------------- helpers for the dry run


def measurable(index: int, findings: Iterable[Finding]) -> bool:
    """Whether an operation can be compiled and counted (its table and columns are fine)."""
    return not any(item.operation_index == index and item.rule in UNMEASURABLE_RULES for item in findings)


def overall_risk(findings: Sequence[Finding]) -> Risk:
    """The highest risk any finding gives; low when there are none."""
    return max((item.risk for item in findings), key=lambda risk: risk.rank, default=Risk.LOW)
