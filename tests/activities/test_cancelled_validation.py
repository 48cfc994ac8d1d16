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
from core.models import Assignment, Plan, UpdateOperation, ValidatePlanInput
from core.policy import PolicyCache, TablePolicy, store_policy
from core.settings import Settings
from tests.activities.conftest import activity_env
from tests.activities.test_execution import ACME, UPGRADE
from tests.support import dev_authority


def _target_file(settings: Settings) -> str:
    return settings.target_db_url.removeprefix("sqlite+aiosqlite:///")


def _write_lock_free(path: str) -> bool:
    connection = sqlite3.connect(path, timeout=0.1)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        connection.close()


async def test_a_validation_cancelled_mid_dry_run_hands_its_connection_back(
    databases: Databases, settings: Settings
) -> None:
    activities = SafetyActivities(databases.app_sessions, databases.target_engine, dev_authority())
    plan = Plan(summary="upgrade acme", operations=[UPGRADE])
    validate = ValidatePlanInput(ticket_id="t1", plan=plan)
    env = activity_env("validate")
    await env.run(activities.validate_plan, validate)  # warm: the schema reflected, the pool filled

    path = _target_file(settings)
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
    while pool.checkedout() or not _write_lock_free(path):  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "a cancelled validation's connection is still out, the target locked"
        await asyncio.sleep(0.2)
    report = await env.run(activities.validate_plan, validate)  # and the next validation runs
    assert report.plan_hash


async def test_a_dry_run_that_waited_for_the_write_lock_is_not_judged_too_expensive(
    databases: Databases, settings: Settings
) -> None:
    """Under a burst, the wait for another dry run's lock is not this plan's run time (bench/notes.md, item 39)."""
    bulk = sqlite3.connect(_target_file(settings), isolation_level=None)
    bulk.execute("CREATE TABLE bulk (id INTEGER PRIMARY KEY, customer_id INTEGER, flag INTEGER)")
    bulk.executemany("INSERT INTO bulk (customer_id, flag) VALUES (?, 0)", [(n,) for n in range(5000)])
    bulk.close()  # a scan of it takes the progress handler past its first check
    policy = await PolicyCache(databases.app_sessions).current()
    policy.tables["bulk"] = TablePolicy(operations=["select", "update"], max_rows=10, auto_approve_rows=5)
    await store_policy(databases.app_sessions, policy)
    flag = UpdateOperation(table="bulk", values=[Assignment(column="flag", value=1)], filters=[ACME])
    activities = SafetyActivities(databases.app_sessions, databases.target_engine, dev_authority())
    validate = ValidatePlanInput(ticket_id="t1", plan=Plan(summary="flag one", operations=[flag]))
    env = activity_env("validate")
    first = await env.run(activities.validate_plan, validate)
    assert first.rows_affected == 1
    limit_ms = (await PolicyCache(databases.app_sessions).current()).limits.dry_run_timeout_ms

    holder = sqlite3.connect(_target_file(settings), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another dry run holds the lock longer than the dry-run limit
    validating = asyncio.create_task(env.run(activities.validate_plan, validate))
    await asyncio.sleep(limit_ms / 1000 + 0.5)
    holder.execute("ROLLBACK")
    holder.close()
    report = await validating
    assert report.risk is first.risk and report.rows_affected == first.rows_affected
    assert not [finding for finding in report.findings if "took longer than" in finding.message]
