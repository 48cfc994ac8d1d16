"""`hash-password`: dashboard accounts for DASHBOARD_USERS, without the password stored anywhere."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from pydantic import ValidationError

from cli.console import console, fail, validation_message
from cli.errors import EXIT_BAD_INPUT


def hash_password_command(
    from_stdin: Annotated[
        bool, typer.Option("--stdin", help="Read the password from the first line of stdin (for scripts).")
    ] = False,
    user: Annotated[str | None, typer.Option(help="Also print a DASHBOARD_USERS entry for this sign-in name.")] = None,
    approver: Annotated[
        str | None, typer.Option(help="With --user: the approver identity they decide as (default: the name).")
    ] = None,
) -> None:
    """Make an argon2 hash for DASHBOARD_USERS; the password itself is never stored anywhere."""
    from bot.dashboard.auth import hash_password
    from core.accounts import DashboardAccount

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        hashed = hash_password(password)
    except ValueError as error:
        fail(str(error), EXIT_BAD_INPUT)
    if user is None:
        console.print(hashed, highlight=False, soft_wrap=True)
        return
    try:
        account = DashboardAccount(username=user, approver=approver or user, password_hash=hashed)
    except ValidationError as error:
        fail(validation_message(error, {"username": "--user", "approver": "--approver"}), EXIT_BAD_INPUT)
    entry = f"{account.username}:{account.approver}:{hashed}"
    console.print(f"DASHBOARD_USERS='{entry}'", highlight=False, soft_wrap=True, markup=False)
