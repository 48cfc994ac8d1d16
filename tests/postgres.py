"""Throw-away databases on the local PostgreSQL (user postgres, trust auth), for tests and benchmarks."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

POSTGRES_ADMIN_DSN = os.environ.get("AGENT_TICKET_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


@asynccontextmanager
async def fresh_postgres_database(prefix: str = "agent_ticket_test", template: str | None = None) -> AsyncIterator[str]:
    """A new PostgreSQL database on the local server (SQLAlchemy URL), dropped afterwards.

    Empty, or a copy of the database named `template` (which nobody may be connected to).
    """
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    finally:
        await admin.close()
    base = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
