"""Timeouts and retry policies of each activity: bounded, so a fault ends in a state a human sees.

Local activities (short reads and writes on this worker) try a few times within about a
second, inside one workflow task; if that is not enough, the same step runs as a regular
activity with a long, time-bounded policy (`Step.fallback`), so a database down for
minutes makes the ticket wait instead of holding workflow tasks or failing it.
"""

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


# Every retry waits at most this long, so a dependency that comes back is used within a minute.
MAX_BACKOFF = timedelta(minutes=1)
# Steps on a ticket's own path (the databases, the LLM) wait at most this long between tries, so a
# plan held back by an outage runs within 30 s of its end (tests/chaos). Slack keeps the minute.
PATH_BACKOFF = timedelta(seconds=20)


def _retry(attempts: int = 0, maximum: timedelta = MAX_BACKOFF, first: timedelta = timedelta(seconds=1)) -> RetryPolicy:
    """Exponential backoff; `attempts` 0 means as many as the schedule-to-close time allows."""
    return RetryPolicy(
        initial_interval=first,
        backoff_coefficient=2.0,
        maximum_interval=maximum,
        maximum_attempts=attempts,
    )


# Three tries within about 0.3 s, inside the workflow task: enough for a blip, never seconds.
QUICK_LOCAL = ActivityOptions(
    start_to_close=timedelta(seconds=5),
    retry=_retry(3, maximum=timedelta(milliseconds=200), first=timedelta(milliseconds=100)),
)

# How long a step that needs the target DB (context, validation, execution) keeps retrying before
# the ticket ends as failed with the reason: an outage past this is for a person to look at.
TARGET_DB_BOUND = timedelta(minutes=30)
# The audit log waits for the app DB as long as the ticket may live: no event is ever dropped.
APP_DB_BOUND = timedelta(days=60)
# Slack: at least a day of retries, then the delivery is given up and audited.
SLACK_BOUND = timedelta(hours=25)

# An app DB that hangs (a held lock, a frozen server) rather than refusing must not hold the workflow
# task for three tries of 5 s: the status queries that tell a verdict wait on that task. Three tries of
# 1.5 s, then the durable write waits for the DB beside the ticket. At full load a local write can take
# that long: a few tickets' writes then go durable (2-3 of 120-132 with 1-2 s tries in 15 s throughput
# runs), which costs a round trip and writes nothing twice (batch keys). A local schedule-to-close did
# not bound the three tries: each try got it as its own time-out (temporalio 1.35).
RECORD_EVENTS = ActivityOptions(start_to_close=timedelta(milliseconds=1500), retry=QUICK_LOCAL.retry)
RECORD_EVENTS_DURABLE = ActivityOptions(
    start_to_close=timedelta(seconds=30), retry=_retry(maximum=PATH_BACKOFF), schedule_to_close=APP_DB_BOUND
)
GATHER_CONTEXT = QUICK_LOCAL
# Asking the ledger whether a plan ran before a ticket is told its execution failed: local only (a poller
# of the task queue could answer "it ran"), and quick, inside the workflow task: backing off for a target
# DB that is down held the task for a minute (the ticket then says whether it ran could not be checked).
FIND_EXECUTION = QUICK_LOCAL
# Asked whether a plan the executor said did not run ran all the same, the ledger is waited for, up to the
# target DB's bound: one try outlasts the lock wait of a run still open (30 s), and a blip of the target DB
# does not end a ticket that would only have been asked again (red team 65).
FIND_EXECUTION_PATIENTLY = ActivityOptions(
    start_to_close=timedelta(seconds=40), retry=_retry(maximum=PATH_BACKOFF), schedule_to_close=TARGET_DB_BOUND
)
VERIFY_REQUEST = QUICK_LOCAL
PLAN_REVERT = QUICK_LOCAL
READ_DURABLE = ActivityOptions(
    start_to_close=timedelta(seconds=30), retry=_retry(maximum=PATH_BACKOFF), schedule_to_close=TARGET_DB_BOUND
)
VERIFY_DECISION = ActivityOptions(
    start_to_close=timedelta(seconds=10), retry=_retry(maximum=PATH_BACKOFF), schedule_to_close=timedelta(hours=1)
)

# The long steps heartbeat every 0.5 s (activities/heartbeat.py) and the worker passes each beat on
# (worker/build.py). Missing beats for 2 s means the worker died: Temporal retries the step a quarter
# of a second later, so a replacement worker picks it up within about 2.5 s of the crash.
HEARTBEAT_TIMEOUT = timedelta(seconds=2)
RETRY_AFTER_DEAD_WORKER = timedelta(milliseconds=250)
PLAN_TICKET = ActivityOptions(
    start_to_close=timedelta(minutes=3),
    heartbeat=HEARTBEAT_TIMEOUT,
    retry=_retry(first=RETRY_AFTER_DEAD_WORKER, maximum=PATH_BACKOFF),
    schedule_to_close=timedelta(minutes=30),
)
EXECUTE_PLAN = ActivityOptions(
    start_to_close=timedelta(minutes=2),
    heartbeat=HEARTBEAT_TIMEOUT,
    retry=_retry(first=RETRY_AFTER_DEAD_WORKER, maximum=PATH_BACKOFF),
    schedule_to_close=TARGET_DB_BOUND,
)
# Notifications heartbeat too: without it, a delivery on a worker that died waited out its 30 s
# start-to-close before the replacement posted the ticket's last message (bench/notes.md).
# Validation runs through the server and heartbeats: a worker that dies mid-validation (a dry run
# waiting on a lock) is noticed in about 2 s, where a local activity's task waited out the 10 s
# workflow task time-out (bench/notes.md item 46). Its answer is then in history, so the events that
# follow from it alone are settled (`AuditLog.queue`).
VALIDATE_PLAN = ActivityOptions(
    start_to_close=timedelta(seconds=30),
    heartbeat=HEARTBEAT_TIMEOUT,
    retry=_retry(first=RETRY_AFTER_DEAD_WORKER, maximum=PATH_BACKOFF),
    schedule_to_close=TARGET_DB_BOUND,
)
NOTIFY = ActivityOptions(
    start_to_close=timedelta(seconds=30),
    heartbeat=HEARTBEAT_TIMEOUT,
    retry=_retry(first=RETRY_AFTER_DEAD_WORKER),
    schedule_to_close=SLACK_BOUND,
)
RESOLVE_APPROVERS = ActivityOptions(start_to_close=timedelta(seconds=30), retry=_retry(), schedule_to_close=SLACK_BOUND)
