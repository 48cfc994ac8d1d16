"""A bound on password checks in flight, so anonymous sign-in posts cannot exhaust the bot's memory.

Each argon2 check holds its memory cost (up to `MAX_ARGON2_MEMORY_KIB`) for its duration, in
a thread. Without a bound, N parallel posts cost N times that; with this gate at most `slots`
run, a few more wait briefly, and the rest are turned away at once with "busy" (a 503),
having cost nothing but parsing a small form. docs/security.md has the arithmetic.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class PasswordCheckBusy(Exception):
    """Every slot is taken and the queue is full (or the wait ran out): try again shortly."""

    retry_after_seconds = 1


class PasswordCheckGate:
    def __init__(self, slots: int = 2, max_waiting: int = 4, wait_seconds: float = 2.0) -> None:
        if slots < 1:
            raise ValueError("a gate needs at least one slot")
        self._slots = asyncio.Semaphore(slots)
        self._max_waiting = max_waiting
        self._wait_seconds = wait_seconds
        self._waiting = 0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the body; `PasswordCheckBusy` when none comes free in time."""
        if self._slots.locked():
            if self._waiting >= self._max_waiting:
                raise PasswordCheckBusy()
            self._waiting += 1
            try:
                await asyncio.wait_for(self._slots.acquire(), self._wait_seconds)
            except TimeoutError as error:
                raise PasswordCheckBusy() from error
            finally:
                self._waiting -= 1
        else:
            await self._slots.acquire()
        try:
            yield
        finally:
            self._slots.release()
