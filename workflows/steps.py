"""Running one step of a ticket: a local activity on this worker, or an activity through the server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

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


def describe(error: FailureError) -> str:
    """What went wrong, in words for the ticket's outcome: the application's message if there is one."""
    cause: BaseException | None = error
    while isinstance(cause, ActivityError) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause or error)


async def run_step(step: Step, argument: Any) -> Any:
    """Run `step`; a `FailureError` (local or not) once every policy is spent."""
    if step.local is not None:
        try:
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
    return await workflow.execute_activity(
        step.name,
        argument,
        result_type=step.result_type,
        task_queue=step.task_queue,
        start_to_close_timeout=step.options.start_to_close,
        heartbeat_timeout=step.options.heartbeat,
        schedule_to_close_timeout=step.options.schedule_to_close,
        retry_policy=step.options.retry,
    )
