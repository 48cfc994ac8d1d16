"""Running the product: `init-db`, `worker`, `bot`, `dev` (all of it in one process) and `reset-demo`."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError

from cli.console import configure_logging, console, fail
from cli.devserver import parse_address
from cli.errors import EXIT_BAD_INPUT, CliError
from cli.session import install_stop_handlers, open_app_databases, run, settings_or_exit
from cli.styles import describe_url
from core.bootstrap import Databases, init_databases
from core.migrations import MigrationError
from core.policy import PolicyError
from core.settings import Settings


def init_db() -> None:
    """Create the app tables, load the policy into the constraint table and seed the demo target DB."""
    settings = settings_or_exit()
    run(settings, _init_db(settings))


async def _init_db(settings: Settings) -> None:
    databases = Databases.open(settings)
    try:
        report = await init_databases(databases, settings)
    except (SQLAlchemyError, OSError, MigrationError, PolicyError) as error:
        raise CliError(f"Could not initialise the databases: {error}") from error
    finally:
        await databases.close()
    console.print(f"App DB ready:    {escape(describe_url(settings.app_db_url))}")
    demo = "seeded with demo data" if report.seeded_demo else "left as it was (already seeded or seeding off)"
    console.print(f"Target DB ready: {escape(describe_url(settings.target_db_url))} — {demo}")
    console.print(f"Policy loaded from {escape(str(settings.policy_file))}: {len(report.policy.tables)} table(s).")


def reset_demo(
    force: Annotated[
        bool, typer.Option("--force", help="Also when TARGET_DATABASE_URL names a database of your own.")
    ] = False,
) -> None:
    """Put the demo target DB back to its seeded rows, so the README's demo tickets work again.

    Tickets and the audit log are kept. Refuses a TARGET_DATABASE_URL of your own without --force:
    every row of the demo tables (plans, customers, users, subscriptions, invoices, feature_flags) is deleted.
    """
    settings = settings_or_exit()
    if settings.target_database_url and not force:
        fail(
            f"TARGET_DATABASE_URL is set ({describe_url(settings.target_db_url)}); reset-demo would delete every row "
            "of its demo tables. Add --force if that database is a demo.",
            EXIT_BAD_INPUT,
        )
    run(settings, _reset_demo(settings))


async def _reset_demo(settings: Settings) -> None:
    from core.demo import reset_demo_target

    databases = open_app_databases(settings)  # the installation must exist: no new data dir by mistake
    try:
        await reset_demo_target(databases.target_engine)
    except SQLAlchemyError as error:
        raise CliError(f"Could not reset the demo data: {error}") from error
    finally:
        await databases.close()
    console.print(f"Demo data reset in {escape(describe_url(settings.target_db_url))}.")


def worker(
    queue: Annotated[str, typer.Option(help="Which queue(s) to poll: workflows, llm or all.")] = "all",
) -> None:
    """Run the Temporal worker(s) until Ctrl-C or SIGTERM."""
    from worker.build import QueueRole

    try:
        role = QueueRole(queue.strip().lower())
    except ValueError:
        fail(f"--queue must be one of {', '.join(r.value for r in QueueRole)}; got {queue!r}.", EXIT_BAD_INPUT)
    settings = settings_or_exit()
    configure_logging(logging.INFO, settings.log_format)
    from cli.running import run_worker_command

    run(
        settings,
        run_worker_command(settings, role, install_stop_handlers, console),
        process="worker",
        serve_metrics=True,
    )


def bot() -> None:
    """Run the bot (Slack endpoint, dashboard, /healthz) until Ctrl-C or SIGTERM."""
    settings = settings_or_exit()
    configure_logging(logging.INFO, settings.log_format)
    from cli.running import run_bot_command

    run(settings, run_bot_command(settings, install_stop_handlers, console), process="bot", serve_metrics=True)


def dev(
    startup_timeout: Annotated[
        float, typer.Option(min=1, help="Seconds to wait for the embedded Temporal server.")
    ] = 60.0,
) -> None:
    """Everything at once: embedded Temporal (unless one answers), databases, worker and bot."""
    from cli.dev_defaults import write_demo_env

    notes = write_demo_env()
    settings = settings_or_exit()
    if "allow_unsigned_decisions" not in settings.model_fields_set:
        # On your own machine, a raw `temporal workflow signal` may decide too (docs/decisions.md).
        settings = settings.model_copy(update={"allow_unsigned_decisions": True})
    try:
        parse_address(settings.temporal_address)
    except ValueError as error:
        fail(str(error), EXIT_BAD_INPUT)
    configure_logging(logging.INFO, settings.log_format)
    from cli.running import run_dev

    code = run(
        settings,
        run_dev(settings, install_stop_handlers, console, startup_timeout, notes),
        process="dev",
        serve_metrics=True,
    )
    raise typer.Exit(code)
