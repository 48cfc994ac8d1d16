"""Slowing password guessing: a few failed sign-ins per client and name, then a pause.

In memory and per process: enough to make guessing from one address slow; an internet-facing
deployment should also rate-limit at its proxy.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class LoginThrottle:
    def __init__(
        self,
        max_failures: int = 5,
        window_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self._max = max_failures
        self._window = window_seconds
        self._clock = clock
        self._max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        now = self._clock()
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self._window:
            times.popleft()
        return times

    def retry_after(self, *keys: str) -> int:
        """Seconds until another attempt is allowed for these keys, 0 when allowed now."""
        wait = 0.0
        for key in keys:
            times = self._recent(key)
            if len(times) >= self._max:
                wait = max(wait, times[0] + self._window - self._clock())
        return int(wait) + 1 if wait > 0 else 0

    def failed(self, *keys: str) -> None:
        if len(self._failures) > self._max_keys:
            self._failures = {key: times for key, times in self._failures.items() if self._recent(key)}
        now = self._clock()
        for key in keys:
            times = self._recent(key)
            times.append(now)
            self._failures[key] = times

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)
