"""`LLM_ACTIVITIES_PER_SECOND`: a burst of tickets plans no faster than the limit, and every ticket ends well.

The limit is Temporal's task-queue rate limit on the LLM queue, enforced by the server for every
worker polling it; plans over the limit wait in the queue (the ticket stays `planning`) instead
of reaching the provider and drawing 429s. Only a lower bound on the spread is asserted: a slow
machine can make it longer, never shorter.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from core import names
from core.models import OutcomeStatus
from core.settings import ConfigError, load_settings
from service.tickets import TicketService
from tests.pipeline import running_pipeline
from tests.support import build_settings

PER_SECOND = 2.0
TICKETS = 6


async def plan_started_at(service: TicketService, short_id: str) -> float:
    """When the ticket's plan activity started, on the server's clock (seconds)."""
    history = await service.handle(short_id).fetch_history()
    scheduled = {
        event.event_id
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and event.activity_task_scheduled_event_attributes.activity_type.name == names.ACTIVITY_PLAN_TICKET
    }
    [started] = [
        event.event_time.ToMicroseconds() / 1e6
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and event.activity_task_started_event_attributes.scheduled_event_id in scheduled
    ]
    return started


async def test_a_burst_plans_no_faster_than_the_llm_limit(tmp_path: Path, local_env: WorkflowEnvironment) -> None:
    settings = build_settings(
        tmp_path / "data", f"llm-limit-{uuid.uuid4().hex[:8]}", llm_activities_per_second=PER_SECOND
    )
    async with running_pipeline(local_env.client, settings) as pipeline:
        tickets = await asyncio.gather(
            *(pipeline.service.start(pipeline.request("upgrade acme-corp to the pro plan")) for _ in range(TICKETS))
        )
        outcomes = await asyncio.gather(*(pipeline.service.result(ticket.short_id) for ticket in tickets))
        starts = sorted([await plan_started_at(pipeline.service, ticket.short_id) for ticket in tickets])

    assert [outcome.status for outcome in outcomes] == [OutcomeStatus.DONE] * TICKETS
    # Six plans at two a second: the last starts at least ~2 s after the first (a burst of one or two allowed).
    spread = starts[-1] - starts[0]
    assert spread >= (TICKETS - 2) / PER_SECOND * 0.9, f"plans started {spread:.2f} s apart in all: {starts}"


@pytest.mark.parametrize("value", ["0", "-1", "1e-300", "0.05", "inf", "1e400", "nan", "1e9", "abc"])
def test_a_limit_that_would_stall_planning_or_means_nothing_is_a_config_error(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_ACTIVITIES_PER_SECOND", value)
    with pytest.raises(ConfigError, match="LLM_ACTIVITIES_PER_SECOND"):
        load_settings(_env_file=None)


def test_a_sensible_limit_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_ACTIVITIES_PER_SECOND", "0.5")
    assert load_settings(_env_file=None).llm_activities_per_second == 0.5
