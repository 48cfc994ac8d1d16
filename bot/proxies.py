"""Who is on the other end of a request: the connecting peer, and the client behind trusted proxies.

Uvicorn's own proxy handling is switched off (`bot/server.py`) and its `ProxyHeadersMiddleware`
runs inside the app instead, trusting only `FORWARDED_ALLOW_IPS` (default: nobody). Before it
rewrites the client, `PeerAddressMiddleware` keeps the address the connection really came
from, so the SSO check can ask whether *that* is a trusted proxy.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from core.settings import Settings

PEER_STATE_KEY = "peer_address"


class PeerAddressMiddleware:
    """Keeps the connecting peer's address in `request.state` before any header can change the client."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            scope.setdefault("state", {})[PEER_STATE_KEY] = client[0] if client else None
        await self.app(scope, receive, send)


def peer_address(request: Request) -> str | None:
    """The address of whoever opened the connection: the proxy, when there is one."""
    value = request.scope.get("state", {}).get(PEER_STATE_KEY)
    return value if isinstance(value, str) else None


def client_address(request: Request) -> str:
    """The client's address: the peer, or what a trusted proxy said it forwarded for."""
    return request.client.host if request.client else "unknown"


def proxy_middleware(settings: Settings) -> list[Middleware]:
    """Outermost first: record the peer, then believe `X-Forwarded-*` only from FORWARDED_ALLOW_IPS."""
    return [
        Middleware(PeerAddressMiddleware),
        Middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.forwarded_allow_ips)),
    ]
