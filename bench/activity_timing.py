"""Time spent inside each activity, measured in the worker, so overhead = end to end minus this.

The timer is a client interceptor that is also a worker interceptor: a worker built on the
timed client picks it up, so the product's own `build_workers` runs unchanged. It times
local activities (the audit writes) too, which the history does not time.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

from temporalio import activity, client, worker


@dataclass(frozen=True)
class ActivityTime:
    name: str
    local: bool
    seconds: float


class ActivityTimer(client.Interceptor, worker.Interceptor):
    """Records how long every activity of every workflow took, keyed by workflow id."""

    def __init__(self) -> None:
        self.by_workflow: defaultdict[str, list[ActivityTime]] = defaultdict(list)

    def intercept_activity(self, next: worker.ActivityInboundInterceptor) -> worker.ActivityInboundInterceptor:
        return _TimedActivity(next, self)

    def total(self, workflow_id: str) -> float:
        return sum(item.seconds for item in self.by_workflow.get(workflow_id, []))

    def times(self, workflow_id: str) -> list[ActivityTime]:
        return list(self.by_workflow.get(workflow_id, []))


class _TimedActivity(worker.ActivityInboundInterceptor):
    def __init__(self, next: worker.ActivityInboundInterceptor, timer: ActivityTimer) -> None:
        super().__init__(next)
        self._timer = timer

    async def execute_activity(self, input: worker.ExecuteActivityInput) -> object:
        info = activity.info()
        started = time.perf_counter()
        try:
            return await self.next.execute_activity(input)
        finally:
            elapsed = time.perf_counter() - started
            self._timer.by_workflow[info.workflow_id or ""].append(
                ActivityTime(info.activity_type, info.is_local, elapsed)
            )
