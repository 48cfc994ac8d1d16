"""Rules on the values a plan carries: no hidden characters anywhere, and each column's value rules.

Pure functions, like `activities/safety_rules.py`, which applies them to every operation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

from core.models import (
    Finding,
    InsertOperation,
    Plan,
    Risk,
    Scalar,
    UpdateOperation,
    hidden_character,
)
from core.policy import Policy, ValueRule

RULE_HIDDEN_CHARACTER = "hidden_character"
RULE_VALUE_RULE = "value_rule"


def _texts(plan: Plan) -> Iterator[tuple[int | None, str, str]]:
    """Every string of the plan: (operation index or None, where, the string); values have an index."""
    yield None, "the summary", plan.summary
    yield None, "the rationale", plan.rationale
    for index, operation in enumerate(plan.operations):
        for item in getattr(operation, "values", []):
            if isinstance(item.value, str):
                yield index, f"the value for {item.column}", item.value
        for condition in getattr(operation, "filters", []):
            values = condition.value if isinstance(condition.value, list) else [condition.value]
            for value in values:
                if isinstance(value, str):
                    yield index, f"the filter on {condition.column}", value


def check_plan_text(plan: Plan) -> list[Finding]:
    """Control and invisible characters are refused in plan strings, as in ticket text; line breaks and tabs in values.

    A right-to-left override or a zero-width space would show approvers one value and store
    another; a line break in a value ("Bob\n\nApproved by alice") would show them text that
    looks like part of the message around it.
    """
    findings = []
    for index, where, text in _texts(plan):
        hidden = hidden_character(text)
        if hidden:
            problem = f"{hidden}, which no person types"
        elif index is not None and (broken := _line_break(text)):
            problem = f"{broken}, which a single value never holds"
        else:
            continue
        message = f"{where[0].upper()}{where[1:]} contains {problem}."
        findings.append(Finding(rule=RULE_HIDDEN_CHARACTER, risk=Risk.BLOCKED, message=message, operation_index=index))
    return findings


def _line_break(value: str) -> str | None:
    """A newline or tab in a value or filter value, in words: allowed in prose, never in one value."""
    for char in value:
        if char == "\n":
            return "a line break (U+000A)"
        if char == "\t":
            return "a tab (U+0009)"
    return None


def check_values(index: int, operation: object, policy: Policy) -> list[Finding]:
    """Each assigned value against its column's value rule (range, allowed values, pattern)."""
    if not isinstance(operation, InsertOperation | UpdateOperation):
        return []
    table = policy.tables.get(operation.table)
    if table is None:
        return []
    findings = []
    for item in operation.values:
        rule = table.value_rules.get(item.column)
        problem = value_problem(item.value, rule) if rule else None
        if problem:
            message = f"{operation.table}.{item.column} = {item.value!r} is refused: {problem}."
            findings.append(Finding(rule=RULE_VALUE_RULE, risk=Risk.BLOCKED, message=message, operation_index=index))
    return findings


def value_problem(value: Scalar, rule: ValueRule) -> str | None:
    """Why `value` breaks `rule`, in words, or None. NULL is judged by the column, not by the rule."""
    if value is None:
        return None
    if rule.allowed is not None and str(value) not in {str(item) for item in rule.allowed}:
        return f"allowed values are {', '.join(str(item) for item in rule.allowed)}"
    if rule.min is not None or rule.max is not None:
        number = _number(value)
        if number is None:
            return "it must be a number"
        if rule.min is not None and number < rule.min:
            return f"it must be at least {_plain(rule.min)}"
        if rule.max is not None and number > rule.max:
            return f"it must be at most {_plain(rule.max)}"
    if rule.pattern is not None and not re.fullmatch(rule.pattern, str(value)):
        return f"it must match the pattern {rule.pattern}"
    return None


def _number(value: Scalar) -> float | None:
    """`value` as a number to compare with a rule's bounds; integers stay exact, however large."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _plain(number: float) -> str:
    return str(int(number)) if number.is_integer() else str(number)
