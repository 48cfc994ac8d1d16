"""`agent-ticket sessions revoke USER`: end every dashboard session of a person at once.

For when a laptop is lost or a person leaves: their session cookies, wherever copied, stop
working on the next request to any bot that shares the app DB. Their account (in
`DASHBOARD_USERS`) is untouched; remove it there to stop new sign-ins.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from cli.errors import EXIT_BAD_INPUT, EXIT_FAILED
from core.bootstrap import Databases
from core.dashboard_sessions import SessionStore
from core.settings import ConfigError, Settings, load_settings

sessions_app = typer.Typer(help="Dashboard sessions: end them from the command line.", no_args_is_help=True)
console = Console()
errors = Console(stderr=True, soft_wrap=True)


async def revoke_sessions(settings: Settings, username: str) -> int:
    """Revoke every live session of `username`."""
    databases = Databases.open(settings)
    try:
        return await SessionStore(databases.app_sessions).revoke_user(username, reason="revoked by an administrator")
    finally:
        await databases.close()


@sessions_app.command()
def revoke(user: Annotated[str, typer.Argument(help="The dashboard username whose sessions end.")]) -> None:
    """End every dashboard session of USER, on every bot, at once."""
    username = user.strip()
    if not username or len(username) > 100:
        errors.print("USER must be a dashboard username (1 to 100 characters).")
        raise typer.Exit(EXIT_BAD_INPUT)
    try:
        settings = load_settings()
    except ConfigError as error:
        errors.print(str(error))
        raise typer.Exit(EXIT_BAD_INPUT) from None
    try:
        count = asyncio.run(revoke_sessions(settings, username))
    except (SQLAlchemyError, OSError) as error:
        errors.print(f"Could not revoke sessions in the app DB (has `agent-ticket init-db` run?): {error}")
        raise typer.Exit(EXIT_FAILED) from None
    noun = "session" if count == 1 else "sessions"
    console.print(f"Revoked {count} dashboard {noun} of {username}.", markup=False, highlight=False)
