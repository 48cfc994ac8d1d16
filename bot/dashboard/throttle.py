"""Slowing password guessing: attempts counted per client and account, per client, per account and in all.

An attempt is recorded when it is admitted, before its password is checked, so parallel
guesses cannot all pass a check that has not seen the others yet (asyncio runs `admit` without
interruption). A successful sign-in takes its own attempt back; failures stay for the window.
Refused attempts are not recorded, so a lock-out ends one window after the last admitted guess.

The client is the peer address, or what a proxy in FORWARDED_ALLOW_IPS forwarded for
(`bot/proxies.py`). In memory and per process: every bot replica counts on its own, so an
internet-facing deployment should also rate-limit at its proxy (docs/security.md).
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    """At most `attempts` admitted failures per key in `window_seconds`."""

    attempts: int
    window_seconds: float = 300.0


# Per scope of the key; the pair limit is what a person mistyping meets first.
DEFAULT_LIMITS = {
    "pair": Limit(5),  # one client guessing one account
    "client": Limit(20),  # one client spraying many accounts
    "account": Limit(10),  # many clients guessing one account
    "global": Limit(300),  # everyone: a distributed spray slows to one check a second
}


@dataclass(frozen=True)
class Admission:
    """The outcome of `admit`: allowed (and recorded under `keys` at `at`), or how long to wait."""

    allowed: bool
    retry_after: int = 0
    keys: tuple[str, ...] = ()
    at: float = 0.0


class LoginThrottle:
    def __init__(
        self,
        limits: dict[str, Limit] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sweep_at: int = 10_000,
    ) -> None:
        self._limits = dict(DEFAULT_LIMITS if limits is None else limits)
        self._clock = clock
        self._sweep_at = sweep_at
        self._attempts: dict[str, deque[float]] = {}

    def _sweep(self, now: float) -> None:
        """Forget keys with nothing inside the longest window (keys no one asks about again)."""
        longest = max((limit.window_seconds for limit in self._limits.values()), default=0.0)
        self._attempts = {key: times for key, times in self._attempts.items() if times and times[-1] > now - longest}

    @staticmethod
    def keys_for(client: str, username: str) -> dict[str, str]:
        return {
            "pair": f"pair:{client}|{username}",
            "client": f"client:{client}",
            "account": f"account:{username}",
            "global": "global",
        }

    def _recent(self, key: str, window: float, now: float) -> deque[float]:
        times = self._attempts.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - window:
            times.popleft()
        if not times:
            del self._attempts[key]
        return times

    def admit(self, client: str, username: str) -> Admission:
        """Check every limit and, when all allow it, record the attempt, in one step."""
        now = self._clock()
        if len(self._attempts) > self._sweep_at:
            self._sweep(now)
        keys = {scope: key for scope, key in self.keys_for(client, username).items() if scope in self._limits}
        wait = 0.0
        for scope, key in keys.items():
            limit = self._limits[scope]
            times = self._recent(key, limit.window_seconds, now)
            if len(times) >= limit.attempts:
                wait = max(wait, times[0] + limit.window_seconds - now)
        if wait > 0:
            return Admission(False, retry_after=int(wait) + 1)
        for key in keys.values():
            self._attempts.setdefault(key, deque()).append(now)
        return Admission(True, keys=tuple(keys.values()), at=now)

    def withdraw(self, admission: Admission) -> None:
        """Take back an admitted attempt: it succeeded, or its password was never checked."""
        for key in admission.keys:
            times = self._attempts.get(key)
            if times is None:
                continue
            with contextlib.suppress(ValueError):
                times.remove(admission.at)
            if not times:
                del self._attempts[key]

    def succeeded(self, admission: Admission) -> None:
        """A right password: its attempt does not count, nor do this client's misses on this account."""
        self.withdraw(admission)
        pair = next((key for key in admission.keys if key.startswith("pair:")), None)
        if pair is not None:
            self._attempts.pop(pair, None)
