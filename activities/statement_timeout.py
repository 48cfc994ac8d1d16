"""A time limit on the statements of one transaction, on PostgreSQL and on SQLite.

PostgreSQL has `statement_timeout` (and `lock_timeout`, so a dry run stuck behind a writer's
row lock gives up too); `SET LOCAL` keeps both to the current transaction. SQLite has no
such setting: a progress handler, called every few hundred virtual-machine steps, interrupts
whatever runs once the deadline has passed. There the limit covers all statements together.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

_PROGRESS_STEPS = 1000
_QUERY_CANCELED = "57014"


@asynccontextmanager
async def statement_timeout(connection: AsyncConnection, milliseconds: int) -> AsyncIterator[None]:
    """Within the block, statements on `connection` end with an error after `milliseconds`."""
    if connection.dialect.name == "postgresql":
        await connection.exec_driver_sql(f"SET LOCAL statement_timeout = {int(milliseconds)}")
        await connection.exec_driver_sql(f"SET LOCAL lock_timeout = {int(milliseconds)}")
        yield
        return
    driver = await _sqlite_driver_connection(connection)
    if driver is None:
        yield
        return
    deadline = time.monotonic() + milliseconds / 1000

    def past_deadline() -> int:
        return 1 if time.monotonic() > deadline else 0

    await driver.set_progress_handler(past_deadline, _PROGRESS_STEPS)
    try:
        yield
    finally:
        await driver.set_progress_handler(None, 0)


async def _sqlite_driver_connection(connection: AsyncConnection) -> Any:
    """The aiosqlite connection under `connection`, or None for another driver."""
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    return driver if hasattr(driver, "set_progress_handler") else None


def is_timeout(error: BaseException) -> bool:
    """Whether `error` is a statement stopped by `statement_timeout` (not a lock wait a retry may fix)."""
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    sqlstate = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    if sqlstate == _QUERY_CANCELED:
        return True
    return isinstance(error, sa_exc.OperationalError) and "interrupted" in str(error.orig).lower()
