"""Running one step of a ticket: a local activity on this worker, or an activity through the server."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError, RetryState

with workflow.unsafe.imports_passed_through():
    from workflows.options import ActivityOptions


@dataclass(frozen=True)
class Step:
    """Which activity, with which time-outs and retries, where, and what it returns.

    A step with `local` options tries them first on this worker; when they are spent it
    runs again as a regular activity with `options`, unless the failure cannot be retried.
    """

    name: str
    options: ActivityOptions
    result_type: Any = None
    task_queue: str | None = None  # None: the workflow's own queue
    local: ActivityOptions | None = None


def permanent(error: FailureError) -> ApplicationError | None:
    """The non-retryable application error behind `error`, if that is why it failed."""
    cause = error.cause if isinstance(error, ActivityError) else error
    if isinstance(cause, ApplicationError) and cause.non_retryable:
        return cause
    return None


# How a step's retries can end without the error itself being final.
GAVE_UP = (RetryState.TIMEOUT, RetryState.MAXIMUM_ATTEMPTS_REACHED)
# What a retryable error says of the retry it expects; not true any more once they have run out.
RETRY_PROMISE = re.compile(r"[;,]\s*(it )?will (be )?retr(y|ied)\s*$")


def describe(error: FailureError, bound: timedelta | None = None) -> str:
    """What went wrong, in words for the ticket's outcome: the application's message if there is one.

    One line (a driver's error carries the statement and a link after it); when the retries ran
    out rather than the error being final, it says so, and for how long they ran (`bound`).
    """
    cause: BaseException | None = error
    while isinstance(cause, ActivityError) and cause.cause is not None:
        cause = cause.cause
    message = cause.message if isinstance(cause, ApplicationError) else str(cause or error)
    message = (message.strip().splitlines() or [""])[0]
    if isinstance(error, ActivityError) and error.retry_state in GAVE_UP:
        message = RETRY_PROMISE.sub("", message)
        took = f" for {_duration(bound)}" if bound else ""
        return f"gave up after retrying{took}: {message}"
    return message


def _duration(bound: timedelta) -> str:
    minutes = int(bound.total_seconds() // 60)
    if minutes >= 120:
        return f"{minutes // 60} h"
    return f"{minutes} min" if minutes else f"{int(bound.total_seconds())} s"


async def run_step(
    step: Step,
    argument: Any,
    before_durable: Callable[[], Awaitable[object]] | None = None,
    *,
    after_this_task: bool = False,
) -> Any:
    """Run `step`; a `FailureError` (local or not) once every policy is spent.

    `before_durable` runs when a local step falls back to the durable activity, which may wait minutes.
    `after_this_task`: the quick tries go through the server too, as a regular activity on this worker's
    queue, so that the first starts only once Temporal has recorded the workflow task that asked for it.
    """
    if step.local is not None:
        try:
            if after_this_task:
                return await _through_the_server(step, argument, step.local)
            return await workflow.execute_local_activity(
                step.name,
                argument,
                result_type=step.result_type,
                start_to_close_timeout=step.local.start_to_close,
                retry_policy=step.local.retry,
            )
        except FailureError as error:
            if permanent(error) is not None:
                raise
            workflow.logger.warning("%s did not succeed locally (%s); retrying it durably", step.name, describe(error))
            if before_durable is not None:
                await before_durable()
    return await _through_the_server(step, argument, step.options)


def _through_the_server(step: Step, argument: Any, options: ActivityOptions) -> Awaitable[Any]:
    return workflow.execute_activity(
        step.name,
        argument,
        result_type=step.result_type,
        task_queue=step.task_queue,
        start_to_close_timeout=options.start_to_close,
        heartbeat_timeout=options.heartbeat,
        schedule_to_close_timeout=options.schedule_to_close,
        retry_policy=options.retry,
    )
