"""Audit events: what the workflow writes to the app DB's audit log, one batch per transaction."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field, model_validator

from core.models.base import Model
from core.models.request import TicketRequest
from core.models.safety import Risk
from core.models.status import Stage


class AuditEventKind(StrEnum):
    SUBMITTED = "submitted"
    CONTEXT_GATHERED = "context_gathered"
    PLANNED = "planned"
    VALIDATED = "validated"
    DECIDED = "decided"
    APPROVAL_REQUESTED = "approval_requested"
    REMINDER_SENT = "reminder_sent"
    DECISION_ACCEPTED = "decision_accepted"
    DECISION_IGNORED = "decision_ignored"
    REPLAN_REQUESTED = "replan_requested"
    EXECUTED = "executed"
    ROWS_CHANGED = "rows_changed"
    FAILED = "failed"
    FINISHED = "finished"
    NOTIFIED = "notified"
    NOTIFY_FAILED = "notify_failed"
    REVERTED = "reverted"  # on the original ticket's record, when a revert of it is done


class RecordEventInput(Model):
    """Append one audit event and bring the ticket's row up to date."""

    ticket_id: str
    kind: AuditEventKind
    actor: str | None = None
    source: str | None = None
    summary: str = ""
    detail: dict[str, Any] = Field(default_factory=dict)
    request: TicketRequest | None = None
    stage: Stage | None = None
    status: str | None = None
    risk: Risk | None = None


class RecordEventsInput(Model):
    """Several events of one ticket, in the order they happened, written in one transaction."""

    events: list[RecordEventInput] = Field(min_length=1)
    # Names this batch across every attempt, local or not, so a retry never appends it twice.
    batch_key: str = ""
    # The first run id of the workflow writing: only that ticket's own runs may write to its record.
    chain: str = ""

    @model_validator(mode="after")
    def _one_ticket(self) -> RecordEventsInput:
        if len({event.ticket_id for event in self.events}) > 1:
            raise ValueError("a batch of audit events must all belong to one ticket")
        return self
