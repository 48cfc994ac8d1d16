"""Issue 12, item 6: each dependency down for 10 s, 2 min and 15 min with ten tickets in flight.

On the time-skipping server (the outage lasts its full length on the server's clock, in a few
seconds of wall time), with the real activities, fake Slack and OpenAI servers and SQLite:
no workflow fails at Temporal level, every approved plan runs exactly once within 30 s of the
outage's end, every Slack message catches up to the ticket's outcome with one outcome reply,
and the audit log holds every event exactly once. A target DB down past its 30-minute bound
ends the tickets that need it `failed`, with the reason.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from core.models import OutcomeStatus
from tests.chaos.outages import DatabaseDown, Outage, ServerDown
from tests.chaos.verdict import DURATIONS, RESUMES_WITHIN, run_and_check
from tests.chaos.world import ChaosWorld, Role, chaos_world

FAKES = ["slack", "openai", "app_db", "target_db"]


class SlackDown(ServerDown):
    """Slack unreachable; as it comes back, its first posts and edits take effect but their answers are lost."""

    def __init__(self, world: ChaosWorld) -> None:
        super().__init__("slack", lambda: world.slack._runner, lambda: int(world.slack.url.rsplit(":", 1)[1]))
        self._slack = world.slack

    async def end(self) -> None:
        for method in ("chat.postMessage", "chat.update"):
            self._slack.fail(method, "internal_error", status=500, applied=True, times=3)
        await super().end()


def outage_of(world: ChaosWorld, dependency: str) -> Outage:
    if dependency == "slack":
        return SlackDown(world)
    if dependency == "openai":
        return ServerDown("openai", lambda: world.openai.runner, lambda: world.openai.port)
    if dependency == "app_db":
        return DatabaseDown("app DB", world.databases.app_engine)
    assert dependency == "target_db"
    return DatabaseDown("target DB", world.databases.target_engine)


@pytest.mark.parametrize("duration", DURATIONS, ids=list(DURATIONS))
@pytest.mark.parametrize("dependency", FAKES)
async def test_an_outage_delays_tickets_but_loses_and_repeats_nothing(
    time_env: WorkflowEnvironment,
    worker_client: Client,
    no_task_trouble: None,
    tmp_path: Path,
    dependency: str,
    duration: str,
) -> None:
    async with chaos_world(time_env.client, time_env, worker_client, tmp_path) as world:
        measured = await run_and_check(world, outage_of(world, dependency), dependency, duration)
        lost_answers = [call for call in world.slack.calls if call.error == "internal_error"]
    assert measured.done == len(world.tickets)
    if dependency == "slack":  # posts Slack took without answering were not made twice (checked above)
        assert len(lost_answers) == 6
    assert measured.executed_after_end <= RESUMES_WITHIN


async def test_a_target_db_down_past_its_bound_fails_the_tickets_that_need_it_with_the_reason(
    time_env: WorkflowEnvironment, worker_client: Client, no_task_trouble: None, tmp_path: Path
) -> None:
    """Past 30 minutes (workflows/options.py TARGET_DB_BOUND) a person should look: the steps give up."""
    async with chaos_world(time_env.client, time_env, worker_client, tmp_path) as world:
        outage = outage_of(world, "target_db")
        needing_it = (Role.RECEIVED, Role.PLANNING, Role.APPROVED, Role.EXECUTING)
        measured = await run_and_check(
            world, outage, "target_db", "45min", duration=timedelta(minutes=45), waiting_out=needing_it
        )
        ended = [(ticket.role, world.outcome_of(ticket)) for ticket in world.tickets]
    # Every ticket that needed the target DB during the outage failed; those approved after it ran.
    how = [(role.value, outcome.status.value) for role, outcome in ended]
    failed = sorted(role for role, outcome in ended if outcome.status is OutcomeStatus.FAILED)
    assert failed == sorted(ticket.role for ticket in world.of(*needing_it)), how
    assert measured.done == len(world.of(Role.AWAITING)), how
    reasons = [outcome.reason for _, outcome in ended if outcome.status is OutcomeStatus.FAILED]
    for reason in reasons:
        assert "gave up after retrying for 30 min" in reason and "target DB down" in reason, reason
        assert "will retry" not in reason and "\n" not in reason, reason
    print("\n".join(reasons))
