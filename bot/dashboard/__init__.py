"""The approvals dashboard: review a ticket's plan and findings and decide on it, on the web.

Served by the bot's ASGI app. `dashboard_routes` and `dashboard_middleware` are what
`bot/app.py` plugs in; everything else is in the modules of this package.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from bot.context import BotContext
from bot.dashboard.decisions import Decisions
from bot.dashboard.deps import Dashboard
from bot.dashboard.headers import SecurityHeadersMiddleware
from bot.dashboard.live import Live
from bot.dashboard.login import Login
from bot.dashboard.pages import Pages
from bot.dashboard.responses import Handler, html_endpoint, json_endpoint
from bot.dashboard.reverts import Reverts
from bot.dashboard.sessions import session_middleware
from bot.dashboard.templating import STATIC_DIR


def dashboard_routes(context: BotContext) -> list[BaseRoute]:
    dashboard = Dashboard.build(context)
    pages = Pages(dashboard)
    decisions = Decisions(dashboard, pages)
    reverts = Reverts(dashboard, pages)
    live = Live(dashboard)
    login = Login(dashboard)

    def html(handler: Handler) -> Handler:
        return html_endpoint(dashboard.templates, handler)

    return [
        Route("/", html(pages.ticket_list), methods=["GET"], name="dashboard:tickets"),
        Route("/login", html(login.show), methods=["GET"], name="dashboard:login"),
        Route("/login", html(login.submit), methods=["POST"]),
        Route("/logout", html(login.logout), methods=["POST"], name="dashboard:logout"),
        Route("/tickets/{short_id}", html(pages.ticket), methods=["GET"], name="dashboard:ticket"),
        Route("/tickets/{short_id}/approve", html(decisions.approve), methods=["POST"]),
        Route("/tickets/{short_id}/reject", html(decisions.reject), methods=["POST"]),
        Route("/tickets/{short_id}/revert", html(reverts.revert), methods=["POST"]),
        Route("/tickets/{short_id}/status.json", json_endpoint(live.status_json), methods=["GET"]),
        Route("/tickets/{short_id}/events", json_endpoint(live.events), methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]


def dashboard_middleware(context: BotContext) -> list[Middleware]:
    settings = context.settings
    return [Middleware(SecurityHeadersMiddleware, hsts=settings.https_public_url), session_middleware(settings)]
