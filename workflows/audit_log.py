"""The ticket's audit events on their way to the app DB: in order, and never failing the ticket."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from core import names
    from core.models import RecordEventInput, RecordEventsInput
    from workflows import options


class AuditLog:
    """Queues events and writes them with local activities.

    `batched` (tickets begun since the batching patch): the queue is written as one batch, in
    one transaction, when the ticket is about to leave this worker (`flush_before_leaving`).
    Otherwise each event is written as it is recorded, as older tickets' histories show.
    """

    def __init__(self) -> None:
        self.batched = False
        self._queue: list[RecordEventInput] = []

    @property
    def has_queued(self) -> bool:
        return bool(self._queue)

    def queue(self, event: RecordEventInput) -> None:
        """For signal handlers, which cannot run activities: written by the next flush."""
        self._queue.append(event)

    def take(self) -> list[RecordEventInput]:
        """Every queued event, for a local activity that writes them itself; the queue is left empty."""
        taken, self._queue = self._queue, []
        return taken

    async def record(self, event: RecordEventInput) -> None:
        self._queue.append(event)
        if not self.batched:
            await self.flush()

    async def flush_before_leaving(self) -> None:
        """Before a step on another queue, a wait or the end: the log shows everything up to here."""
        if self.batched:
            await self.flush()

    async def flush(self) -> None:
        """Write every queued event, in order."""
        if self.batched:
            batch = self.take()
            if batch:
                await self._write(names.ACTIVITY_RECORD_EVENTS, RecordEventsInput(events=batch), batch)
            return
        while self._queue:
            event = self._queue.pop(0)
            await self._write(names.ACTIVITY_RECORD_EVENT, event, [event])

    @staticmethod
    async def _write(activity: str, argument: object, events: list[RecordEventInput]) -> None:
        try:
            await workflow.execute_local_activity(
                activity,
                argument,
                start_to_close_timeout=options.RECORD_EVENT.start_to_close,
                retry_policy=options.RECORD_EVENT.retry,
            )
        except ActivityError:
            workflow.logger.error("audit events %s could not be recorded", [event.kind.value for event in events])
