"""Short write transactions that hold SQLite's write lock only while they run.

SQLite lets one connection write at a time, from its transaction's first write to its commit.
Through aiosqlite every statement is a hand-off to the connection's thread and back through
the event loop, so on a worker whose loop is busy the lock stays held for as long as the loop
takes to come round, and the other writers sleep in SQLite's busy handler meanwhile: at full
load a third of the audit writes outlasted their 1.5 s local try (bench/notes.md, item 24).

`TransactionRunner.run` hands a SQLite transaction to one thread of its own, on a synchronous
engine over the same file, where it runs whole, statement after statement, with the event loop
free; the writes take turns in order instead of in the busy handler's growing sleeps. On other
databases, whose writers lock rows rather than the whole database, the same work runs on the
async engine's connection (`AsyncConnection.run_sync`).

A SQLite file whose file system was read-only when this process opened it stays read-only to the
process, even after the file system is writable again, for as long as any of its connections to
the file is open (they share one read-only view of its shared memory). A write refused as read-only
therefore closes every connection the process has pooled to the file, and the retry opens anew
(red team 12).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import SQLITE_BUSY_TIMEOUT_SECONDS, SqliteSynchronous, is_sqlite_file, use_wal

Result = TypeVar("Result")
Work = Callable[[Connection], Result]


@dataclass(frozen=True)
class _SqliteWriter:
    """A synchronous engine over the SQLite file, and the one thread its transactions run in."""

    engine: Engine
    thread: ThreadPoolExecutor


class TransactionRunner:
    """Runs `work(connection)` in one transaction: committed when it returns, rolled back if it raises.

    `work` may roll back itself (e.g. when it finds its write already made) and return; the commit
    after it then has nothing to do.
    """

    def __init__(self, engine: AsyncEngine, *, sqlite_synchronous: SqliteSynchronous = "FULL") -> None:
        self._engine = engine
        self._sqlite: _SqliteWriter | None = None
        if is_sqlite_file(engine.url):  # an in-memory one lives only on its own engine's connections
            sync_engine = create_sync_engine(
                engine.url.set(drivername="sqlite"), connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}
            )
            use_wal(sync_engine, sqlite_synchronous)
            # One writer at a time is all SQLite allows; one thread gives the writes their turns.
            thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
            self._sqlite = _SqliteWriter(sync_engine, thread)

    async def run(self, work: Work[Result]) -> Result:
        sqlite = self._sqlite
        if sqlite is None:
            async with self._engine.connect() as connection:
                result = await connection.run_sync(work)
                await connection.commit()
                return result
        loop = asyncio.get_running_loop()
        try:
            # A caller that stops waiting (a local try's time-out) drops a transaction not yet
            # started; one already running finishes, as a write through aiosqlite would.
            return await loop.run_in_executor(sqlite.thread, _in_transaction, sqlite.engine, work)
        except sa_exc.OperationalError as error:
            if _refused_as_read_only(error):
                await loop.run_in_executor(sqlite.thread, sqlite.engine.dispose)
                await self._engine.dispose()
            raise

    async def close(self) -> None:
        """Writes already handed over finish first, waited for in a thread so the event loop goes on."""
        if self._sqlite is not None:
            await asyncio.to_thread(_shut_down, self._sqlite)


def _shut_down(sqlite: _SqliteWriter) -> None:
    sqlite.thread.shutdown(wait=True)
    sqlite.engine.dispose()


def _refused_as_read_only(error: sa_exc.OperationalError) -> bool:
    return str(getattr(error.orig, "sqlite_errorname", "")).startswith("SQLITE_READONLY")


def _in_transaction(engine: Engine, work: Work[Result]) -> Result:
    with engine.connect() as connection:
        result = work(connection)
        connection.commit()
        return result
