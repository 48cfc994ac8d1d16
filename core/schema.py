"""The app DB: tickets, the append-only audit log and the constraint table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class AppBase(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON}


class TicketRow(AppBase):
    """One row per ticket, kept current by the workflow's audit events for lists and history."""

    __tablename__ = "tickets"

    ticket_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(80), unique=True)
    requester: Mapped[str] = mapped_column(String(200), index=True)
    source: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str | None] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    stage: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(40), index=True)
    risk: Mapped[str | None] = mapped_column(String(20))
    slack_channel: Mapped[str | None] = mapped_column(String(200))
    slack_ts: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class AuditEventRow(AppBase):
    """Append-only: rows are inserted, never updated or deleted."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.ticket_id"), index=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    actor: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(String(20))
    summary: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class TableConstraintRow(AppBase):
    """The system constraint database: what the agent may do to each target table."""

    __tablename__ = "table_constraints"

    table_name: Mapped[str] = mapped_column(String(63), primary_key=True)
    operations: Mapped[list[str]] = mapped_column(default=list)
    protected_columns: Mapped[list[str]] = mapped_column(default=list)
    sensitive_columns: Mapped[list[str]] = mapped_column(default=list)
    private_columns: Mapped[list[str]] = mapped_column(default=list, server_default="[]")
    tenant_key: Mapped[str | None] = mapped_column(String(63))
    ordinary_foreign_keys: Mapped[list[str]] = mapped_column(default=list, server_default="[]")
    value_rules: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    auto_approve_rows: Mapped[int] = mapped_column(Integer, default=0)
    max_rows: Mapped[int] = mapped_column(Integer, default=100)
    description: Mapped[str] = mapped_column(Text, default="")
    revert: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class PolicySettingRow(AppBase):
    """Plan-wide limits and approvals needed per risk level, as key → integer."""

    __tablename__ = "policy_settings"

    key: Mapped[str] = mapped_column(String(63), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


class DashboardSessionRow(AppBase):
    """A signed-in dashboard session; the cookie names it, so ending the row ends every copy of the cookie.

    Only a SHA-256 of the session's random id is kept: reading this table does not let anyone sign in.
    """

    __tablename__ = "dashboard_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(100), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(String(40))


class PolicyListRow(AppBase):
    """Plan-wide lists of the policy (e.g. `private_patterns`), as key → JSON list."""

    __tablename__ = "policy_lists"

    key: Mapped[str] = mapped_column(String(63), primary_key=True)
    items: Mapped[list[str]] = mapped_column(default=list)
