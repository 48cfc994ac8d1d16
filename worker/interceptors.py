"""Timing every activity attempt by outcome, and counting LLM outcomes and Slack failures.

An interceptor sees each attempt of each activity in one place, so no activity needs metric
code of its own. It records through `activity.metric_meter()`, which already tags the
activity type, namespace and task queue, and the worker's runtime exports it with the SDK
metrics on METRICS_PORT.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from core.models import NotifyInput, NotifyResult
from core.names import ACTIVITY_NOTIFY, ACTIVITY_PLAN_TICKET
from core.observability import names

OK = "ok"
CANCELLED = "cancelled"


def outcome_of(error: BaseException | None) -> str:
    """`ok`, `cancelled`, the ApplicationError's type (`RateLimited`, `Unavailable`, ...) or the exception's class."""
    if error is None:
        return OK
    if isinstance(error, asyncio.CancelledError):
        return CANCELLED
    if isinstance(error, ApplicationError):
        return error.type or "ApplicationError"
    return type(error).__name__


class _ActivityMetrics(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        began = time.monotonic()
        error: BaseException | None = None
        result: Any = None
        try:
            result = await self.next.execute_activity(input)
            return result
        except BaseException as raised:
            error = raised
            raise
        finally:
            _record(input, outcome_of(error), timedelta(seconds=time.monotonic() - began), result)


def _record(input: ExecuteActivityInput, outcome: str, took: timedelta, result: Any) -> None:
    meter = activity.metric_meter()
    meter.create_histogram_timedelta(
        names.ACTIVITY_DURATION, "One activity attempt, by activity type and outcome.", "s"
    ).record(took, {"outcome": outcome})
    activity_type = activity.info().activity_type
    if activity_type == ACTIVITY_PLAN_TICKET:
        meter.create_counter(names.LLM_CALLS, "Planning attempts, by outcome (ok or the error type).").add(
            1, {"outcome": outcome}
        )
    elif activity_type == ACTIVITY_NOTIFY:
        failure = outcome if outcome != OK else ("undelivered" if _undelivered(result) else None)
        if failure is not None:
            event = _posts(input.args[0]) if input.args and isinstance(input.args[0], NotifyInput) else ""
            meter.create_counter(
                names.NOTIFY_FAILURES,
                "Slack notifications that failed: an attempt to be retried (error type) or given up (undelivered).",
            ).add(1, {"event": event, "failure": failure})


def _posts(input: NotifyInput) -> str:
    """The label for a delivery: what it posts besides the message edit ("stage" for none)."""
    return ",".join(sorted({post.kind.value for post in input.posts})) or "stage"


def _undelivered(result: Any) -> bool:
    return isinstance(result, NotifyResult) and not result.delivered


class ActivityMetricsInterceptor(Interceptor):
    """Worker interceptor: wraps each activity in `_ActivityMetrics`."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityMetrics(next)
