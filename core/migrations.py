"""Schema migrations of the app DB with Alembic, run from code so `init-db` never drops data.

`create_all` can only add missing tables; Alembic revisions also change existing ones, and
the `alembic_version` row tells which changes a database already has. The scripts live in
`migrations/` beside the packages (the image installs the source tree, see the Dockerfile).
Alembic is imported only when a migration runs: with the Mako and Pygments it brings, it was
0.14 s of every process's start-up, and a worker or bot never migrates (bench/notes.md, item 29).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from core.database import create_engine
from core.settings import PROJECT_ROOT

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"

# The revision that matches what `create_all` made before migrations existed, and its
# tables. Frozen on purpose: later models grow, this list describes old databases.
BASELINE_REVISION = "0001_initial"
BASELINE_TABLES = frozenset({"tickets", "audit_events", "table_constraints", "policy_settings"})

# Any constant works; it only has to be the same in every process that migrates.
_ADVISORY_LOCK_KEY = 0x61677469636B6574  # "agticket"


class MigrationError(Exception):
    """The database is in a state that migrations cannot safely continue from."""


def alembic_config(url: str | None = None, *, directory: Path = MIGRATIONS_DIR) -> Config:
    """A config for the app DB's scripts, without `alembic.ini` so the app's logging stays as it is."""
    from alembic.config import Config

    if not (directory / "env.py").exists():
        raise MigrationError(f"migration scripts not found in {directory}")
    config = Config()
    config.set_main_option("script_location", str(directory))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def current_revision(connection: Connection) -> str | None:
    """The revision a database is at, or None if Alembic never ran on it."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _adopt_unversioned(connection: Connection, config: Config) -> None:
    """Stamp a database made by `create_all` at the baseline, so upgrading it creates nothing twice."""
    from alembic import command

    if current_revision(connection) is not None:
        return
    present = BASELINE_TABLES & set(inspect(connection).get_table_names())
    if not present:
        return
    if present != BASELINE_TABLES:
        missing = ", ".join(sorted(BASELINE_TABLES - present))
        raise MigrationError(f"app DB has some agent-ticket tables but not all (missing: {missing}); fix it by hand")
    config.attributes["connection"] = connection
    command.stamp(config, BASELINE_REVISION)


def _upgrade(connection: Connection, config: Config, revision: str) -> None:
    from alembic import command

    if connection.dialect.name == "postgresql":
        # Several pods may start at once; the lock makes the others wait, then find nothing to do.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
    _adopt_unversioned(connection, config)
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade_app_db(url: str, revision: str = "head") -> None:
    """Bring the app DB at `url` (an async SQLAlchemy URL) to `revision` in one transaction."""
    config = alembic_config()
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade, config, revision)
    finally:
        await engine.dispose()
