"""Databases as `init_databases` leaves them, made once per session and copied for each test that wants fresh ones.

`init_databases` (migrations, policy, demo rows, ledger) took 0.1-0.2 s per test on SQLite and
0.3-0.6 s on PostgreSQL, for hundreds of tests; a copy of databases it made is a few ms of file
copying (SQLite) or one `CREATE DATABASE ... TEMPLATE` (PostgreSQL). Every test still gets
databases of its own, byte for byte what `init_databases` makes for its settings.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from core.bootstrap import Databases, init_databases
from core.settings import Settings
from tests.postgres import fresh_postgres_database
from tests.support import build_settings

SQLITE_FILES = ("app.db", "target.db")


def init_key(settings: Settings) -> tuple[str, str, bool]:
    """All of `settings` that `init_databases` reads besides the database URLs: the policy file, demo seeding."""
    policy = settings.policy_file.resolve()
    return str(policy), hashlib.sha256(policy.read_bytes()).hexdigest(), settings.seed_demo_data


async def initialised(settings: Settings) -> None:
    """`init_databases` for `settings`, its engines closed again (a template must have no one connected)."""
    databases = Databases.open(settings)
    try:
        await init_databases(databases, settings)
    finally:
        await databases.close()


class SeededSqlite:
    """SQLite app and target DBs made by `init_databases` once per `init_key`, copied into a test's data dir."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._templates: dict[tuple[str, str, bool], Path] = {}

    @staticmethod
    def copyable(settings: Settings) -> bool:
        """Both databases are the default SQLite files of a data dir that holds neither yet."""
        defaults = settings.app_database_url is None and settings.target_database_url is None
        return defaults and not any((settings.data_dir / name).exists() for name in SQLITE_FILES)

    async def copy_into(self, settings: Settings) -> None:
        assert self.copyable(settings), f"{settings.data_dir} does not take copied databases"
        key = init_key(settings)
        template = self._templates.get(key)
        if template is None:
            template = self._root / f"template-{len(self._templates)}"
            await initialised(settings.model_copy(update={"data_dir": template}))
            leftovers = [path.name for path in template.iterdir() if path.name not in SQLITE_FILES]
            assert not leftovers, f"init_databases left more than the two files: {leftovers}"
            self._templates[key] = template
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        for name in SQLITE_FILES:
            shutil.copyfile(template / name, settings.data_dir / name)


@asynccontextmanager
async def postgres_template(data_dir: Path) -> AsyncIterator[str]:
    """A PostgreSQL database `init_databases` made for `pg_settings` (the suite's defaults); yields its name."""
    async with fresh_postgres_database("agent_ticket_template") as url:
        await initialised(build_settings(data_dir, app_database_url=url, target_database_url=url))
        yield url.rsplit("/", 1)[1]
