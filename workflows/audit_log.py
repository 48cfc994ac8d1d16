"""The ticket's audit events on their way to the app DB: in order, once each, and never failing the ticket."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from core import names
    from core.models import RecordEventInput, RecordEventsInput
    from workflows import options
    from workflows.steps import Step, describe, run_step

# Ends the workflow task before a batch that rests on its local results: the shortest timer there is.
LOCAL_RESULTS_RECORDED_FIRST = timedelta(milliseconds=1)

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
        self._local_result_at = -1  # the history's length when a local step last returned
        self._unrecorded_from: int | None = None  # the first queued event that may rest on an unrecorded result

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
        if self._unrecorded_from is not None:
            self._unrecorded_from += len(events)

    def queue(self, event: RecordEventInput) -> None:
        """Queue `event` with a key of its own: the n-th event of this content in this run.

        A workflow task that wrote a batch (a local activity) can be lost before it is recorded;
        the run then goes on from its history, where signals fall differently and batches form
        differently. What the events say comes from history alone (`local_result`), so content and
        occurrence do not change, and each event is written once.
        """
        content = f"{event.kind.value}|{event.actor}|{event.summary}".encode()
        signature = f"{event.kind.value}/{hashlib.sha256(content).hexdigest()[:12]}"
        self._seen[signature] = occurrence = self._seen.get(signature, 0) + 1
        key = f"{workflow.info().run_id}/{signature}/{occurrence}"
        if self._unrecorded_from is None and self._in_task_of_local_result():
            self._unrecorded_from = len(self._queue)
        self._queue.append(event.model_copy(update={"detail": {**event.detail, names.AUDIT_EVENT_KEY: key}}))

    def local_result(self) -> None:
        """A local step returned in this workflow task: its result is in history only once the task completes.

        Events queued after it may rest on it, and a task lost after writing them would be run again
        from history, where the step runs again and may answer otherwise (the rows moved meanwhile):
        the record would then tell a path the ticket did not take (red team 67: "blocked" on record,
        then its plan ran). So those events are written only from a later task (`flush`).
        """
        self._local_result_at = workflow.info().get_current_history_length()

    def _rests_on_unrecorded(self) -> bool:
        """Whether queued events may rest on a local result of this workflow task."""
        return self._unrecorded_from is not None and self._in_task_of_local_result()

    def _in_task_of_local_result(self) -> bool:
        # The history's length changes only when a new workflow task starts.
        return self._local_result_at == workflow.info().get_current_history_length()

    async def flush(
        self, before_durable: Callable[[], Awaitable[object]] | None = None, *, may_hold: bool = False
    ) -> bool:
        """Write every queued event, in order; False if the log refused these or earlier ones for good (logged).

        An earlier refusal counts too: the steps that led here are not all on record, whatever this batch did.
        `before_durable` runs once the flush waits for the app DB: this batch's local tries failed, or an
        earlier batch, written meanwhile by another part of the workflow, already waits for it.

        Events that may rest on a local result of this very task (`local_result`) are written from the next:
        with `may_hold` (the ticket goes on to a step whose end starts one) they stay queued for the next
        flush; else this task ends first, on a timer of a millisecond, so that Temporal records the result.
        """
        while True:
            if self._writing:
                await self._after_the_batch_being_written(before_durable)
            elif self._rests_on_unrecorded() and not may_hold:
                self._writing = True  # other flushes wait their turn behind this one
                try:
                    await workflow.sleep(LOCAL_RESULTS_RECORDED_FIRST)
                finally:
                    self._writing = False
            else:
                break
        held: list[RecordEventInput] = []
        if self._rests_on_unrecorded():
            held = self._queue[self._unrecorded_from :]
            self._queue = self._queue[: self._unrecorded_from]
        self._unrecorded_from = 0 if held else None
        batch, self._queue = self._queue, held
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
