"""Who is at the keyboard: the identity a CLI ticket or decision is made under."""

from __future__ import annotations

import getpass


class UnknownIdentity(Exception):
    """Neither `--as` nor the operating system says who the user is."""


def current_user(as_user: str | None = None) -> str:
    """`--as USER` when given, else the OS login name; the approver rules apply to it either way.

    The CLI host is a front door that knows people by their OS login, and signs decisions as
    that login; `--as` is for a machine of your own only (`decide` refuses it elsewhere).
    """
    if as_user is not None:
        if not as_user.strip():
            raise UnknownIdentity("--as must name a user.")
        return as_user.strip()
    try:
        return getpass.getuser()
    except (KeyError, OSError) as error:
        raise UnknownIdentity("Cannot tell who you are from the operating system; pass --as USER.") from error
