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

# Events per batch at most: a batch in flight when the run continues as new is carried whole (it may have
# landed), so it must leave room within what a run carries (`MAX_CARRIED_EVENTS`, workflows/ticket.py).
MAX_BATCH = 100

WRITE_EVENTS = Step(names.ACTIVITY_RECORD_EVENTS, options.RECORD_EVENTS_DURABLE, local=options.RECORD_EVENTS)


class AuditLog:
    """Queues events and writes them as one batch, in one transaction, before a plan runs, where the
    ticket rests (a wait for approval) and at its end.

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
        # The workflow task (by the history's length when it started) that queued the newest unsettled event
        # waiting in the queue, -1 if none waits.
        self._unsettled_from_task = -1

    @property
    def has_queued(self) -> bool:
        return bool(self._queue)

    @property
    def writing(self) -> bool:
        return self._writing

    @property
    def in_flight(self) -> list[RecordEventInput]:
        """The batch being written, keys and all: it may have landed, or not.

        A run that continues as new carries it whole, then the queue, and the next one writes them
        (`adopt`): their keys keep each on record once, whether or not the batch in flight landed.
        """
        return list(self._in_flight)

    @property
    def queued(self) -> list[RecordEventInput]:
        """The events waiting for a batch, keys and all: none of them is on record."""
        return list(self._queue)

    def adopt(self, events: list[RecordEventInput]) -> None:
        """Queue events a previous run of the ticket could not write, as they are."""
        self._queue = [*events, *self._queue]

    def queue(self, event: RecordEventInput, *, settled: bool = False) -> None:
        """Queue `event` with a key of its own: the n-th event of this content in this run.

        A workflow task that wrote a batch (a local activity) can be lost before Temporal records it.
        The run then goes on from its history, with a task that may meet more at once (a timer fired,
        a signal, an activity's answer), at a later `workflow.now()`, and runs the local steps again
        on rows that moved: it can take another path than the lost task took. So an event is written
        only from a task after the one that queued it (`flush`), and the record tells the path taken
        (red teams 67, 68 and 69: "blocked" on record, then the plan ran; an approval counted, then
        the ticket expired; a reminder on record that was never sent). `settled`: the event rests only
        on what history held before this task and on the one answer it acts on, a step's result in
        history (its content and place are the same in any replay), so it may be written from this task.
        """
        content = f"{event.kind.value}|{event.actor}|{event.summary}".encode()
        signature = f"{event.kind.value}/{hashlib.sha256(content).hexdigest()[:12]}"
        self._seen[signature] = occurrence = self._seen.get(signature, 0) + 1
        key = f"{workflow.info().run_id}/{signature}/{occurrence}"
        if not settled:
            self._unsettled_from_task = workflow.info().get_current_history_length()  # new in each workflow task
        self._queue.append(event.model_copy(update={"detail": {**event.detail, names.AUDIT_EVENT_KEY: key}}))

    def _rests_on_this_task(self) -> bool:
        """Whether events queued in this workflow task, not settled, wait in the queue."""
        return self._unsettled_from_task == workflow.info().get_current_history_length()

    async def flush(self, before_durable: Callable[[], Awaitable[object]] | None = None) -> bool:
        """Write every queued event, in order; False if the log refused these or earlier ones for good (logged).

        An earlier refusal counts too: the steps that led here are not all on record, whatever this batch did.
        `before_durable` runs once the flush waits for the app DB: this batch's local tries failed, or an
        earlier batch, written meanwhile by another part of the workflow, already waits for it.

        When events queued in this very task are in the batch, its quick tries go through the server, which
        starts them only once it has recorded this task (`queue`). A timer of a millisecond did the same at
        15 times the cost: the server fired it 110-240 ms late (bench/notes.md item 45).
        """
        while self._writing:
            await self._after_the_batch_being_written(before_durable)
        after_this_task = self._rests_on_this_task()
        self._unsettled_from_task = -1
        left = len(self._queue)  # events queued meanwhile wait for the next flush: a flood cannot hold this one
        while left:
            size = min(left, MAX_BATCH)
            batch, self._queue = self._queue[:size], self._queue[size:]
            left -= size
            await self._write(batch, before_durable, after_this_task=after_this_task)
            after_this_task = False  # the task that queued them is recorded by now
        return self._refused == 0

    async def _write(
        self,
        batch: list[RecordEventInput],
        before_durable: Callable[[], Awaitable[object]] | None,
        *,
        after_this_task: bool,
    ) -> None:
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
            written = RecordEventsInput(events=batch, batch_key=key, chain=chain)
            await run_step(WRITE_EVENTS, written, waiting_for_the_app_db, after_this_task=after_this_task)
        except FailureError as error:
            kinds = [event.kind.value for event in batch]
            workflow.logger.error("audit events %s could not be recorded: %s", kinds, describe(error))
            self._refused += 1
        finally:
            self._writing = self._waiting = False
            self._in_flight = []

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
