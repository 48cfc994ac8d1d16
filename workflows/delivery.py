"""The ticket's Slack message, delivered beside the ticket, never in its way.

The workflow says what it wants shown (`want`) and moves on. One loop per ticket sends it:
one delivery activity at a time, carrying the status as it stands, masked as the status query
masks it (private values, and what a private lookup matched until people approve). A retried
attempt asks the workflow for its newest status instead, so however many stages pass during a
Slack outage, the message catches up in one edit.
One-off posts (reminders, escalations, the outcome reply) carry keys and are sent once.
A delivery retries for over a day (backoff capped at a minute), then is given up and audited.
"""

from __future__ import annotations

from collections.abc import Callable

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from core import names
    from core.masking import mask_status
    from core.models import (
        AuditEventKind,
        NotifyEvent,
        NotifyInput,
        NotifyPost,
        NotifyResult,
        RecordEventInput,
        TicketStatus,
    )
    from workflows import options
    from workflows.steps import Step, describe, run_step

DELIVER = Step(names.ACTIVITY_NOTIFY, options.NOTIFY, NotifyResult)


class MessageDelivery:
    def __init__(self, status: TicketStatus, audit: Callable[[RecordEventInput], None]) -> None:
        self._status = status
        self._audit = audit
        self._posts: list[NotifyPost] = []
        self._held = False

    @property
    def owed(self) -> bool:
        return self._status.message_owed

    def owe_and_hold(self) -> None:
        """The state changed and the message is owed from now on, but nothing is sent before `release`:
        the outcome goes on record first, maybe a workflow task later (`AuditLog.flush`)."""
        self._status.message_version += 1
        self._held = True

    def release(self, *posts: NotifyEvent) -> None:
        """Send what is owed, and `posts` once each."""
        self._held = False
        self.want(*posts)

    def want(self, *posts: NotifyEvent) -> None:
        """Show the ticket's current state, and send `posts` once each."""
        self._status.message_version += 1
        for kind in posts:
            key = f"{kind.value}-{self._status.review_rounds}-{self._status.reminders_sent}"
            if not any(post.key == key for post in self._posts):
                self._posts.append(NotifyPost(kind=kind, key=key))
        self._status.posts_owed = [post.key for post in self._posts]

    async def run(self) -> None:
        """Deliver whenever something is owed; runs for the life of the workflow run."""
        while True:
            await workflow.wait_condition(lambda: self.owed and not self._held)
            posts = list(self._posts)
            version = self._status.message_version
            try:
                result: NotifyResult = await run_step(
                    DELIVER,
                    NotifyInput(
                        ticket_id=self._status.ticket_id,
                        workflow_id=self._status.workflow_id,
                        posts=posts,
                        status=mask_status(self._status),  # what the status query would show, no more
                    ),
                )
            except FailureError as error:
                result = NotifyResult(delivered=False, error=describe(error), version=version)
                result.posted = [post.key for post in posts]  # given up: not retried again
            self._settle(result, posts, version)

    def _settle(self, result: NotifyResult, posts: list[NotifyPost], version: int) -> None:
        status = self._status
        # The activity saw at least the version it was scheduled for, maybe a newer one.
        status.message_delivered = max(status.message_delivered, version, result.version)
        if result.message is not None:
            status.slack_message = result.message
        # A delivery that failed for good is not tried again; its posts are given up with it.
        done = set(result.posted) if result.delivered else {post.key for post in posts}
        self._posts = [post for post in self._posts if post.key not in done]
        status.posts_owed = [post.key for post in self._posts]
        if not result.delivered:
            self._audit(self._event(AuditEventKind.NOTIFY_FAILED, f"notification failed: {result.error}"))
        elif any(post.kind is NotifyEvent.OUTCOME and post.key in done for post in posts):
            self._audit(self._event(AuditEventKind.NOTIFIED, "requester told the outcome"))

    def _event(self, kind: AuditEventKind, summary: str) -> RecordEventInput:
        status = self._status
        return RecordEventInput(
            ticket_id=status.ticket_id, kind=kind, summary=summary, stage=status.stage, status=status.status_label
        )
