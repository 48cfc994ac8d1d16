"""Timeouts and retry policies of each activity: bounded, so a fault ends in a state a human sees."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio.common import RetryPolicy


@dataclass(frozen=True)
class ActivityOptions:
    start_to_close: timedelta
    retry: RetryPolicy
    heartbeat: timedelta | None = None
    schedule_to_close: timedelta | None = None


def _retry(
    attempts: int, maximum: timedelta = timedelta(seconds=30), first: timedelta = timedelta(seconds=1)
) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=first,
        backoff_coefficient=2.0,
        maximum_interval=maximum,
        maximum_attempts=attempts,
    )


# Audit writes are local activities: small, on the worker's own app DB, no extra server round trip.
RECORD_EVENT = ActivityOptions(start_to_close=timedelta(seconds=15), retry=_retry(10))
# Context and validation only read: local activities too (new tickets; see PATCH_LOCAL_READS).
GATHER_CONTEXT = ActivityOptions(start_to_close=timedelta(seconds=30), retry=_retry(5))
# The long steps heartbeat every 0.5 s (activities/heartbeat.py) and the worker passes each beat on
# (worker/build.py). Missing beats for 2 s means the worker died: Temporal retries the step a quarter
# of a second later, so a replacement worker picks it up within about 2.5 s of the crash. Their first
# retry comes early, so they get two more attempts: they keep retrying as long as with a 1 s start.
HEARTBEAT_TIMEOUT = timedelta(seconds=2)
RETRY_AFTER_DEAD_WORKER = timedelta(milliseconds=250)
PLAN_TICKET = ActivityOptions(
    start_to_close=timedelta(minutes=3),
    heartbeat=HEARTBEAT_TIMEOUT,
    retry=_retry(10, maximum=timedelta(minutes=2), first=RETRY_AFTER_DEAD_WORKER),
    schedule_to_close=timedelta(minutes=30),
)
VALIDATE_PLAN = ActivityOptions(start_to_close=timedelta(seconds=30), retry=_retry(5))
EXECUTE_PLAN = ActivityOptions(
    start_to_close=timedelta(minutes=2),
    heartbeat=HEARTBEAT_TIMEOUT,
    retry=_retry(8, first=RETRY_AFTER_DEAD_WORKER),
)
NOTIFY = ActivityOptions(start_to_close=timedelta(seconds=30), retry=_retry(8, maximum=timedelta(minutes=1)))
RESOLVE_APPROVERS = ActivityOptions(start_to_close=timedelta(seconds=30), retry=_retry(5))
