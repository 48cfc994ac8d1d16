"""Waiting on recorded outcomes with a deadline, never a fixed sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    read: Callable[[], Awaitable[T]], done: Callable[[T], bool], within: float = 20.0, what: str = "condition"
) -> T:
    """Read until `done` holds; fail after `within` seconds with the last value read."""
    deadline = time.monotonic() + within
    while True:
        value = await read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last seen: {value!r}"[:2000])
        await asyncio.sleep(0.05)
