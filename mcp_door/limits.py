"""Per-agent rate limits: at most N events per key in a sliding window.

In memory and per process, like the dashboard's sign-in throttle: enough to keep one agent
from flooding approvers or the worker; a deployment with several bot replicas gets N per replica.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class RateLimited(Exception):
    """Over the limit; `retry_after` says in how many seconds another attempt is allowed."""

    def __init__(self, what: str, limit: int, window_seconds: float, retry_after: float) -> None:
        self.retry_after = max(1, int(retry_after + 0.999))
        super().__init__(
            f"rate limit: at most {limit} {what} per {_window(window_seconds)}; try again in {self.retry_after} s"
        )


def _window(seconds: float) -> str:
    return {60.0: "minute", 3600.0: "hour"}.get(float(seconds), f"{seconds:g} s")


class SlidingWindow:
    """`take(key)` counts one event for `key`, or raises `RateLimited` when the window is full.

    Checking and counting are one step with no `await` between them, so parallel calls cannot all
    pass a check that has not seen the others yet (as the dashboard's sign-in throttle, issue 14).
    """

    def __init__(
        self,
        what: str,
        limit: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self._what = what
        self._limit = limit
        self._window = window_seconds
        self._clock = clock
        self._max_keys = max_keys
        self._events: dict[str, deque[float]] = {}

    def take(self, key: str) -> None:
        now = self._clock()
        if len(self._events) > self._max_keys:
            self._events = {k: times for k, times in self._events.items() if times and times[-1] > now - self._window}
        times = self._recent(key, now)
        if len(times) >= self._limit:
            raise RateLimited(self._what, self._limit, self._window, times[0] + self._window - now)
        times.append(now)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._events.setdefault(key, deque())
        while times and times[0] <= now - self._window:
            times.popleft()
        return times
