"""The safety policy: loaded from `manifests/policy.yaml`, kept in the constraint table."""

from __future__ import annotations

import asyncio
import fnmatch
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.models import Risk, Scalar
from core.schema import PolicyListRow, PolicySettingRow, TableConstraintRow

OperationKind = Literal["select", "insert", "update", "delete"]
RiskName = Literal["low", "medium", "high"]
DEFAULT_APPROVALS: dict[RiskName, int] = {"low": 0, "medium": 1, "high": 2}


class PolicyError(Exception):
    """The policy file is missing or malformed."""


class ValueRule(BaseModel):
    """What values a column may be given by a plan: a range, a set, a pattern (any combination)."""

    model_config = ConfigDict(extra="forbid")

    min: float | None = None
    max: float | None = None
    allowed: list[Scalar] | None = None
    pattern: str | None = None  # the whole value must match (Python `re.fullmatch`)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            re.compile(value)
        return value


class TablePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    operations: list[OperationKind] = Field(default_factory=lambda: list[OperationKind](["select"]))
    protected_columns: list[str] = Field(default_factory=list)
    sensitive_columns: list[str] = Field(default_factory=list)
    private_columns: list[str] = Field(default_factory=list)
    tenant_key: str | None = None
    ordinary_foreign_keys: list[str] = Field(default_factory=list)
    value_rules: dict[str, ValueRule] = Field(default_factory=dict)
    auto_approve_rows: int = Field(default=0, ge=0)
    max_rows: int = Field(default=100, ge=0)
    # Whether an executed change may be reverted here, with the inverse operations it needs
    # (a deleted row inserted again with its old key, an inserted row deleted).
    revert: bool = False


class PolicyLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_operations: int = Field(default=10, ge=1)
    high_risk_rows: int = Field(default=25, ge=0)
    auto_approve_rows: int = Field(default=1, ge=0)  # distinct rows a whole plan may change unapproved
    max_rows_changed: int = Field(default=200, ge=0)  # distinct rows a whole plan may change at all
    max_rows_returned: int = Field(default=100, ge=0)  # rows all of a plan's selects may return
    requester_budget_rows: int = Field(default=20, ge=0)  # rows one requester may change unapproved ...
    requester_budget_hours: int = Field(default=24, ge=1)  # ... within this rolling window
    dry_run_timeout_ms: int = Field(default=2000, ge=10)


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approvals: dict[RiskName, int] = Field(default_factory=lambda: dict(DEFAULT_APPROVALS))
    limits: PolicyLimits = Field(default_factory=PolicyLimits)
    private_patterns: list[str] = Field(default_factory=list)  # column names private in every table
    tables: dict[str, TablePolicy] = Field(default_factory=dict)

    def approvals_for(self, risk: Risk) -> int:
        """Distinct approvers a plan of this risk needs (blocked plans never run)."""
        if risk is Risk.BLOCKED:
            return 0
        return self.approvals.get(risk.value, 1)  # type: ignore[call-overload]

    def private_columns(self, table: str, columns: Iterable[str]) -> list[str]:
        """Which of a table's `columns` are private: listed for the table, or matching a private pattern."""
        listed = set(self.tables[table].private_columns) if table in self.tables else set()
        patterns = [pattern.lower() for pattern in self.private_patterns]
        return [
            name
            for name in columns
            if name in listed or any(fnmatch.fnmatchcase(name.lower(), pattern) for pattern in patterns)
        ]


def load_policy_file(path: Path) -> Policy:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise PolicyError(f"cannot read policy file {path}: {error}") from error
    try:
        return Policy.model_validate(raw or {})
    except ValidationError as error:
        raise PolicyError(f"policy file {path} is invalid: {error}") from error


async def store_policy(sessions: async_sessionmaker[AsyncSession], policy: Policy) -> None:
    """Replace the constraint table's contents with `policy`, in one transaction."""
    async with sessions.begin() as session:
        await session.execute(delete(TableConstraintRow))
        await session.execute(delete(PolicySettingRow))
        for name, table in policy.tables.items():
            session.add(TableConstraintRow(table_name=name, **table.model_dump()))
        for risk, count in policy.approvals.items():
            session.add(PolicySettingRow(key=f"approvals.{risk}", value=count))
        for key, value in policy.limits.model_dump().items():
            session.add(PolicySettingRow(key=f"limits.{key}", value=value))
        await session.execute(delete(PolicyListRow))
        session.add(PolicyListRow(key="private_patterns", items=list(policy.private_patterns)))


async def read_policy(sessions: async_sessionmaker[AsyncSession]) -> Policy:
    """The policy as the constraint table holds it now."""
    async with sessions() as session:
        tables = (await session.scalars(select(TableConstraintRow))).all()
        settings = {row.key: row.value for row in (await session.scalars(select(PolicySettingRow))).all()}
        lists = {row.key: row.items for row in (await session.scalars(select(PolicyListRow))).all()}
    approvals = {key.split(".", 1)[1]: value for key, value in settings.items() if key.startswith("approvals.")}
    limits = {key.split(".", 1)[1]: value for key, value in settings.items() if key.startswith("limits.")}
    raw: dict[str, object] = {
        "limits": limits,
        "private_patterns": lists.get("private_patterns", []),
        "tables": {
            row.table_name: TablePolicy(
                description=row.description,
                operations=row.operations,  # type: ignore[arg-type]
                protected_columns=row.protected_columns,
                sensitive_columns=row.sensitive_columns,
                private_columns=row.private_columns,
                tenant_key=row.tenant_key,
                ordinary_foreign_keys=row.ordinary_foreign_keys,
                value_rules=row.value_rules,  # type: ignore[arg-type]
                auto_approve_rows=row.auto_approve_rows,
                max_rows=row.max_rows,
                revert=row.revert,
            )
            for row in tables
        },
    }
    if approvals:
        raw["approvals"] = approvals
    return Policy.model_validate(raw)


# How stale a cached policy may be: a change to the constraint table reaches running workers within this.
POLICY_CACHE_SECONDS = 5.0


class PolicyCache:
    """The stored policy, read from the constraint table at most once every `max_age` seconds.

    Context and safety need it for every ticket; reading two tables and validating them each
    time is a cost per ticket for something that changes only when `init-db` stores a new
    policy. Callers must not modify the returned policy: it is shared until the next read.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], max_age: float = POLICY_CACHE_SECONDS) -> None:
        self._sessions = sessions
        self._max_age = max_age
        self._policy: Policy | None = None
        self._read_at = 0.0
        self._lock = asyncio.Lock()

    async def current(self) -> Policy:
        policy = self._fresh()
        if policy is not None:
            return policy
        async with self._lock:  # one read for everyone waiting, not one each
            policy = self._fresh()
            if policy is None:
                policy = await read_policy(self._sessions)
                self._policy, self._read_at = policy, time.monotonic()
        return policy

    def _fresh(self) -> Policy | None:
        if self._policy is not None and time.monotonic() - self._read_at < self._max_age:
            return self._policy
        return None
