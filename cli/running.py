"""Running the product's processes from the CLI: `worker`, `bot` and `dev` (all of it in one process).

`dev` owns the order of things: Temporal first (embedded unless one answers), then the
databases, then worker and bot side by side; on Ctrl-C the worker and bot drain first and
the embedded server is stopped last, so no workflow task is cut off mid-flight by the
server going away and no `temporal` process outlives us.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError
from temporalio.client import Client

from cli.devserver import EmbeddedTemporal, TemporalUnavailable, try_connect
from cli.errors import CliError
from cli.styles import add_row, describe_url
from core.bootstrap import Databases, init_databases
from core.migrations import MigrationError
from core.policy import PolicyError
from core.settings import Settings
from worker.build import QueueRole, llm_queue_for

logger = logging.getLogger(__name__)

StopInstaller = Callable[[asyncio.Event], None]
DASHBOARD_PATH = "/"
SLACK_EVENTS_PATH = "/slack/events"


def slack_state(settings: Settings) -> str:
    """Whether Slack is on, in which mode, and if off which variables are missing."""
    if settings.slack_enabled:
        if settings.slack_app_token is not None:
            return "on — Socket Mode (SLACK_APP_TOKEN is set)"
        return f"on — HTTP mode, Events API at {bot_url(settings)}{SLACK_EVENTS_PATH}"
    missing = [
        name
        for name, value in (
            ("SLACK_BOT_TOKEN", settings.slack_bot_token),
            ("SLACK_SIGNING_SECRET", settings.slack_signing_secret),
        )
        if value is None
    ]
    return f"off — {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set (updates go to the log)"


def llm_state(settings: Settings) -> str:
    if settings.llm_enabled:
        where = settings.openai_base_url or "api.openai.com"
        return f"OpenAI-compatible planner, model {settings.openai_model} at {where}"
    return "offline planner (OPENAI_API_KEY is not set): a documented handful of intents over the demo schema"


def bot_url(settings: Settings) -> str:
    host = "localhost" if settings.bot_host in ("127.0.0.1", "0.0.0.0", "::") else settings.bot_host
    return f"http://{host}:{settings.bot_port}"


def ui_url(settings: Settings) -> str:
    """TEMPORAL_UI_URL when set; otherwise the local Web UI on TEMPORAL_UI_PORT (where `dev` puts it)."""
    if "temporal_ui_url" in settings.model_fields_set:
        return settings.temporal_ui_url
    return f"http://localhost:{settings.temporal_ui_port}"


@dataclass
class TemporalInfo:
    client: Client
    embedded: EmbeddedTemporal | None
    ui_url: str


def banner(settings: Settings, temporal: TemporalInfo) -> Table:
    """Where everything is, so a developer never has to guess a port or a file."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    if temporal.embedded is not None:
        server = (
            f"{settings.temporal_address} (embedded, pid {temporal.embedded.pid}, log {temporal.embedded.log_file})"
        )
    else:
        server = f"{settings.temporal_address} (already running; not started by us)"
    add_row(table, "Temporal gRPC", server)
    add_row(table, "Temporal Web UI", f"{temporal.ui_url}/namespaces/{settings.temporal_namespace}/workflows")
    add_row(table, "Namespace", settings.temporal_namespace)
    queue = settings.temporal_task_queue
    add_row(table, "Task queues", f"{queue}, {llm_queue_for(queue)}")
    url = bot_url(settings)
    add_row(table, "Bot", f"{url}{SLACK_EVENTS_PATH}  (health: {url}/healthz)")
    add_row(table, "Dashboard", f"{url}{DASHBOARD_PATH}")
    add_row(table, "Data dir", str(settings.data_dir.resolve()))
    add_row(table, "App DB", describe_url(settings.app_db_url))
    add_row(table, "Target DB", describe_url(settings.target_db_url))
    add_row(table, "LLM", llm_state(settings))
    add_row(table, "Slack", slack_state(settings))
    approvers = ", ".join(settings.approvers) or "none — set APPROVERS, or risky tickets cannot be approved"
    add_row(table, "Approvers", approvers)
    return table


@contextlib.asynccontextmanager
async def temporal_for_dev(settings: Settings, console: Console, startup_seconds: float) -> AsyncIterator[TemporalInfo]:
    """Use the server at TEMPORAL_ADDRESS if one answers; otherwise start the embedded one and stop it after."""
    try:
        client = await try_connect(settings, 3.0)
    except TemporalUnavailable:
        pass
    else:
        console.print(f"Using the Temporal server already answering at {settings.temporal_address}.")
        yield TemporalInfo(client, None, ui_url(settings))
        return
    embedded = EmbeddedTemporal(settings)
    console.print(f"Starting the embedded Temporal server on {settings.temporal_address}…")
    await embedded.start()
    try:
        client = await embedded.wait_ready(startup_seconds)
        yield TemporalInfo(client, embedded, ui_url(settings))
    finally:
        code = await embedded.stop()
        logger.info("embedded Temporal server stopped (exit code %s)", code)


async def run_worker_command(
    settings: Settings, role: QueueRole, install_stop: StopInstaller, console: Console
) -> None:
    from worker.main import run_workers

    client = await try_connect(settings)
    stop = asyncio.Event()
    install_stop(stop)
    queues = {
        QueueRole.WORKFLOWS: [settings.temporal_task_queue],
        QueueRole.LLM: [llm_queue_for(settings.temporal_task_queue)],
    }
    names = queues.get(role, [settings.temporal_task_queue, llm_queue_for(settings.temporal_task_queue)])
    ready = asyncio.Event()
    working = asyncio.create_task(run_workers(settings, role=role, stop=stop, client=client, ready=ready))
    await _announce_when_ready(
        ready,
        working,
        lambda: console.print(f"Worker polling {', '.join(names)} at {settings.temporal_address}; Ctrl-C to stop."),
    )
    if ready.is_set():
        spare_the_collector_the_startup_objects()
    await working
    console.print("Worker stopped.")


async def run_bot_command(settings: Settings, install_stop: StopInstaller, console: Console) -> None:
    from bot.server import BotStartError, serve_bot  # here, so a worker does not import the HTTP stack

    client = await try_connect(settings)
    stop = asyncio.Event()
    install_stop(stop)
    ready = asyncio.Event()
    serving = asyncio.create_task(serve_bot(settings, stop=stop, client=client, ready=ready))
    await _announce_when_ready(
        ready,
        serving,
        lambda: console.print(
            f"Bot serving {bot_url(settings)}{SLACK_EVENTS_PATH} — Slack {slack_state(settings)}; Ctrl-C to stop."
        ),
    )
    try:
        await serving
    except BotStartError as error:
        raise CliError(str(error)) from error
    console.print("Bot stopped.")


def spare_the_collector_the_startup_objects() -> None:
    """Move everything alive after start-up out of the cyclic garbage collector's sight.

    Modules, settings, engines and the SDK's machinery live as long as the process, yet every
    full collection walked them all: a worker paused 70 ms for each under load, and 20 ms once
    they were frozen (bench/notes.md). Only for the long-running worker process, which owns its
    interpreter; objects frozen here are never collected as cycles.
    """
    gc.collect()
    gc.freeze()


async def _announce_when_ready(ready: asyncio.Event, task: asyncio.Task[None], announce: Callable[[], None]) -> None:
    waiting = asyncio.create_task(ready.wait())
    await asyncio.wait({waiting, task}, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    if ready.is_set():
        announce()


async def run_dev(
    settings: Settings,
    install_stop: StopInstaller,
    console: Console,
    startup_seconds: float,
    notes: Sequence[str] = (),
) -> int:
    """Temporal, databases, worker and bot in one process until Ctrl-C; returns the exit code."""
    from bot.server import serve_bot
    from worker.main import run_workers

    stop = asyncio.Event()
    install_stop(stop)
    async with temporal_for_dev(settings, console, startup_seconds) as temporal:
        if stop.is_set():
            return 0
        if "temporal_ui_url" not in settings.model_fields_set:
            settings = settings.model_copy(update={"temporal_ui_url": temporal.ui_url})
        databases = Databases.open(settings)
        try:
            await init_databases(databases, settings)
        except (SQLAlchemyError, OSError, MigrationError, PolicyError) as error:
            raise CliError(f"Could not initialise the databases: {error}") from error
        finally:
            await databases.close()
        ready = asyncio.Event()
        tasks = [
            asyncio.create_task(run_workers(settings, stop=stop, client=temporal.client), name="worker"),
            asyncio.create_task(serve_bot(settings, stop=stop, client=temporal.client, ready=ready), name="bot"),
        ]
        watched: set[asyncio.Task[Any]] = set(tasks)
        if temporal.embedded is not None:
            watched.add(asyncio.create_task(temporal.embedded.wait_exited(), name="embedded Temporal server"))
        waiting = asyncio.create_task(ready.wait())
        await asyncio.wait({waiting, *watched}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if ready.is_set() and not any(task.done() for task in watched):
            console.print(banner(settings, temporal))
            for note in notes:
                console.print(note, style="yellow", markup=False)
            console.print("[bold green]agent-ticket dev is ready[/bold green] — press Ctrl-C to stop.")
            await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        code = await _stop_all(tasks, watched, stop, temporal, console)
        if temporal.embedded is not None:
            console.print("Stopping the embedded Temporal server…")
    if code == 0:
        console.print("Stopped cleanly.")
    return code


async def _stop_all(
    tasks: list[asyncio.Task[None]],
    watched: set[asyncio.Task[Any]],
    stop: asyncio.Event,
    temporal: TemporalInfo,
    console: Console,
) -> int:
    """Stop worker and bot, then say what (if anything) ended on its own; returns the exit code."""
    early = [] if stop.is_set() else [task for task in watched if task.done()]
    stop.set()
    console.print("Stopping worker and bot…")
    results = await asyncio.gather(*tasks, return_exceptions=True)
    code = 0
    for task, result in zip(tasks, results, strict=True):
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            console.print(f"[bold red]The {task.get_name()} failed:[/bold red] {escape(str(result))}")
            logger.debug("%s failed", task.get_name(), exc_info=result)
            code = 1
        elif task in early:
            console.print(f"[bold red]The {task.get_name()} stopped unexpectedly.[/bold red]")
            code = 1
    for task in watched - set(tasks):
        if task in early and temporal.embedded is not None:
            console.print(
                f"[bold red]The embedded Temporal server exited unexpectedly (code {task.result()}).[/bold red]\n"
                + escape(temporal.embedded.describe_log())
            )
            code = 1
        task.cancel()
    return code
