"""Telling people how their ticket is doing, through whichever `Notifier` is configured.

Notification failures never fail a ticket: the notifier returns `delivered=False`, the
workflow carries on, and the audit log shows what went wrong. For tickets that ask
(`NotifyInput.record_delivery`), this activity also writes the audit events the workflow
queued before the notification, and the delivery's own event after it: one local activity
where there were three.
"""

from __future__ import annotations

import logging
from typing import Protocol

from temporalio import activity

from activities.audit import AuditWriter
from core.models import NotifyEvent, NotifyInput, NotifyResult, TicketStatus
from core.names import ACTIVITY_NOTIFY, ticket_label

logger = logging.getLogger(__name__)


class Notifier(Protocol):
    """Delivers one ticket update. Raising means "try again"; returning an error means "give up"."""

    async def publish(self, event: NotifyEvent, status: TicketStatus) -> NotifyResult: ...


def describe(event: NotifyEvent, status: TicketStatus) -> str:
    """One line for logs and consoles: what happened to which ticket."""
    label = ticket_label(status.ticket_id)
    if status.outcome is not None:
        return f"{label} {status.outcome.status.value}: {status.outcome.reason}"
    if event is NotifyEvent.REMINDER:
        return f"{label} is still waiting for approval"
    if event is NotifyEvent.ESCALATION:
        return f"{label} escalated: nobody has decided yet"
    detail = f" (risk {status.report.risk.value})" if status.report else ""
    return f"{label} {status.stage.value}{detail}: {status.request.text[:80]}"


class LogNotifier:
    """Writes each update to the log: the notifier when Slack is not configured."""

    async def publish(self, event: NotifyEvent, status: TicketStatus) -> NotifyResult:
        logger.info("[%s] %s", ticket_label(status.ticket_id), describe(event, status))
        return NotifyResult(delivered=True)


class NotifyActivities:
    def __init__(self, notifier: Notifier, audit: AuditWriter) -> None:
        self._notifier = notifier
        self._audit = audit

    @activity.defn(name=ACTIVITY_NOTIFY)
    async def notify_ticket(self, input: NotifyInput) -> NotifyResult:
        # Each write is keyed to this activity, so a retry after a failed publish appends nothing twice.
        if input.events:
            await self._audit.append(input.events)
        result = await self._notifier.publish(input.event, input.status)
        delivery = result.audit_event(input.event, input.status) if input.record_delivery else None
        if delivery is not None:
            await self._audit.append([delivery], part="delivery")
        return result
