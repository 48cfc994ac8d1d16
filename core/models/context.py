"""What the planner may see of the world: schema, named rows, earlier tickets, the audit log."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from core.models.base import Model, Scalar


class ColumnInfo(Model):
    name: str
    type: str
    nullable: bool = True
    primary_key: bool = False
    foreign_key: str | None = None
    private: bool = False  # its values reach the planner only when the ticket text holds them


class TableInfo(Model):
    name: str
    columns: list[ColumnInfo] = Field(default_factory=list)
    row_count: int | None = None


class NamedRows(Model):
    """Rows of one table that the ticket text names (by id, email, slug or name)."""

    table: str
    match: str
    rows: list[dict[str, Scalar]] = Field(default_factory=list)


class PastTicket(Model):
    ticket_id: str
    text: str
    status: str
    created_at: datetime


class AuditEntry(Model):
    ticket_id: str
    kind: str
    actor: str | None = None
    summary: str = ""
    created_at: datetime


class TicketContext(Model):
    """Everything the planner may see, bounded in size (see `max_bytes`)."""

    schema_tables: list[TableInfo] = Field(default_factory=list)
    named_rows: list[NamedRows] = Field(default_factory=list)
    past_tickets: list[PastTicket] = Field(default_factory=list)
    recent_audit: list[AuditEntry] = Field(default_factory=list)
    truncated: bool = False
    redacted: dict[str, int] = Field(default_factory=dict)  # "table.column" -> private values replaced

    def summary(self) -> str:
        rows = sum(len(named.rows) for named in self.named_rows)
        redacted = sum(self.redacted.values())
        return (
            f"{len(self.schema_tables)} tables, {rows} named rows, "
            f"{len(self.past_tickets)} earlier tickets, {len(self.recent_audit)} audit entries"
            + (f", {redacted} private values redacted ({', '.join(sorted(self.redacted))})" if redacted else "")
            + (" (truncated)" if self.truncated else "")
        )
