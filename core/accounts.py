"""Dashboard accounts as configured in `DASHBOARD_USERS`: who may sign in, as which approver.

Kept in core so a bad entry is refused when the settings load, naming the variable, rather
than when someone first tries to sign in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

ARGON2_HASH = re.compile(
    r"^\$argon2(id|i|d)\$v=\d+\$m=(?P<m>\d+),t=(?P<t>\d+),p=(?P<p>\d+)\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$"
)
# The most one check may cost, for dashboard passwords and MCP agents' tokens alike:
# argon2-cffi's old default (64 MiB, 3 passes, 4 lanes) still signs in; anything dearer is
# refused at start-up, since every sign-in post or bearer token, even for an unknown name,
# pays it (docs/security.md, "Bounded cost before authentication").
MAX_ARGON2_MEMORY_KIB = 64 * 1024
MAX_ARGON2_TIME_COST = 4
MAX_ARGON2_PARALLELISM = 4
# Entries are split at a comma that starts `name:identity:`; commas inside argon2 parameters
# (`m=65536,t=3,p=4`) are followed by no colon before the next `$`, so they stay put.
_ENTRY_SEPARATOR = re.compile(r"[,\n]\s*(?=[^\s,:$]+:[^\s,:$]*:)")


def argon2_cost_problem(match: re.Match[str]) -> str | None:
    """What is wrong with the cost of a hash matched by `ARGON2_HASH`, or None when it is within the bounds."""
    memory, passes, lanes = int(match["m"]), int(match["t"]), int(match["p"])
    if memory > MAX_ARGON2_MEMORY_KIB or passes > MAX_ARGON2_TIME_COST or lanes > MAX_ARGON2_PARALLELISM:
        return (
            f"the argon2 hash costs m={memory},t={passes},p={lanes}; at most m={MAX_ARGON2_MEMORY_KIB},"
            f"t={MAX_ARGON2_TIME_COST},p={MAX_ARGON2_PARALLELISM} is accepted"
        )
    return None


class DashboardAccount(BaseModel):
    """One dashboard user: sign-in name, the approver identity decisions are made as, a password hash.

    An empty hash means the user can only sign in through the trusted SSO header.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str = Field(pattern=r"^[A-Za-z0-9._@+-]{1,100}$")
    approver: str = Field(pattern=r"^[^\s:,]{1,200}$")
    password_hash: SecretStr = SecretStr("")

    @field_validator("password_hash")
    @classmethod
    def _argon2_only(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        if not text:
            return value
        match = ARGON2_HASH.match(text)
        if match is None:
            raise ValueError(
                "the password must be an argon2 hash (make one with `agent-ticket hash-password`), "
                "never the password itself"
            )
        if (too_dear := argon2_cost_problem(match)) is not None:
            raise ValueError(f"{too_dear} (make a new one with `agent-ticket hash-password`)")
        return value


def parse_hash_list(value: object, separator: re.Pattern[str], parse_entry: Callable[[str], dict[str, str]]) -> object:
    """A setting listing `…:$argon2…` entries, comma or newline separated (or a JSON list), each read by `parse_entry`.

    The separator looks ahead for the next entry's start, because an argon2 hash holds commas itself.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return []
    if text.startswith("["):
        return json.loads(text)
    entries = (entry.strip().rstrip(",") for entry in separator.split(text))
    return [parse_entry(entry) for entry in entries if entry]


def _account_entry(entry: str) -> dict[str, str]:
    parts = entry.split(":", 2)
    if len(parts) < 2:
        raise ValueError(f"entry {parts[0]!r} must look like username:approver_identity:argon2_hash")
    password_hash = parts[2] if len(parts) > 2 else ""
    return {"username": parts[0], "approver": parts[1], "password_hash": password_hash}


def parse_dashboard_users(value: object) -> object:
    """`alice:U123:$argon2id$...,bob:U456:$argon2id$...` (or a JSON list) into account dicts."""
    return parse_hash_list(value, _ENTRY_SEPARATOR, _account_entry)


def unique_usernames(accounts: list[DashboardAccount]) -> list[DashboardAccount]:
    """Refuse two accounts with one name: which password would count would be a guess."""
    seen: set[str] = set()
    for account in accounts:
        if account.username in seen:
            raise ValueError(f"user {account.username!r} is listed twice")
        seen.add(account.username)
    return accounts
