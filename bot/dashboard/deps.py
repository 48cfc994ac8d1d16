"""What every dashboard route shares, built once per app from the bot's context.

The checks that guard each route (signed in? form from our own page with this session's
token?) live here, so a route states them in one line each.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from bot.context import BotContext
from bot.dashboard.auth import DashboardUser, UserDirectory
from bot.dashboard.csrf import CSRF_FIELD, csrf_matches, same_origin
from bot.dashboard.problems import BadInput, Forbidden, NotFound, SignInRequired, TooLarge
from bot.dashboard.reader import TicketReader
from bot.dashboard.sessions import SessionPolicy
from bot.dashboard.templating import Templates
from bot.dashboard.throttle import LoginThrottle
from core.dashboard_sessions import SessionStore
from core.names import short_id_from
from core.settings import Settings
from service.tickets import TicketService

logger = logging.getLogger(__name__)

SHORT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_FORM_FIELDS = 12
MAX_FIELD_BYTES = 16 * 1024
MAX_FORM_BYTES = 64 * 1024


@dataclass
class Dashboard:
    settings: Settings
    service: TicketService
    directory: UserDirectory
    sessions: SessionPolicy
    templates: Templates
    reader: TicketReader
    throttle: LoginThrottle
    stopping: asyncio.Event

    @classmethod
    def build(cls, context: BotContext) -> Dashboard:
        settings = context.settings
        directory = UserDirectory.from_settings(settings)
        if directory.empty:
            logger.warning(
                "no dashboard users are configured: nobody can sign in to the dashboard. Make a hash with "
                "`agent-ticket hash-password` and set DASHBOARD_USERS='name:approver_identity:hash' in .env"
            )
        return cls(
            settings=settings,
            service=context.service,
            directory=directory,
            sessions=SessionPolicy.from_settings(settings, directory, SessionStore(context.databases.app_sessions)),
            templates=Templates(directory, settings.temporal_ui_url, settings.temporal_namespace),
            reader=TicketReader(context.service, context.databases.app_sessions),
            throttle=LoginThrottle(),
            stopping=context.stopping,
        )

    async def require_user(self, request: Request) -> DashboardUser:
        """The signed-in user, kept on `request.state` for error pages; else `SignInRequired`."""
        visitor = await self.sessions.visitor(request)
        if visitor.sso_unknown is not None:
            logger.warning("trusted header names %r, who is not in DASHBOARD_USERS", visitor.sso_unknown)
            raise Forbidden(f"{visitor.sso_unknown} is not a dashboard user. Ask an administrator to add you.")
        if visitor.user is None:
            if visitor.expired:
                raise SignInRequired("Your session has expired. Sign in again.", expired=True)
            raise SignInRequired()
        request.state.user = visitor.user
        return visitor.user

    async def read_form(self, request: Request) -> FormData:
        """A small url-encoded form; anything bigger or stranger is refused before it is read."""
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            raise BadInput("Expected a form post.")
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_FORM_BYTES:
            raise TooLarge("The form is larger than any dashboard form can be.")
        try:
            form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS, max_part_size=MAX_FIELD_BYTES)
        except MultiPartException as error:
            raise BadInput(f"The form could not be read: {error.message}") from error
        return form

    def check_post(self, request: Request, form: FormData) -> None:
        """Refuse a post that did not come from this dashboard's own page in this session."""
        if not same_origin(request, self.settings.public_url):
            logger.warning(
                "refused cross-site post to %s (origin %r, sec-fetch-site %r)",
                request.url.path,
                request.headers.get("origin") or request.headers.get("referer"),
                request.headers.get("sec-fetch-site"),
            )
            raise Forbidden("Cross-site request refused: this form did not come from the dashboard's own page.")
        if not csrf_matches(request, form.get(CSRF_FIELD)):
            logger.warning("refused post to %s: missing or wrong CSRF token", request.url.path)
            raise Forbidden("This form has expired or did not come from this dashboard. Reload the page and try again.")


def ticket_ref(request: Request) -> str:
    """The short id from the path (`abc123`, `T-abc123` or `ticket-abc123`); 404 for anything else."""
    raw = str(request.path_params.get("short_id", ""))
    short_id = short_id_from(raw)
    if not SHORT_ID.match(short_id):
        raise NotFound(f"There is no ticket {raw!r}.")
    return short_id


def form_text(form: FormData, name: str, max_length: int = 2000) -> str:
    value: Any = form.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadInput(f"{name} must be text.")
    if len(value) > max_length:
        raise BadInput(f"{name} is longer than {max_length} characters.")
    return value.strip()
