"""Signing in and out: `/login` (password, or the trusted SSO header) and `/logout`."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot.dashboard.deps import Dashboard, form_text
from bot.dashboard.responses import safe_next
from bot.dashboard.sessions import flash
from bot.dashboard.templating import NO_STORE

logger = logging.getLogger(__name__)


class Login:
    def __init__(self, dashboard: Dashboard) -> None:
        self._d = dashboard

    def _form(
        self, request: Request, *, next_path: str, error: str | None = None, username: str = "", status_code: int = 200
    ) -> Response:
        return self._d.templates.page(
            request,
            "login.html",
            {
                "next": next_path,
                "error": error,
                "username": username,
                "expired": request.query_params.get("expired") == "1",
                "no_users": self._d.directory.empty,
                "sso_header": self._d.settings.dashboard_trusted_header,
            },
            status_code=status_code,
        )

    async def show(self, request: Request) -> Response:
        next_path = safe_next(request.query_params.get("next"))
        if self._d.sessions.visitor(request).user is not None:
            return RedirectResponse(next_path, status_code=303, headers=NO_STORE)
        return self._form(request, next_path=next_path)

    async def submit(self, request: Request) -> Response:
        form = await self._d.read_form(request)
        self._d.check_post(request, form)
        username = form_text(form, "username", 100)
        password = form.get("password")
        next_path = safe_next(form_text(form, "next", 500))
        client = request.client.host if request.client else "unknown"
        keys = (f"{client}|{username}",)
        wait = self._d.throttle.retry_after(*keys)
        if wait:
            logger.warning("dashboard sign-in for %r from %s throttled for %ss", username, client, wait)
            return self._form(
                request,
                next_path=next_path,
                username=username,
                error=f"Too many failed attempts. Try again in {wait} seconds.",
                status_code=429,
            )
        if not username or not isinstance(password, str) or not password:
            return self._form(
                request,
                next_path=next_path,
                username=username,
                error="Enter your username and password.",
                status_code=400,
            )
        user = await self._d.directory.authenticate(username, password)
        if user is None:
            self._d.throttle.failed(*keys)
            logger.warning("dashboard sign-in failed for %r from %s", username, client)
            return self._form(
                request, next_path=next_path, username=username, error="Wrong username or password.", status_code=401
            )
        self._d.throttle.succeeded(*keys)
        self._d.sessions.sign_in(request, user)
        logger.info("dashboard sign-in: %s (%s) from %s", user.username, user.approver, client)
        return RedirectResponse(next_path, status_code=303, headers=NO_STORE)

    async def logout(self, request: Request) -> Response:
        form = await self._d.read_form(request)
        self._d.check_post(request, form)
        visitor = self._d.sessions.visitor(request)
        self._d.sessions.sign_out(request)
        if visitor.user is not None:
            logger.info("dashboard sign-out: %s", visitor.user.username)
        flash(request, "ok", "You are signed out.")
        return RedirectResponse("/login", status_code=303, headers=NO_STORE)
