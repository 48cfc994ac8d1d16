"""A cap on request bodies, before any route reads them: no anonymous request can fill the bot's memory.

Slack's requests (commands, button clicks, modal submissions) are a few kilobytes; a body is
refused with 413 as soon as it is declared or read past the cap, before Bolt buffers it to check
its signature. Routes that take larger bodies (the codec endpoint) name their own cap.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """ASGI middleware: bodies over `default` bytes (or the cap of the longest matching path prefix) get 413."""

    def __init__(self, app: ASGIApp, default: int = DEFAULT_MAX_BODY_BYTES, by_prefix: Mapping[str, int] | None = None):
        self._app = app
        self._default = default
        self._by_prefix = dict(by_prefix or {})

    def _cap(self, path: str) -> int:
        matches = [prefix for prefix in self._by_prefix if path.startswith(prefix)]
        return self._by_prefix[max(matches, key=len)] if matches else self._default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        cap = self._cap(scope.get("path", ""))
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > cap:
            await _refuse(cap, scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _refuse(cap, scope, receive, send)


async def _refuse(cap: int, scope: Scope, receive: Receive, send: Send) -> None:
    response = PlainTextResponse(f"request body larger than {cap} bytes", status_code=413)
    await response(scope, receive, send)
