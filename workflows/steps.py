"""Running one step of a ticket: a local activity on this worker, or an activity through the server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.options import ActivityOptions


@dataclass(frozen=True)
class Step:
    """Which activity, with which time-outs and retries, where, and what it returns."""

    name: str
    options: ActivityOptions
    result_type: Any = None
    task_queue: str | None = None  # None: the workflow's own queue
    local: bool = False


async def run_step(step: Step, argument: Any) -> Any:
    """Run `step` once, with its retry policy; `ActivityError` when that is spent."""
    if step.local:
        return await workflow.execute_local_activity(
            step.name,
            argument,
            result_type=step.result_type,
            start_to_close_timeout=step.options.start_to_close,
            schedule_to_close_timeout=step.options.schedule_to_close,
            retry_policy=step.options.retry,
        )
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
