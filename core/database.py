"""Async engines and session factories for the app DB and the target DB."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

SqliteSynchronous = Literal["FULL", "NORMAL"]


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
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # SQLite serialises writers; a busy timeout lets concurrent activities queue
        # instead of failing with "database is locked".
        engine = create_async_engine(url, connect_args={"timeout": 30})
        _use_wal(engine, sqlite_synchronous)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def _use_wal(engine: AsyncEngine, synchronous: SqliteSynchronous) -> None:
    @event.listens_for(engine.sync_engine, "connect")
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
