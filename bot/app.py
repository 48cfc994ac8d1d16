"""The bot's public ASGI app (Slack at `/slack/events`, the dashboard, `/healthz`) and its metrics app.

`/metrics` is not on the public port: `metrics_app` serves it on BOT_METRICS_PORT, which only
the monitoring network should reach (compose publishes nothing, k8s allows it by NetworkPolicy).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.body_limit import BodySizeLimit
from bot.codec_routes import MAX_BODY_BYTES as CODEC_MAX_BODY_BYTES
from bot.codec_routes import codec_routes
from bot.context import BotContext
from bot.dashboard import dashboard_middleware, dashboard_routes
from bot.proxies import proxy_middleware
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
        *slack_routes(context),
        *dashboard_routes(context),
        *codec_routes(context),
        *(mcp.routes if mcp else []),
    ]
    middleware = [
        Middleware(BodySizeLimit, by_prefix={"/codec": CODEC_MAX_BODY_BYTES}),
        *proxy_middleware(context.settings),
        *dashboard_middleware(context),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=mcp.lifespan if mcp else None)
    app.state.context = context
    return app


def create_metrics_app(context: BotContext) -> Starlette:
    """`/metrics` alone, for the BOT_METRICS_PORT listener."""
    app = Starlette(routes=[Route("/metrics", metrics, methods=["GET"])])
    app.state.context = context
    return app
