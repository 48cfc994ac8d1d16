"""Plans, operations, filters, values and decisions in words, spelled once for every medium.

Slack, the CLI and the dashboard all describe a ticket with these functions, so a value reads
the same everywhere: `NULL`, `true`/`false`, numbers as written and text in single quotes
(bare only in a table cell of its own, where the column names it). Each medium hands in its
`Marks` to set names and values apart (Slack code spans, say) and escape free text; the words
themselves stay here.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from core.models import (
    Assignment,
    Decision,
    DecisionRecord,
    DeleteOperation,
    Filter,
    FilterOperator,
    InsertOperation,
    Operation,
    Plan,
    RevertCheck,
    RowChange,
    RowConflict,
    Scalar,
    SelectOperation,
    UpdateOperation,
)

Value = Scalar | list[Scalar]


def _same(text: str) -> str:
    return text


@dataclass(frozen=True)
class Marks:
    """How a medium marks up the words: names (tables, columns), values, emphasis, people, free text."""

    name: Callable[[str], str] = _same
    value: Callable[[str], str] = _same
    strong: Callable[[str], str] = _same
    person: Callable[[str], str] = _same
    text: Callable[[str], str] = _same


PLAIN = Marks()

OPERATOR_WORDS: dict[FilterOperator, str] = {
    FilterOperator.EQ: "=",
    FilterOperator.NE: "≠",
    FilterOperator.LT: "<",
    FilterOperator.LE: "≤",
    FilterOperator.GT: ">",
    FilterOperator.GE: "≥",
    FilterOperator.IN: "in",
    FilterOperator.LIKE: "like",
    FilterOperator.IS_NULL: "is null",
    FilterOperator.NOT_NULL: "is not null",
}
UNARY_OPERATORS = frozenset({FilterOperator.IS_NULL, FilterOperator.NOT_NULL})


# ------------------------------------------------------------------ counts and values


def count(number: int, noun: str) -> str:
    """`1 row`, `3 rows`, `0 approvals`."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def cell_text(value: Value) -> str:
    """A value alone in a table cell: NULL, true/false, numbers as written, text as it is."""
    if isinstance(value, list):
        return "(" + ", ".join(value_text(item) for item in value) + ")"
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "".join(_unseen(character) or character for character in value)
    return str(value)


def value_text(value: Value) -> str:
    """A value inside a sentence: as `cell_text`, with text in single quotes so it stands apart.

    A quote or backslash inside the text is escaped, so `x' and name = 'sso` cannot read as a second
    condition, and a character no one sees (zero-width, bidirectional control) is spelled `\\u200b`, so
    `'ad\\u200bmin'` does not pass for `'admin'` (red team 27).
    """
    if isinstance(value, str):
        return "'" + "".join(_spelled(character) for character in value) + "'"
    return cell_text(value)


def _spelled(character: str) -> str:
    if character in "'\\":
        return "\\" + character
    return _unseen(character) or character


def _unseen(character: str) -> str | None:
    """`\\u200b` for a character that shows as nothing or as a plain space: controls, format, separators."""
    if character != " " and unicodedata.category(character)[0] in "CZ":
        return f"\\u{ord(character):04x}"
    return None


# ------------------------------------------------------------------ filters and assignments


def filter_text(item: Filter, marks: Marks = PLAIN) -> str:
    """`customer_id = 1`, `name in ('a', 'b')`, `deleted_at is null`."""
    words = f"{marks.name(item.column)} {marks.text(OPERATOR_WORDS[item.op])}"
    return words if item.op in UNARY_OPERATORS else f"{words} {marks.value(value_text(item.value))}"


def assignment_text(column: str, value: Value, marks: Marks = PLAIN) -> str:
    """`plan_id = 3`: a value written, or a column of a row shown."""
    return f"{marks.name(column)} = {marks.value(value_text(value))}"


def assignments_text(items: Iterable[Assignment], marks: Marks = PLAIN) -> str:
    return ", ".join(assignment_text(item.column, item.value, marks) for item in items)


def conditions(operation: Operation, marks: Marks = PLAIN) -> list[str]:
    """Each filter of an operation in words; an insert has none."""
    return [] if isinstance(operation, InsertOperation) else [filter_text(item, marks) for item in operation.filters]


def rows_text(operation: Operation, marks: Marks = PLAIN) -> str:
    """Which rows an operation touches: its filters joined by `and`, `every row`, or `new row`."""
    if isinstance(operation, InsertOperation):
        return "new row"
    return " and ".join(conditions(operation, marks)) or "every row"


# ------------------------------------------------------------------ operations and plans


def columns_text(operation: SelectOperation, marks: Marks = PLAIN) -> str:
    return ", ".join(marks.name(column) for column in operation.columns) or "all columns"


def limit_text(operation: SelectOperation) -> str:
    return f"at most {count(operation.limit, 'row')}"


def changes(operation: Operation, marks: Marks = PLAIN) -> list[str]:
    """What an operation reads (its columns and limit) or writes (one assignment each); a delete, nothing."""
    if isinstance(operation, SelectOperation):
        return [columns_text(operation, marks), limit_text(operation)]
    if isinstance(operation, InsertOperation | UpdateOperation):
        return [assignment_text(item.column, item.value, marks) for item in operation.values]
    return []


def change_text(operation: Operation, marks: Marks = PLAIN) -> str:
    """What an operation does to the rows it touches: `read a, b (at most 5 rows)`, `set a = 1`, …"""
    if isinstance(operation, SelectOperation):
        return f"{marks.strong('read')} {columns_text(operation, marks)} ({limit_text(operation)})"
    if isinstance(operation, InsertOperation):
        return f"{marks.strong('insert')} {assignments_text(operation.values, marks)}"
    if isinstance(operation, UpdateOperation):
        return f"{marks.strong('set')} {assignments_text(operation.values, marks)}"
    return marks.strong("delete")


def operation_text(operation: Operation, marks: Marks = PLAIN) -> str:
    """One sentence per operation, kind, table, values and filters, no SQL: what a reviewer checks."""
    table = marks.name(operation.table)
    where = " and ".join(conditions(operation, marks))
    where_text = f" where {where}" if where else " " + marks.strong("(every row)")
    if isinstance(operation, SelectOperation):
        read = f"{marks.strong('read')} {columns_text(operation, marks)} from {table}"
        return f"{read}{f' where {where}' if where else ''} ({limit_text(operation)})"
    if isinstance(operation, InsertOperation):
        return f"{marks.strong('insert')} into {table}: {assignments_text(operation.values, marks)}"
    if isinstance(operation, UpdateOperation):
        return f"{marks.strong('update')} {table}: set {assignments_text(operation.values, marks)}{where_text}"
    if isinstance(operation, DeleteOperation):
        return f"{marks.strong('delete')} from {table}{where_text}"
    raise TypeError(f"unknown operation {operation!r}")  # pragma: no cover - the union is exhaustive


def plan_lines(plan: Plan, marks: Marks = PLAIN) -> list[str]:
    """The plan's operations as a numbered list, in the order they run."""
    return [f"{number}. {operation_text(operation, marks)}" for number, operation in enumerate(plan.operations, 1)]


# ------------------------------------------------------------------ rows before and after


def row_text(row: Mapping[str, Scalar], keys: Iterable[str] | None = None, marks: Marks = PLAIN) -> str:
    """A row, or the chosen columns of it, as `id = 2, role = 'viewer'`."""
    shown = row if keys is None else keys
    return ", ".join(assignment_text(key, row.get(key), marks) for key in shown)


def row_change_text(change: RowChange, marks: Marks = PLAIN) -> str:
    """`new row: …`, `removed: …`, or each changed column as `role: 'viewer' → 'admin'`."""
    before, after = change.before, change.after
    if before is None and after is not None:
        return "new row: " + row_text(after, marks=marks)
    if after is None and before is not None:
        return "removed: " + row_text(before, marks=marks)
    before, after = before or {}, after or {}
    changed = [key for key in after if before.get(key) != after.get(key)]
    if not changed:
        return "unchanged"
    return ", ".join(
        f"{marks.name(key)}: {marks.value(value_text(before.get(key)))} → {marks.value(value_text(after.get(key)))}"
        for key in changed
    )


# ------------------------------------------------------------------ undo: the link both ways, and conflicts


def window_in_words(window: timedelta) -> str:
    """The window in words: "7 days", "12 h", "5 min"."""
    seconds = window.total_seconds()
    if seconds >= 86400:
        days = round(seconds / 86400, 1)
        return f"{days:g} day{'s' if days != 1 else ''}"
    if seconds >= 3600:
        return f"{round(seconds / 3600, 1):g} h"
    return f"{max(1, round(seconds / 60))} min"


def reverts_text(original: str, marks: Marks = PLAIN) -> str:
    """`reverts T-x`: said of a revert ticket (`original` is the label of the ticket it undoes)."""
    return f"reverts {marks.strong(original)}"


def reverted_by_text(revert: str, marks: Marks = PLAIN) -> str:
    """`reverted by T-y`: said of a ticket whose change a later ticket undid."""
    return f"reverted by {marks.strong(revert)}"


def conflicts_heading(check: RevertCheck, original: str, marks: Marks = PLAIN) -> str:
    """What the conflicts mean for the revert: it is blocked by them, or it would overwrite them."""
    rows = count(len(check.conflicts), "row")
    changed = f"{rows} changed by someone else since {original} ran"
    if check.include_conflicts:
        return f"{changed}: this revert {marks.strong('overwrites')} those changes"
    return f"{changed}: the revert is {marks.strong('blocked')} so as not to overwrite them"


CONFLICT_SIDES = ("before", "after", "now")
MISSING_ROW = {"before": "no row (inserted by the change)", "after": "no row (deleted by the change)", "now": "no row"}


def conflict_columns(conflict: RowConflict) -> list[str]:
    """The columns that tell the three states apart; every column when the row is missing from one."""
    rows = [getattr(conflict, side) for side in CONFLICT_SIDES]
    present = [row for row in rows if row is not None]
    columns = list(dict.fromkeys(column for row in present for column in row))
    if len(present) < len(rows):
        return columns
    return [column for column in columns if len({repr(row.get(column)) for row in present}) > 1]


def conflict_side_text(conflict: RowConflict, side: str, marks: Marks = PLAIN) -> str:
    """One state of a conflicting row, its telling columns only: `status = 'void'`, or `no row`."""
    row = getattr(conflict, side)
    if row is None:
        return MISSING_ROW[side]
    return row_text(row, conflict_columns(conflict), marks) or "unchanged"


def conflict_title(conflict: RowConflict, marks: Marks = PLAIN) -> str:
    """`invoices` row `3`: which row is in conflict."""
    return f"{marks.name(conflict.table)} row {marks.value(conflict.key)}"


def conflict_lines(conflict: RowConflict, marks: Marks = PLAIN) -> list[str]:
    """The row, then `before: …`, `after: …`, `now: …`: before the change, right after it, and today."""
    return [
        conflict_title(conflict, marks),
        *(f"{side}: {conflict_side_text(conflict, side, marks)}" for side in CONFLICT_SIDES),
    ]


# ------------------------------------------------------------------ decisions


def decision_verb(decision: Decision) -> str:
    """`approved`, `rejected`, or `rejected for a new plan` when the rejecter asked for one."""
    if decision.approve:
        return "approved"
    return "rejected for a new plan" if decision.replan else "rejected"


def decision_text(decision: Decision, marks: Marks = PLAIN) -> str:
    """`approved by alice via slack: looks right`."""
    line = f"{decision_verb(decision)} by {marks.person(decision.decider)} via {decision.source.value}"
    return f"{line}: {marks.text(decision.comment)}" if decision.comment else line


def verdict_text(record: DecisionRecord) -> str:
    """The workflow's verdict on a decision: `counted`, or `ignored: why`."""
    return "counted" if record.accepted else f"ignored: {record.reason}"


def capitalized(text: str) -> str:
    """The first letter up, the rest as it is (names and values keep their case)."""
    return text[:1].upper() + text[1:]


def decision_lines(records: Sequence[DecisionRecord], marks: Marks = PLAIN) -> list[str]:
    """The decisions that counted, one sentence each: `Approved by alice via slack`."""
    return [capitalized(decision_text(record.decision, marks)) for record in records if record.accepted]
