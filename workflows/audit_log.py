"""The ticket's audit events on their way to the app DB: in order, once each, and never failing the ticket."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from core import names
    from core.models import RecordEventInput, RecordEventsInput
    from workflows import options
    from workflows.steps import Step, describe, run_step

WRITE_EVENTS = Step(names.ACTIVITY_RECORD_EVENTS, options.RECORD_EVENTS_DURABLE, local=options.RECORD_EVENTS)


class AuditLog:
    """Queues events and writes them as one batch, in one transaction, when the ticket is about to
    leave this worker (a step on another queue, a wait, the end).

    Each batch carries a key made here, the same for every attempt: a local try that committed
    but timed out, then the durable retry, append it once. While the app DB is down the flush
    waits, and with it the ticket; nothing is dropped.
    """

    def __init__(self) -> None:
        self._queue: list[RecordEventInput] = []
        self._seen: dict[str, int] = {}
        self._batches = 0
        self._refused = 0  # batches the log refused for good: the record of this ticket has a gap
        self._writing = False  # one batch at a time, so batches reach the log in the order they were queued
        self._waiting = False  # the batch being written failed its local tries: it waits for the app DB
        self._in_flight: list[RecordEventInput] = []  # the batch being written

    @property
    def has_queued(self) -> bool:
        return bool(self._queue)

    @property
    def writing(self) -> bool:
        return self._writing

    def unrecorded(self) -> list[RecordEventInput]:
        """Events not known to be on record (the batch being written, then the queue), keys and all.

        A run that continues as new carries them, and the next one writes them (`adopt`): their keys
        keep each on record once, whether or not the batch in flight landed.
        """
        return [*self._in_flight, *self._queue]

    def adopt(self, events: list[RecordEventInput]) -> None:
        """Queue events a previous run of the ticket could not write, as they are."""
        self._queue = [*events, *self._queue]

    def queue(self, event: RecordEventInput) -> None:
        """Queue `event` with a key of its own: the n-th event of this kind by this actor in this run.

        A workflow task that wrote a batch (a local activity) can be lost before Temporal records it;
        the run then goes on from its history, where signals fall differently and batches form
        differently, and re-runs the local steps before it, whose results can differ (the context
        step counts rows and audit entries that moved meanwhile). Kind, actor and occurrence do not
        change, so each event is written once: the one on record is the first written, possibly with
        what the lost task saw.
        """
        content = f"{event.kind.value}|{event.actor}".encode()
        signature = f"{event.kind.value}/{hashlib.sha256(content).hexdigest()[:12]}"
        self._seen[signature] = occurrence = self._seen.get(signature, 0) + 1
        key = f"{workflow.info().run_id}/{signature}/{occurrence}"
        self._queue.append(event.model_copy(update={"detail": {**event.detail, names.AUDIT_EVENT_KEY: key}}))

    async def flush(self, before_durable: Callable[[], Awaitable[object]] | None = None) -> bool:
        """Write every queued event, in order; False if the log refused these or earlier ones for good (logged).

        An earlier refusal counts too: the steps that led here are not all on record, whatever this batch did.
        `before_durable` runs once the flush waits for the app DB: this batch's local tries failed, or an
        earlier batch, written meanwhile by another part of the workflow, already waits for it.
        """
        if self._writing:
            await self._after_the_batch_being_written(before_durable)
        batch, self._queue = self._queue, []
        if not batch:
            return self._refused == 0
        self._batches += 1
        key = f"{workflow.info().run_id}/{self._batches}"

        async def waiting_for_the_app_db() -> None:
            self._waiting = True
            if before_durable is not None:
                await before_durable()

        self._writing = True
        self._in_flight = batch
        try:
            chain = workflow.info().first_execution_run_id
            await run_step(
                WRITE_EVENTS, RecordEventsInput(events=batch, batch_key=key, chain=chain), waiting_for_the_app_db
            )
        except FailureError as error:
            kinds = [event.kind.value for event in batch]
            workflow.logger.error("audit events %s could not be recorded: %s", kinds, describe(error))
            self._refused += 1
        finally:
            self._writing = self._waiting = False
            self._in_flight = []
        return self._refused == 0

    async def _after_the_batch_being_written(self, before_durable: Callable[[], Awaitable[object]] | None) -> None:
        if before_durable is not None:
            await workflow.wait_condition(lambda: not self._writing or self._waiting)
            if self._writing:
                await before_durable()
        await workflow.wait_condition(lambda: not self._writing)

    async def note_elsewhere(self, event: RecordEventInput) -> None:
        """One event on another ticket's record (a revert, on the ticket it undid); a failure is only logged.

        It says something about that other ticket, so it never holds up or counts against this one's record.
        """
        key = f"{workflow.info().run_id}/elsewhere/{event.ticket_id}/{event.kind.value}"
        event = event.model_copy(update={"detail": {**event.detail, names.AUDIT_EVENT_KEY: key}})
        try:
            await run_step(WRITE_EVENTS, RecordEventsInput(events=[event], batch_key=key))
        except FailureError as error:
            workflow.logger.warning("audit event on %s could not be recorded: %s", event.ticket_id, describe(error))
