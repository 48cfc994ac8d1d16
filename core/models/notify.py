"""Bringing a ticket's Slack message up to date: the notify activity's input and result."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from core.models.base import Model
from core.models.request import SlackMessageRef
from core.models.status import TicketStatus


class NotifyEvent(StrEnum):
    STAGE = "stage"
    REMINDER = "reminder"
    ESCALATION = "escalation"
    OUTCOME = "outcome"


class NotifyPost(Model):
    """A one-off message about the ticket (a reminder, an escalation, the outcome), sent once."""

    kind: NotifyEvent
    key: str  # unique within the ticket; how a retry recognises a post already made


class NotifyInput(Model):
    """Bring the ticket's Slack message up to its newest state, and send `posts`.

    The first attempt sends `status`, the state it was scheduled with: asking the workflow for
    it would cost a query through the server. A retried attempt asks the workflow, so a delivery
    that waited out an outage sends the newest state, not the one it was scheduled with.
    """

    ticket_id: str
    workflow_id: str
    posts: list[NotifyPost] = Field(default_factory=list)
    status: TicketStatus | None = None


class NotifyResult(Model):
    delivered: bool
    message: SlackMessageRef | None = None
    error: str | None = None
    version: int = 0  # the `message_version` of the status that was delivered
    posted: list[str] = Field(default_factory=list)  # keys of the posts made (or found made)
