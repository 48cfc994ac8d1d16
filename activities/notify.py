"""Telling people how their ticket is doing, through whichever `Notifier` is configured.

A first attempt sends the status it was scheduled with; a retried one asks the workflow for its
newest, so a delivery that was retried through an outage shows where the ticket is now.
Notification failures never fail a ticket: transient ones are retried by Temporal (for over a
day), permanent ones come back as `delivered=False` and the workflow audits them.
"""

from __future__ import annotations

import logging
from typing import Protocol

from temporalio import activity
from temporalio.client import Client

from activities.heartbeat import heartbeating
from activities.stopping import unless_the_worker_stops
from core.models import NotifyEvent, NotifyInput, NotifyPost, NotifyResult, TicketStatus
from core.names import ACTIVITY_NOTIFY, QUERY_STATUS, ticket_label

logger = logging.getLogger(__name__)


class Notifier(Protocol):
    """Delivers a ticket's state and its one-off posts. Raising means "try again"; returning an error means "give up".

    The result's `posted` names every post made, or found already made by an earlier attempt.
    """

    async def publish(self, status: TicketStatus, posts: list[NotifyPost]) -> NotifyResult: ...


def describe(event: NotifyEvent, status: TicketStatus) -> str:
    """One line for logs and consoles: what happened to which ticket."""
    label = ticket_label(status.ticket_id)
    if event is NotifyEvent.REMINDER:
        return f"{label} is still waiting for approval"
    if event is NotifyEvent.ESCALATION:
        return f"{label} escalated: nobody has decided yet"
    if status.outcome is not None:
        return f"{label} {status.outcome.status.value}: {status.outcome.reason}"
    detail = f" (risk {status.report.risk.value})" if status.report else ""
    return f"{label} {status.stage.value}{detail}: {status.request.text[:80]}"


class LogNotifier:
    """Writes each update to the log: the notifier when Slack is not configured."""

    async def publish(self, status: TicketStatus, posts: list[NotifyPost]) -> NotifyResult:
        # A finished ticket's outcome has a post of its own: an update carrying it first (a delivery
        # that caught up late) would log the same line twice.
        events = [post.kind for post in posts] or ([NotifyEvent.STAGE] if status.outcome is None else [])
        for event in events:
            logger.info("[%s] %s", ticket_label(status.ticket_id), describe(event, status))
        return NotifyResult(delivered=True, posted=[post.key for post in posts])


class StatusSource(Protocol):
    async def __call__(self, workflow_id: str) -> TicketStatus: ...


def query_status(client: Client | None = None) -> StatusSource:
    """Reads a ticket's status with the worker's own client (or `client`)."""

    async def read(workflow_id: str) -> TicketStatus:
        handle = (client or activity.client()).get_workflow_handle(workflow_id)
        return await handle.query(QUERY_STATUS, result_type=TicketStatus)

    return read


class NotifyActivities:
    def __init__(self, notifier: Notifier, status_source: StatusSource | None = None) -> None:
        self._notifier = notifier
        self._status = status_source or query_status()

    @activity.defn(name=ACTIVITY_NOTIFY)
    async def notify_ticket(self, input: NotifyInput) -> NotifyResult:
        # Beats while Slack is slow, so a worker that dies mid-post is noticed in seconds (workflows/options.py).
        async with heartbeating():
            status = input.status if activity.info().attempt == 1 else None
            if status is None:
                # Only a polling workflow worker answers the query, and a stopping one polls no more.
                status = await unless_the_worker_stops(
                    self._status(input.workflow_id), "this worker is stopping; the message is left to the next worker"
                )
            result = await self._notifier.publish(status, input.posts)
        result.version = status.message_version
        return result
