"""A validation cancelled while its dry run waits for the target leaves no connection behind (bench/notes.md, item 39).

A burst of 1,000 tickets made validations wait on SQLite's write lock past their local activity's 5 s;
the SDK cancelled them mid-statement, and connections left outside the pool with their transaction
open held the target's write lock for good: no plan validated again until the worker restarted.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time

from activities.safety import SafetyActivities
from core.bootstrap import Databases
from core.models import Plan, ValidatePlanInput
from core.settings import Settings
from tests.activities.conftest import activity_env, target_file, write_lock_free
from tests.activities.test_execution import UPGRADE
from tests.support import dev_authority


async def test_a_validation_cancelled_mid_dry_run_hands_its_connection_back(
    databases: Databases, settings: Settings
) -> None:
    activities = SafetyActivities(databases.app_sessions, databases.target_engine, dev_authority())
    plan = Plan(summary="upgrade acme", operations=[UPGRADE])
    validate = ValidatePlanInput(ticket_id="t1", plan=plan)
    env = activity_env("validate")
    await env.run(activities.validate_plan, validate)  # warm: the schema reflected, the pool filled

    path = target_file(settings)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the target: the dry run's update waits
    validating = asyncio.create_task(env.run(activities.validate_plan, validate))
    await asyncio.sleep(0.5)
    validating.cancel()  # the activity's time is up, and the SDK cancels again while it cleans up
    await asyncio.sleep(0.05)
    validating.cancel()
    # The activity ends at once, as the SDK expects; it does not wait on the lock to clean up.
    await asyncio.wait({validating}, timeout=3)
    released = validating.done()
    holder.execute("ROLLBACK")
    holder.close()
    assert released and validating.cancelled()

    # The cancelled validation's dry run goes on to its end and rolls back; its connection goes back.
    pool = databases.target_engine.pool
    deadline = time.monotonic() + 15
    while pool.checkedout() or not write_lock_free(path):  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "a cancelled validation's connection is still out, the target locked"
        await asyncio.sleep(0.2)
    report = await env.run(activities.validate_plan, validate)  # and the next validation runs
    assert report.plan_hash
