"""The app DB's transaction runner: one transaction per unit of work, and SQLite's lock held only while it runs."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, select, update

from core.bootstrap import Databases
from core.schema import TicketRow

TICKETS = TicketRow.__table__


async def _ticket_count(dbs: Databases) -> int:
    async with dbs.app_engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(TICKETS)) or 0)


def _insert_ticket(connection: Connection, ticket_id: str) -> None:
    connection.execute(
        TICKETS.insert().values(
            ticket_id=ticket_id,
            workflow_id=f"ticket-{ticket_id}",
            requester="U1",
            source="slack",
            channel="C1",
            text="t",
            stage="received",
            status="received",
        )
    )


async def test_work_that_returns_is_committed(dbs: Databases) -> None:
    result = await dbs.app_transactions.run(lambda connection: _insert_ticket(connection, "kept") or "done")
    assert result == "done" and await _ticket_count(dbs) == 1


async def test_work_that_raises_writes_nothing(dbs: Databases) -> None:
    def insert_then_fail(connection: Connection) -> None:
        _insert_ticket(connection, "lost")
        raise RuntimeError("the work failed after its write")

    with pytest.raises(RuntimeError, match="failed after its write"):
        await dbs.app_transactions.run(insert_then_fail)
    assert await _ticket_count(dbs) == 0


async def test_work_that_rolls_itself_back_writes_nothing(dbs: Databases) -> None:
    def insert_then_change_its_mind(connection: Connection) -> bool:
        _insert_ticket(connection, "withdrawn")
        connection.rollback()
        return False

    assert await dbs.app_transactions.run(insert_then_change_its_mind) is False
    assert await _ticket_count(dbs) == 0


async def test_a_sqlite_write_commits_while_the_event_loop_is_blocked(databases: Databases) -> None:
    """The write lock is taken and released in the writer's thread: no turn of the loop sits between them.

    Through aiosqlite each statement waits for the loop, so a loop held up (here on purpose, at full
    load by other work) kept the lock held, and every other writer slept in SQLite's busy handler.
    """
    await databases.app_transactions.run(lambda connection: _insert_ticket(connection, "t1"))
    locked = threading.Event()

    def update_holding_the_lock(connection: Connection) -> None:
        connection.execute(update(TICKETS).where(TICKETS.c.ticket_id == "t1").values(status="updated"))
        locked.set()  # the write lock is held from here to the commit
        connection.execute(select(func.count()).select_from(TICKETS)).scalar()

    write = asyncio.ensure_future(databases.app_transactions.run(update_holding_the_lock))
    await asyncio.sleep(0)  # hand the work to the runner, then hold the loop until the commit is through
    assert locked.wait(timeout=10), "the work never took the lock"
    other_writer = sqlite3.connect(databases.app_engine.url.database or "", timeout=10)
    try:
        other_writer.execute("BEGIN IMMEDIATE")  # waits for the write lock, with the loop still held
        other_writer.rollback()
    finally:
        other_writer.close()
    await write
    async with databases.app_engine.connect() as connection:
        status = await connection.scalar(select(TICKETS.c.status).where(TICKETS.c.ticket_id == "t1"))
    assert status == "updated"


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare to mount")
def test_an_app_db_read_only_for_a_while_is_written_once_it_is_writable_again(tmp_path: Path) -> None:
    """Red team 12: the worker's tickets stopped until a restart after the file system came back."""
    in_a_mount_namespace = ["unshare", "--mount", "--propagation", "private"]
    child = subprocess.run(
        [*in_a_mount_namespace, sys.executable, "-m", "tests.activities.read_only_app_db", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[2],
    )
    if child.returncode != 0 and "unshare" in child.stderr:
        pytest.skip(f"no mount namespace here: {child.stderr.strip()}")
    assert child.returncode == 0, child.stderr
    lines = child.stdout.splitlines()
    assert [line for line in lines if line.startswith("read-only")] and all(
        "readonly database" in line for line in lines if line.startswith("read-only")
    ), child.stdout
    writable = [line for line in lines if line.startswith("writable")]
    assert writable[-1].endswith(": ok") and writable[-2].endswith(": ok"), child.stdout
