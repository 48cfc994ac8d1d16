"""The event stream over a real socket: it tells the page when the workflow moves on, and lets the bot stop."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from core.models import DecisionSource
from tests.dashboard.harness import DashboardWorld, sign_in
from tests.support import serve


@pytest.fixture(scope="module")
async def base_url(world: DashboardWorld) -> AsyncIterator[str]:
    async with serve(world.app) as url:
        yield url


@pytest.fixture
async def bob(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Signed in over the socket, as a browser would be."""
    async with httpx.AsyncClient(base_url=base_url, timeout=20) as client:
        assert (await sign_in(client, "bob")).status_code == 303
        yield client


async def _events(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, object]]]:
    name = ""
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield name, json.loads(line.removeprefix("data: "))


async def test_stream_sends_each_change_until_the_ticket_finishes(
    world: DashboardWorld, bob: httpx.AsyncClient
) -> None:
    short_id = await world.file_ticket()
    seen: list[str] = []
    async with bob.stream("GET", f"/tickets/{short_id}/events") as response:
        assert response.status_code == 200
        async for name, data in _events(response):
            assert name == "status"
            seen.append(str(data["status"]))
            if data["status"] == "awaiting_approval" and len(seen) == 1:
                status = await world.service.status(short_id)
                assert status.approval is not None
                await world.service.decide(short_id, status.approval.decision("alice", DecisionSource.CLI))
    assert seen[0] == "awaiting_approval" and seen[-1] == "done"  # the stream ended by itself at the outcome


async def test_stream_ends_when_the_bot_stops(world: DashboardWorld, bob: httpx.AsyncClient) -> None:
    short_id = await world.file_ticket()
    try:
        async with bob.stream("GET", f"/tickets/{short_id}/events") as response:
            events = _events(response)
            assert (await anext(events))[1]["status"] == "awaiting_approval"
            world.context.stopping.set()
            started = time.monotonic()
            async for _ in events:
                pass
            assert time.monotonic() - started < 3
    finally:
        world.context.stopping.clear()
