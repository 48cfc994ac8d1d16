"""Async engines and session factories for the app DB and the target DB."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

SqliteSynchronous = Literal["FULL", "NORMAL"]

# SQLite serialises writers; a busy timeout lets concurrent writers queue instead of failing
# with "database is locked".
SQLITE_BUSY_TIMEOUT_SECONDS = 30
# PostgreSQL's statements wait for a lock as long, then fail (retryably) instead of waiting for good: a
# cancelled execution stops only between its statements, and one waiting on a row lock that another
# session kept held its activity, its connection and the worker's shutdown as long (red team 59).
POSTGRES_LOCK_TIMEOUT_MS = SQLITE_BUSY_TIMEOUT_SECONDS * 1000


def create_engine(url: str, *, sqlite_synchronous: SqliteSynchronous = "FULL") -> AsyncEngine:
    """An engine with pooling suited to its backend; SQLite files get their folder created.

    SQLite enforces foreign keys on every connection (it does not by default), so a plan cannot
    point a row at one that does not exist on SQLite any more than on PostgreSQL.

    SQLite runs in WAL mode: readers never wait for the writer, and a commit is one append to
    the log instead of a rollback journal rewritten and synced three times. With
    `sqlite_synchronous="NORMAL"` a commit is not synced at all: still safe if any process
    crashes (even mid-commit), but the machine losing power can take the last commits with
    it. That suits the app DB's audit writes; the target DB, whose execution ledger proves a
    plan ran once, keeps "FULL".
    """
    parsed = make_url(url)
    if is_sqlite(parsed):
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
        use_wal(engine.sync_engine, sqlite_synchronous)
        return engine
    connect_args: dict[str, Any] = {}
    if parsed.get_driver_name() == "asyncpg":
        connect_args["server_settings"] = {"lock_timeout": str(POSTGRES_LOCK_TIMEOUT_MS)}
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True, connect_args=connect_args)


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def is_sqlite_file(url: URL) -> bool:
    """A SQLite database in a file, which another connection of this process opens too.

    An in-memory one (`:memory:`, `file::memory:`, a `mode=memory` URI) exists only on the connections
    its own engine makes, or is shared only by name within one driver's cache.
    """
    database = url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    in_memory = in_memory or url.query.get("mode") == "memory"
    return is_sqlite(url) and not in_memory


def use_wal(engine: Engine, synchronous: SqliteSynchronous) -> None:
    """WAL mode, the given `synchronous` and foreign keys on every new connection of `engine`."""

    @event.listens_for(engine, "connect")
    def set_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
