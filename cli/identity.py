"""Who is at the keyboard: the identity a CLI ticket or decision is made under."""

from __future__ import annotations

import os
import pwd


class UnknownIdentity(Exception):
    """Neither `--as` nor the operating system says who the user is."""


class NotYourMachine(Exception):
    """`--as` on a shared deployment: acting in someone else's name is for a machine of one's own."""


def acting_user(as_user: str | None, *, own_machine: bool, acts: str) -> str:
    """Who the command acts as: `--as USER` only on a machine of one's own, else the OS login.

    The requester of a ticket is one the approver rules exclude, so naming someone else would
    let a person ask for a change (or a revert) and approve it too. `own_machine` is
    ALLOW_UNSIGNED_DECISIONS (on under `agent-ticket dev`); `acts` says what, for the message.
    """
    if as_user is not None and not own_machine:
        raise NotYourMachine(
            f"--as {acts} in someone else's name, which only a machine of your own allows "
            "(ALLOW_UNSIGNED_DECISIONS, on under `agent-ticket dev`). Run it as your own login, "
            "or use Slack or the dashboard."
        )
    return current_user(as_user)


def current_user(as_user: str | None = None) -> str:
    """`--as USER` when given, else the OS login name; the approver rules apply to it either way.

    The CLI host is a front door that knows people by their OS login, and signs decisions as
    that login; `--as` is for a machine of your own only (`decide` refuses it elsewhere).
    """
    if as_user is not None:
        if not as_user.strip():
            raise UnknownIdentity("--as must name a user.")
        return as_user.strip()
    return os_login()


def os_login() -> str:
    """The login of the process's real user id, from the password database.

    Not `getpass.getuser()`: it believes `LOGNAME` and `USER` first, so `USER=alice agent-ticket
    approve …` signed a decision as alice (red team 19).
    """
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError as error:
        raise UnknownIdentity("Cannot tell who you are from the operating system; pass --as USER.") from error
