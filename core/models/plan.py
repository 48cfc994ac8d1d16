"""The plan: typed database operations the LLM (or an agent) proposes, never SQL, and its hash."""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator

from core.models.base import Identifier, Model, Scalar

MAX_OPERATIONS = 20  # in a plan from an LLM or an agent
# In any plan: a revert has an operation per row (or per group of rows) the original changed,
# bounded by the policy's rows per plan, not by what an LLM may propose.
MAX_PLAN_OPERATIONS = 250


class FilterOperator(StrEnum):
    EQ = "eq"
    NE = "ne"
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"
    IN = "in"
    LIKE = "like"
    IS_NULL = "is_null"
    NOT_NULL = "not_null"


# Plan values must survive JSON unchanged: Temporal's converter writes NaN and ±Infinity as null,
# which would turn `eq NaN` into `IS NULL` between the planner and the safety check.
_FINITE_VALUES = ConfigDict(allow_inf_nan=False)


# Bounds on plan values, so what no column or person needs never reaches the database: SQLite
# refuses LIKE patterns past 50,000 characters, and no driver binds integers past 64 bits.
MAX_FILTER_TEXT = 1000
MAX_VALUE_TEXT = 10_000
MIN_PLAN_INT, MAX_PLAN_INT = -(2**63), 2**63 - 1


def bounded_value(value: Scalar, max_text: int) -> Scalar:
    """`value` unchanged, or a ValueError when it is text longer than `max_text` or an integer past 64 bits."""
    if isinstance(value, str) and len(value) > max_text:
        raise ValueError(f"text values are at most {max_text} characters; this one has {len(value)}")
    if isinstance(value, int) and not isinstance(value, bool) and not MIN_PLAN_INT <= value <= MAX_PLAN_INT:
        raise ValueError(f"integer values lie between {MIN_PLAN_INT} and {MAX_PLAN_INT}")
    return value


class Filter(Model):
    """`column operator value`; filters of one operation are joined with AND."""

    model_config = _FINITE_VALUES

    column: Identifier
    op: FilterOperator
    value: Scalar | list[Scalar] = None

    @field_validator("value")
    @classmethod
    def _bounded(cls, value: Scalar | list[Scalar]) -> Scalar | list[Scalar]:
        if isinstance(value, list):
            return [bounded_value(item, MAX_FILTER_TEXT) for item in value]
        return bounded_value(value, MAX_FILTER_TEXT)


class Assignment(Model):
    """`column = value` in an insert or update."""

    model_config = _FINITE_VALUES

    column: Identifier
    value: Scalar

    @field_validator("value")
    @classmethod
    def _bounded(cls, value: Scalar) -> Scalar:
        return bounded_value(value, MAX_VALUE_TEXT)


class SelectOperation(Model):
    kind: Literal["select"] = "select"
    table: Identifier
    columns: list[Identifier] = Field(default_factory=list, max_length=50)
    filters: list[Filter] = Field(default_factory=list, max_length=20)
    limit: int = Field(default=50, ge=1, le=500)


class InsertOperation(Model):
    kind: Literal["insert"] = "insert"
    table: Identifier
    values: list[Assignment] = Field(min_length=1, max_length=50)


class UpdateOperation(Model):
    kind: Literal["update"] = "update"
    table: Identifier
    values: list[Assignment] = Field(min_length=1, max_length=50)
    filters: list[Filter] = Field(default_factory=list, max_length=20)


class DeleteOperation(Model):
    kind: Literal["delete"] = "delete"
    table: Identifier
    filters: list[Filter] = Field(default_factory=list, max_length=20)


Operation = Annotated[
    SelectOperation | InsertOperation | UpdateOperation | DeleteOperation,
    Field(discriminator="kind"),
]


class Plan(Model):
    """The LLM's proposal: typed operations, never SQL."""

    summary: str = Field(max_length=500)
    rationale: str = Field(default="", max_length=2000)
    operations: list[Operation] = Field(default_factory=list, max_length=MAX_PLAN_OPERATIONS)
    planner: str = "unknown"

    def fingerprint(self) -> str:
        """Hash of what would run: approvals are bound to it."""
        return plan_hash(self)


def plan_hash(plan: Plan) -> str:
    """SHA-256 over the operations' canonical JSON (summary and prose excluded)."""
    canonical = json.dumps(
        [operation.model_dump(mode="json") for operation in plan.operations],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
