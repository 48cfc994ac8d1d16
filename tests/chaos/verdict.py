"""One outage run from start to verdict: place the tickets, break the dependency, mend it, check everything."""

from __future__ import annotations

from datetime import timedelta

from core.models import OutcomeStatus
from tests.chaos.checks import (
    Measured,
    assert_no_workflow_failed,
    audit_complete_and_once,
    executed_once,
    final_statuses,
    measure,
    slack_caught_up,
)
from tests.chaos.outages import Outage
from tests.chaos.world import ChaosWorld, Role

DURATIONS = {"10s": timedelta(seconds=10), "2min": timedelta(minutes=2), "15min": timedelta(minutes=15)}
# Seconds after an outage's end within which every plan it held back has run.
RESUMES_WITHIN = 30
# What each run measured, printed with -s and copied into docs/reliability.md.
MEASURED: dict[tuple[str, str], Measured] = {}


async def run_and_check(
    world: ChaosWorld,
    outage: Outage,
    dependency: str,
    label: str,
    duration: timedelta | None = None,
    waiting_out: tuple[Role, ...] = (),
) -> Measured:
    """`waiting_out`: roles whose tickets must be retrying a step the outage refuses before time moves."""
    await world.place()
    early = not getattr(outage, "accepts_requests", True)
    if early:  # nobody can reach the ticket while it is down: what arrives then arrives just before
        await world.as_outage_begins()
    world.began = await world.now()
    await outage.begin()
    if not early:
        await world.as_outage_begins()
    await world.until_waiting_out(*waiting_out)
    await world.clock.sleep(duration or DURATIONS[label])
    await outage.end()
    ended = await world.now()
    for ticket in world.of(Role.AWAITING):
        await world.approve(ticket)
    await world.settle()

    statuses = await final_statuses(world)
    await assert_no_workflow_failed(world)
    await executed_once(world, world.outcomes)
    await audit_complete_and_once(world, world.outcomes)
    slack_caught_up(world, statuses)
    for outcome in world.outcomes.values():
        assert outcome.status in (OutcomeStatus.DONE, OutcomeStatus.FAILED), outcome
    measured = measure(world, world.outcomes, ended)
    MEASURED[(dependency, label)] = measured
    print(f"\n{dependency} down {label}: {measured.row()}")
    return measured
