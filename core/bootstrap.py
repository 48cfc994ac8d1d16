"""Create and seed both databases: used by `init-db`, `dev` and the tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.database import create_engine, session_factory
from core.demo import create_demo_target
from core.ledger import create_ledger
from core.migrations import upgrade_app_db
from core.policy import Policy, load_policy_file, store_policy
from core.reads import ReadRunner
from core.settings import Settings
from core.transactions import TransactionRunner


@dataclass
class Databases:
    """Open engines and session factories for the app DB and the target DB."""

    app_engine: AsyncEngine
    target_engine: AsyncEngine
    app_sessions: async_sessionmaker[AsyncSession]
    target_sessions: async_sessionmaker[AsyncSession]
    # The app DB's audit writes: each runs whole, so it holds SQLite's write lock only briefly.
    app_transactions: TransactionRunner
    # Reads of several statements (a ticket's context): each runs whole, read-only.
    app_reads: ReadRunner
    target_reads: ReadRunner

    @classmethod
    def open(cls, settings: Settings) -> Databases:
        # SQLite only: a power cut may cost the app DB its last audit writes, never the target DB a
        # committed plan (its ledger is what proves the plan ran once).
        app_engine = create_engine(settings.app_db_url, sqlite_synchronous="NORMAL")
        target_engine = create_engine(settings.target_db_url, sqlite_synchronous="FULL")
        return cls(
            app_engine,
            target_engine,
            session_factory(app_engine),
            session_factory(target_engine),
            TransactionRunner(app_engine, sqlite_synchronous="NORMAL"),
            ReadRunner(app_engine),
            ReadRunner(target_engine),
        )

    async def close(self) -> None:
        await asyncio.gather(self.app_transactions.close(), self.app_reads.close(), self.target_reads.close())
        await self.app_engine.dispose()
        await self.target_engine.dispose()


@dataclass
class InitReport:
    policy: Policy
    seeded_demo: bool


async def init_databases(databases: Databases, settings: Settings) -> InitReport:
    """Migrate the app DB to the latest schema, load the policy into the constraint table, prepare the target."""
    policy = load_policy_file(settings.policy_file)
    await upgrade_app_db(settings.app_db_url)
    await store_policy(databases.app_sessions, policy)
    seeded = await create_demo_target(databases.target_engine) if settings.seed_demo_data else False
    await create_ledger(databases.target_engine)
    return InitReport(policy=policy, seeded_demo=seeded)
