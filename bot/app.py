"""The bot's one ASGI app: Slack at `/slack/events`, the dashboard, `/healthz` and `/metrics`."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.codec_routes import codec_routes
from bot.context import BotContext
from bot.dashboard import dashboard_middleware, dashboard_routes
from bot.slack import slack_routes
from core.observability.exposition import CONTENT_TYPE, metrics_text
from mcp_door import http_door


async def healthz(request: Request) -> JSONResponse:
    """Liveness: the process serves requests. Temporal's reachability is reported, not required."""
    context: BotContext = request.app.state.context
    return JSONResponse({"ok": True, "slack": context.settings.slack_enabled})


async def metrics(request: Request) -> Response:
    """Prometheus text: the bot's ticket starts and decisions, plus the process's SDK metrics (METRICS_PORT)."""
    context: BotContext = request.app.state.context
    return Response(await metrics_text(context.settings), media_type=CONTENT_TYPE)


def create_app(context: BotContext) -> Starlette:
    mcp = http_door(context)  # `/mcp` for agents, when MCP_AGENTS names any
    routes = [
        Route("/healthz", healthz),
        Route("/metrics", metrics),
        *slack_routes(context),
        *dashboard_routes(context),
        *codec_routes(context),
        *(mcp.routes if mcp else []),
    ]
    app = Starlette(routes=routes, middleware=dashboard_middleware(context), lifespan=mcp.lifespan if mcp else None)
    app.state.context = context
    return app
