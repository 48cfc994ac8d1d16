"""What every command shares: settings, the event loop with friendly failures, the ticket service.

`run` turns the failures a user can act on (a bad setting, Temporal unreachable, an unknown
ticket, a refused decision) into one message and an exit code instead of a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import typer
from sqlalchemy.engine import make_url
from temporalio.service import RPCError

from cli.console import errors, fail
from cli.devserver import DevServerError, TemporalUnavailable, try_connect
from cli.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, CliError
from cli.follow import TicketEnded, WaitTimedOut
from cli.identity import UnknownIdentity
from core.bootstrap import Databases
from core.names import is_short_id, short_id_from
from core.observability.setup import start_telemetry
from core.settings import ConfigError, Settings, load_settings
from service.tickets import TicketNotFound, TicketService

T = TypeVar("T")
logger = logging.getLogger("cli")


def settings_or_exit() -> Settings:
    """Settings from the environment and `.env`; a bad value names its variable and exits 2."""
    try:
        return load_settings()
    except ConfigError as error:
        fail(str(error), EXIT_BAD_INPUT)


def run(
    settings: Settings, coroutine: Coroutine[Any, Any, T], *, process: str = "cli", serve_metrics: bool = False
) -> T:
    """`asyncio.run` with the errors a user can act on turned into one message and an exit code.

    Telemetry (tracing when configured; the metrics port for long-running `process`es) is set up
    before the first client and flushed after the last.
    """
    try:
        telemetry = start_telemetry(settings, f"agent-ticket-{process}", serve_metrics=serve_metrics)
    except OSError as error:
        coroutine.close()
        fail(str(error))
    try:
        return asyncio.run(coroutine)
    except CliError as error:
        fail(str(error), error.code)
    except (TemporalUnavailable, DevServerError, TicketNotFound, TicketEnded, WaitTimedOut) as error:
        fail(str(error))
    except UnknownIdentity as error:
        fail(str(error), EXIT_BAD_INPUT)
    except RPCError as error:
        fail(f"Temporal at TEMPORAL_ADDRESS={settings.temporal_address} answered with an error: {error}")
    except KeyboardInterrupt:
        errors.print("Interrupted.")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        telemetry.shutdown()


def ticket_ref(value: str) -> str:
    """Accept `T-abc123`, `ticket-abc123` or `abc123`; refuse anything that cannot be a ticket id."""
    short_id = short_id_from(value)
    if not is_short_id(short_id):
        fail(f"{value!r} is not a ticket id (expected something like T-1a2b3c4d5e).", EXIT_BAD_INPUT)
    return short_id


def open_app_databases(settings: Settings) -> Databases:
    """The databases of an existing installation; an app DB file that is not there is an error, not created.

    Reading commands (`list`, `show --audit`) pointed at the wrong data dir would otherwise leave
    an empty database behind and answer "no tickets", hiding the mistake.
    """
    url = make_url(settings.app_db_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database or "")
        if not path.exists():
            where = (
                "APP_DATABASE_URL"
                if settings.app_database_url
                else f"AGENT_TICKET_DATA_DIR={settings.data_dir.resolve()}"
            )
            raise CliError(
                f"There is no app database at {path} ({where}). Point AGENT_TICKET_DATA_DIR at the data dir "
                "`agent-ticket dev` uses (run this from the same folder, or copy its lines from that folder's "
                ".env), or create one here with `agent-ticket init-db`."
            )
    return Databases.open(settings)


@dataclass
class Session:
    """A connected ticket service, with the app DB when the command needs it."""

    service: TicketService
    databases: Databases | None

    async def close(self) -> None:
        if self.databases is not None:
            await self.databases.close()


async def open_session(settings: Settings, *, with_databases: bool = False) -> Session:
    client = await try_connect(settings)
    databases = open_app_databases(settings) if with_databases else None
    sessions = databases.app_sessions if databases else None
    service = TicketService(client, sessions, settings.temporal_task_queue, signing_key=settings.signing_key)
    return Session(service, databases)


def install_stop_handlers(stop: asyncio.Event) -> None:
    """First Ctrl-C or SIGTERM: stop gracefully. A second one: cancel whatever is still running."""
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            errors.print("Second interrupt: stopping now.")
            if main_task is not None:
                main_task.cancel()
            return
        errors.print(f"\n{signal.Signals(signum).name} received: shutting down (again to force)…")
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        logger.debug("not the main thread: stop signals are left to the caller")
        return
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
