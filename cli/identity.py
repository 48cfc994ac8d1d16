"""Who is at the keyboard: the identity a CLI ticket or decision is made under."""

from __future__ import annotations

import getpass


class UnknownIdentity(Exception):
    """Neither `--as` nor the operating system says who the user is."""


def current_user(as_user: str | None = None) -> str:
    """`--as USER` when given, else the OS login name; the approver rules apply to it either way.

    `--as` is not authentication: the CLI is for operators who can already reach Temporal
    directly, so the workflow's rules (approver list, four-eyes) are what protect a ticket.
    """
    if as_user is not None:
        if not as_user.strip():
            raise UnknownIdentity("--as must name a user.")
        return as_user.strip()
    try:
        return getpass.getuser()
    except (KeyError, OSError) as error:
        raise UnknownIdentity("Cannot tell who you are from the operating system; pass --as USER.") from error
