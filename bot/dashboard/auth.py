"""Who may use the dashboard: password hashing and the configured accounts.

Passwords exist only as argon2 hashes (in `DASHBOARD_USERS`); `hash_password` makes one for
the CLI's `agent-ticket hash-password`. Verifying is deliberately slow and memory-hard, so it
runs in a thread behind a `PasswordCheckGate` that bounds how many run at once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from bot.dashboard.password_gate import PasswordCheckGate
from core.accounts import DashboardAccount
from core.settings import Settings

# OWASP's first argon2id configuration (19 MiB, 2 passes, 1 lane): about 30 ms on one core.
# Stored hashes may cost up to core.accounts.MAX_ARGON2_MEMORY_KIB; docs/security.md.
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1
_HASHER = PasswordHasher(time_cost=ARGON2_TIME_COST, memory_cost=ARGON2_MEMORY_KIB, parallelism=ARGON2_PARALLELISM)


def hash_password(password: str) -> str:
    """An argon2id hash of `password`, ready to paste into `DASHBOARD_USERS`."""
    if not password:
        raise ValueError("the password is empty")
    return _HASHER.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    """Whether `password` matches `password_hash`; a malformed hash matches nothing."""
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class DashboardUser:
    """A signed-in person: the name they sign in with and the approver identity they decide as."""

    username: str
    approver: str
    credential_tag: str


def credential_tag(account: DashboardAccount) -> str:
    """Changes whenever the account's password or identity does, so older sessions stop counting."""
    material = f"{account.username}\0{account.approver}\0{account.password_hash.get_secret_value()}"
    return hashlib.sha256(material.encode()).hexdigest()[:16]


class UserDirectory:
    """The accounts from settings, looked up by username or by approver identity."""

    def __init__(self, accounts: list[DashboardAccount], gate: PasswordCheckGate | None = None) -> None:
        self._gate = gate or PasswordCheckGate()
        self._by_name = {account.username: account for account in accounts}
        self._by_identity = {account.approver: account.username for account in accounts}
        # Unknown names are verified against a real account's hash (the result is thrown away),
        # so a miss costs as long as a wrong password, and nothing is hashed at start-up.
        self._decoy_hash = next(
            (stored for account in accounts if (stored := account.password_hash.get_secret_value())), None
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> UserDirectory:
        return cls(list(settings.dashboard_users), PasswordCheckGate(slots=settings.dashboard_login_concurrency))

    @property
    def empty(self) -> bool:
        return not self._by_name

    def user(self, username: str) -> DashboardUser | None:
        account = self._by_name.get(username)
        if account is None:
            return None
        return DashboardUser(account.username, account.approver, credential_tag(account))

    def display_name(self, identity: str | None) -> str:
        """`alice (U123ALICE)` for a known approver identity, else the identity itself."""
        if not identity:
            return ""
        username = self._by_identity.get(identity)
        return f"{username} ({identity})" if username and username != identity else identity

    async def authenticate(self, username: str, password: str) -> DashboardUser | None:
        """The user when the password is right, else None (also for unknown or SSO-only users).

        Unknown names cost one check against a real hash, like a wrong password; either waits for
        a slot of the gate, and `PasswordCheckBusy` says none came free.
        """
        account = self._by_name.get(username)
        stored = account.password_hash.get_secret_value() if account else ""
        target = stored or self._decoy_hash
        if target is None:  # no account has a password: nothing to compare, nothing to learn
            return None
        async with self._gate.slot():
            matches = await anyio.to_thread.run_sync(password_matches, target, password)
        if account is None or not stored or not matches:
            return None
        return self.user(username)
