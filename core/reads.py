"""Read-only transactions that run whole: a few statements for the price of one hand-off.

Through aiosqlite every statement is several hand-offs to the connection's thread and back
through the event loop (a cursor, the statement, its rows, closing the cursor), which cost a
busy worker about 0.8 ms of CPU per statement beside the query itself (bench/notes.md, item 33).
`ReadRunner.read` hands a SQLite read to a thread of its own, on a synchronous engine over the
same file, where its statements run one after the other; the event loop waits once. Its
connections are `query_only`, so a read cannot write by mistake, and the transaction is rolled
back when the work returns. Other databases run the same work on the async engine's connection
(`AsyncConnection.run_sync`) in a transaction made read-only. (A read that turns these off itself,
or commits, could still write: `read` is for this code's own queries, never for SQL from outside.)

An in-memory SQLite database exists only on the connections its own engine makes, so it is read
through the async engine too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import SQLITE_BUSY_TIMEOUT_SECONDS, is_sqlite_file

Result = TypeVar("Result")
Read = Callable[[Connection], Result]

# WAL readers do not wait for each other or for the writer; a few threads let reads overlap.
READ_THREADS = 4


class ReadRunner:
    """Runs `read(connection)` in one transaction that is rolled back when it returns or raises."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sqlite: tuple[Engine, ThreadPoolExecutor] | None = None
        if is_sqlite_file(engine.url):
            sync_engine = create_sync_engine(
                engine.url.set(drivername="sqlite"),
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                pool_size=READ_THREADS,
            )
            _query_only(sync_engine)
            threads = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="sqlite-reader")
            self._sqlite = (sync_engine, threads)

    async def read(self, read: Read[Result]) -> Result:
        if self._sqlite is None:
            async with self.engine.connect() as connection:
                transaction = await connection.begin()
                try:
                    if connection.dialect.name == "postgresql":
                        await connection.exec_driver_sql("SET TRANSACTION READ ONLY")
                    return await connection.run_sync(read)
                finally:
                    await transaction.rollback()
        sync_engine, threads = self._sqlite
        return await asyncio.get_running_loop().run_in_executor(threads, _read_and_roll_back, sync_engine, read)

    async def close(self) -> None:
        """Reads not started are dropped; one still running (a locked file: up to the busy time-out) is
        waited for in a thread, so the event loop goes on meanwhile."""
        if self._sqlite is not None:
            sync_engine, threads = self._sqlite
            await asyncio.to_thread(_shut_down, threads, sync_engine)


def _shut_down(threads: ThreadPoolExecutor, engine: Engine) -> None:
    threads.shutdown(wait=True, cancel_futures=True)
    engine.dispose()


def _query_only(engine: Engine) -> None:
    """Foreign keys on, as on every other connection, and no writes at all on these."""

    @event.listens_for(engine, "connect")
    def set_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA query_only=ON")
        finally:
            cursor.close()


def _read_and_roll_back(engine: Engine, read: Read[Result]) -> Result:
    with engine.connect() as connection:
        try:
            return read(connection)
        finally:
            connection.rollback()
