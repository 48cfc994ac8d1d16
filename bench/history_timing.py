"""Where a ticket's time went, read from its history's event timestamps (server clock).

Used by the overhead benchmark to split the orchestration overhead into workflow tasks
waiting to be picked up, workflow tasks being processed (which includes the local activities
they run), and activities waiting to start (zero when eager dispatch hands the activity to
the worker that scheduled it). Also counts workflow tasks and activities per ticket.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory


@dataclass
class HistoryTiming:
    workflow_tasks: int = 0
    activities: int = 0
    local_activities: int = 0
    events: int = 0
    workflow_task_wait: float = 0.0  # scheduled → started, seconds summed over the ticket
    workflow_task_run: float = 0.0  # started → completed (worker processing, local activities included)
    activity_wait: float = 0.0  # scheduled → started
    activity_run: float = 0.0  # started → completed (the activity plus reporting its result)
    eager_activities: int = 0  # started at the same instant as scheduled
    activity_names: Counter[str] = field(default_factory=Counter)


def history_timing(history: WorkflowHistory) -> HistoryTiming:
    timing = HistoryTiming(events=len(history.events))
    scheduled_at: dict[int, float] = {}
    started_at: dict[int, float] = {}
    task_scheduled = task_started = 0.0
    for event in history.events:
        when = event.event_time.ToMicroseconds() / 1e6
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            task_scheduled = when
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            task_started = when
            timing.workflow_task_wait += when - task_scheduled
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            timing.workflow_tasks += 1
            timing.workflow_task_run += when - task_started
        elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
            if event.marker_recorded_event_attributes.marker_name == "core_local_activity":
                timing.local_activities += 1
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled_at[event.event_id] = when
            timing.activities += 1
            timing.activity_names[event.activity_task_scheduled_event_attributes.activity_type.name] += 1
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            scheduled_id = event.activity_task_started_event_attributes.scheduled_event_id
            started_at[scheduled_id] = when
            wait = when - scheduled_at[scheduled_id]
            timing.activity_wait += wait
            timing.eager_activities += int(wait < 0.001)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            scheduled_id = event.activity_task_completed_event_attributes.scheduled_event_id
            timing.activity_run += when - started_at.get(scheduled_id, when)
    return timing


def mean_timing(timings: list[HistoryTiming]) -> dict[str, float]:
    """Per-ticket means: counts as numbers, durations in milliseconds."""
    count = max(len(timings), 1)
    return {
        "workflow_tasks": sum(t.workflow_tasks for t in timings) / count,
        "activities": sum(t.activities for t in timings) / count,
        "eager_activities": sum(t.eager_activities for t in timings) / count,
        "local_activities": sum(t.local_activities for t in timings) / count,
        "history_events": sum(t.events for t in timings) / count,
        "workflow_task_wait_ms": 1000 * sum(t.workflow_task_wait for t in timings) / count,
        "workflow_task_run_ms": 1000 * sum(t.workflow_task_run for t in timings) / count,
        "activity_wait_ms": 1000 * sum(t.activity_wait for t in timings) / count,
        "activity_run_ms": 1000 * sum(t.activity_run for t in timings) / count,
    }
