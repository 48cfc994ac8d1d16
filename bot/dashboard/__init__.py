"""The approvals dashboard (placeholder until its routes land)."""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from bot.context import BotContext


def dashboard_routes(context: BotContext) -> list[BaseRoute]:
    return []


def dashboard_middleware(context: BotContext) -> list[Middleware]:
    return []
