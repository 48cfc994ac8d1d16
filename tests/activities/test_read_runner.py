"""The read runner: a read runs whole, sees what is committed, and can write nothing."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import Connection, func, select, text
from sqlalchemy import exc as sa_exc

from core.bootstrap import Databases
from core.database import create_engine
from core.demo import customers as CUSTOMERS
from core.reads import ReadRunner


def _customers(connection: Connection) -> int:
    return int(connection.execute(select(func.count()).select_from(CUSTOMERS)).scalar() or 0)


async def test_a_read_sees_what_is_committed(dbs: Databases) -> None:
    before = await dbs.target_reads.read(_customers)
    async with dbs.target_engine.begin() as connection:
        late = {"id": 9001, "name": "Late Co", "slug": "late-co", "billing_email": "ap@late.example"}
        await connection.execute(CUSTOMERS.insert().values(late))
    assert await dbs.target_reads.read(_customers) == before + 1


async def test_a_read_cannot_write(dbs: Databases) -> None:
    def rename_everyone(connection: Connection) -> None:
        connection.execute(CUSTOMERS.update().values(name="renamed"))

    with pytest.raises(sa_exc.DBAPIError, match=r"(?i)read.?only"):
        await dbs.target_reads.read(rename_everyone)
    async with dbs.target_engine.connect() as connection:
        assert await connection.scalar(select(func.count()).where(CUSTOMERS.c.name == "renamed")) == 0


async def test_a_read_that_raises_hands_the_error_back_and_the_next_read_works(dbs: Databases) -> None:
    def fail(connection: Connection) -> None:
        connection.execute(text("SELECT 1"))
        raise RuntimeError("the read gave up")

    with pytest.raises(RuntimeError, match="gave up"):
        await dbs.target_reads.read(fail)
    assert await dbs.target_reads.read(_customers) > 0


async def test_sqlite_reads_run_whole_while_the_event_loop_is_held(databases: Databases) -> None:
    """Through aiosqlite each statement of the read waits for the loop; the runner's do not."""
    second_statement_done = threading.Event()

    def two_statements(connection: Connection) -> int:
        connection.execute(text("SELECT 1"))
        count = _customers(connection)
        second_statement_done.set()
        return count

    read = asyncio.ensure_future(databases.target_reads.read(two_statements))
    await asyncio.sleep(0)  # hand the read to the runner, then hold the loop until it is through
    assert second_statement_done.wait(timeout=10), "the read waited for the event loop"
    assert await read > 0


@pytest.mark.parametrize(
    "database", [":memory:", "file:notes?mode=memory&uri=true", "file::memory:?uri=true"], ids=["plain", "uri", "anon"]
)
async def test_an_in_memory_sqlite_database_is_read_where_it_lives(database: str) -> None:
    """Another engine's connection to an in-memory database would be another, empty database (red team 24)."""
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    runner = ReadRunner(engine)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY)"))
            await connection.execute(text("INSERT INTO notes VALUES (1), (2)"))
        count_notes = text("SELECT count(*) FROM notes")
        assert await runner.read(lambda connection: connection.execute(count_notes).scalar()) == 2
    finally:
        await runner.close()
        await engine.dispose()


async def test_closing_waits_for_a_running_read_without_holding_the_event_loop(databases: Databases) -> None:
    """A read stuck on a locked file (up to the busy time-out) kept the worker's loop still while it shut down
    (red team 24)."""
    release = threading.Event()
    started = threading.Event()

    def stuck(connection: Connection) -> int:
        started.set()
        release.wait(timeout=10)
        return _customers(connection)

    read = asyncio.ensure_future(databases.target_reads.read(stuck))
    await asyncio.to_thread(started.wait, 10)
    closing = asyncio.ensure_future(databases.target_reads.close())
    ticks = 0
    for _ in range(5):  # the loop goes round while close waits for the read
        await asyncio.sleep(0.02)
        ticks += 1
    assert ticks == 5 and not closing.done()
    release.set()
    await closing
    assert await read > 0
