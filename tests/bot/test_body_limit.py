"""Request bodies are capped before any route reads them (red team: one unsigned 256 MiB POST to
/slack/events was read whole before its signature was refused, and took the bot from 0.5 to 2 GiB)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bot.body_limit import BodySizeLimit

CAP = 1024


async def echo_length(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(len(await request.body())))


def app() -> Starlette:
    routes = [
        Route("/slack/events", echo_length, methods=["POST"]),
        Route("/codec/decode", echo_length, methods=["POST"]),
    ]
    return Starlette(routes=routes, middleware=[Middleware(BodySizeLimit, default=CAP, by_prefix={"/codec": 4 * CAP})])


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://bot")


async def chunks(total: int, size: int = 256) -> AsyncIterator[bytes]:
    for _ in range(total // size):
        yield b"x" * size


async def test_a_declared_body_over_the_cap_is_refused_before_it_is_read() -> None:
    async with client() as http:
        response = await http.post("/slack/events", content=b"x" * (CAP + 1))
    assert response.status_code == 413


async def test_a_streamed_body_without_a_length_is_cut_off_at_the_cap() -> None:
    async with client() as http:
        response = await http.post("/slack/events", content=chunks(8 * CAP))
    assert response.status_code == 413


async def test_bodies_within_the_cap_and_routes_with_their_own_cap_pass() -> None:
    async with client() as http:
        small = await http.post("/slack/events", content=b"x" * CAP)
        larger = await http.post("/codec/decode", content=b"x" * (3 * CAP))
    assert (small.status_code, small.text) == (200, str(CAP))
    assert (larger.status_code, larger.text) == (200, str(3 * CAP))
