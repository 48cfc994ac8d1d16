"""Streamable HTTP in the bot: `/mcp`, behind a bearer token per agent.

`McpHttpDoor` is what `bot/app.py` mounts: its routes and the lifespan that runs the SDK's
session manager. Every HTTP request is authenticated before the SDK sees it, and the agent
it proves is put in the request's state, where the tools read it. Token checks are bounded
the way the dashboard's sign-ins are (issue 14): each attempt is recorded against its client
address before its argon2 check, in the same step as the limit check, so parallel guesses
cannot all slip under the limit; and at most a few checks run at once (`PasswordCheckGate`),
the rest answered 503 at once. A token that verified before is let through without either.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.transport_security import TransportSecuritySettings
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.context import BotContext
from bot.dashboard.password_gate import PasswordCheckBusy
from bot.dashboard.throttle import Limit, LoginThrottle
from mcp_door.catalog import CatalogReader
from mcp_door.desk import AgentDesk
from mcp_door.identity import TOKEN_SEPARATOR, Agent, AgentDirectory
from mcp_door.server import build_server

logger = logging.getLogger(__name__)

MCP_PATH = "/mcp"
AGENT_STATE_KEY = "mcp_agent"
FAILED_TOKENS_PER_MINUTE = 10


def token_throttle() -> LoginThrottle:
    """Failed tokens per client address: the one limit, so no agent can be locked out by name."""
    return LoginThrottle({"client": Limit(FAILED_TOKENS_PER_MINUTE, 60.0)})


class BearerAgentAuth:
    """ASGI middleware: a valid `Authorization: Bearer <token>` of an agent, or 401 (429, 503 when checks are busy)."""

    def __init__(self, app: ASGIApp, directory: AgentDirectory, throttle: LoginThrottle | None = None) -> None:
        self._app = app
        self._directory = directory
        self._throttle = throttle or token_throttle()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else "unknown"
        agent = await self._authenticate(scope, address)
        if isinstance(agent, JSONResponse):
            await agent(scope, receive, send)
            return
        scope.setdefault("state", {})[AGENT_STATE_KEY] = agent
        await self._app(scope, receive, send)

    async def _authenticate(self, scope: Scope, address: str) -> Agent | JSONResponse:
        header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return _unauthorized("send the agent's token as `Authorization: Bearer <token>`")
        if (known := self._directory.remembered(token)) is not None:
            return known  # verified before: neither argon2 work nor the failure throttle
        admission = self._throttle.admit(address, token.rpartition(TOKEN_SEPARATOR)[0])
        if not admission.allowed:
            detail = f"too many failed tokens from this address; try again in {admission.retry_after} s"
            return _refused("too_many_failed_tokens", detail, 429, admission.retry_after)
        try:
            agent = await self._directory.authenticate(token)
        except PasswordCheckBusy:
            self._throttle.withdraw(admission)  # never checked: it does not count as a miss
            logger.warning("MCP: a token from %s turned away: token checks busy", address)
            return _refused(
                "busy", "too many token checks at once; try again shortly", 503, PasswordCheckBusy.retry_after_seconds
            )
        if agent is None:
            logger.info("MCP: a bad agent token from %s", address)
            return _unauthorized("unknown agent token")
        self._throttle.succeeded(admission)
        return agent


def _refused(error: str, detail: str, status_code: int, retry_after: int) -> JSONResponse:
    return JSONResponse(
        {"error": error, "detail": detail}, status_code=status_code, headers={"Retry-After": str(retry_after)}
    )


def _unauthorized(detail: str) -> JSONResponse:
    return JSONResponse(
        {"error": "invalid_token", "detail": detail},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="agent-ticket", error="invalid_token"'},
    )


def agent_from_request(ctx: Context) -> Agent:
    """The agent `BearerAgentAuth` proved for the HTTP request that carried this tool call."""
    request: Any = ctx.request_context.request
    agent = getattr(getattr(request, "state", None), AGENT_STATE_KEY, None)
    if not isinstance(agent, Agent):  # unreachable behind BearerAgentAuth; refuse rather than guess
        raise PermissionError("no authenticated agent on this request")
    return agent


class McpHttpDoor:
    """The MCP server over streamable HTTP at `/mcp`, for the bot's ASGI app."""

    def __init__(self, context: BotContext) -> None:
        settings = context.settings
        desk = AgentDesk(context.service, settings)
        catalog = CatalogReader(context.databases.app_sessions, context.databases.target_engine)
        self._server = build_server(desk, catalog, agent_from_request)
        # DNS-rebinding checks guard unauthenticated local servers; every request here carries a bearer
        # token that a rebinding page cannot add, and the bot answers to its own PUBLIC_URL host.
        app = self._server.streamable_http_app(
            streamable_http_path=MCP_PATH,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self._app = BearerAgentAuth(app, AgentDirectory(list(settings.mcp_agents)))

    @property
    def routes(self) -> list[BaseRoute]:
        # A route with an ASGI endpoint passes the path on unchanged, so the SDK's app matches `/mcp` itself.
        return [Route(MCP_PATH, endpoint=self._app)]

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object) -> AsyncIterator[None]:
        async with self._server.session_manager.run():
            yield
