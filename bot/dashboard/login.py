"""Signing in and out: `/login` (password, or the trusted SSO header) and `/logout`."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot.dashboard.deps import Dashboard, form_text
from bot.dashboard.password_gate import PasswordCheckBusy
from bot.dashboard.responses import safe_next
from bot.dashboard.sessions import KEY_USER, flash
from bot.dashboard.templating import NO_STORE
from bot.proxies import client_address

logger = logging.getLogger(__name__)

# Longer passwords cost argon2 nothing much, but nobody types more; it bounds the form's work.
MAX_PASSWORD_LENGTH = 1024


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
        if (await self._d.sessions.visitor(request)).user is not None:
            return RedirectResponse(next_path, status_code=303, headers=NO_STORE)
        return self._form(request, next_path=next_path)

    async def submit(self, request: Request) -> Response:
        """Check a password, at a bounded cost: throttled first, then at most a few checks at once."""
        form = await self._d.read_form(request)
        self._d.check_post(request, form)
        username = form_text(form, "username", 100)
        password = form.get("password")
        next_path = safe_next(form_text(form, "next", 500))
        client = client_address(request)

        def answer(error: str, status_code: int, retry_after: int | None = None) -> Response:
            response = self._form(request, next_path=next_path, username=username, error=error, status_code=status_code)
            if retry_after is not None:
                response.headers["Retry-After"] = str(retry_after)
            return response

        if not username or not isinstance(password, str) or not password:
            return answer("Enter your username and password.", 400)
        if len(password) > MAX_PASSWORD_LENGTH:
            return answer(f"A password is at most {MAX_PASSWORD_LENGTH} characters.", 400)
        admission = self._d.throttle.admit(client, username)
        if not admission.allowed:
            logger.warning(
                "dashboard sign-in for %r from %s throttled for %ss", username, client, admission.retry_after
            )
            wait = admission.retry_after
            return answer(f"Too many failed attempts. Try again in {wait} seconds.", 429, wait)
        try:
            user = await self._d.directory.authenticate(username, password)
        except PasswordCheckBusy:
            self._d.throttle.withdraw(admission)
            logger.warning("dashboard sign-in for %r from %s turned away: password checks busy", username, client)
            return answer(
                "Too many sign-ins at once. Try again in a moment.", 503, PasswordCheckBusy.retry_after_seconds
            )
        if user is None:
            logger.warning("dashboard sign-in failed for %r from %s", username, client)
            return answer("Wrong username or password.", 401)
        self._d.throttle.succeeded(admission)
        await self._d.sessions.sign_in(request, user)
        logger.info("dashboard sign-in: %s (%s) from %s", user.username, user.approver, client)
        return RedirectResponse(next_path, status_code=303, headers=NO_STORE)

    async def logout(self, request: Request) -> Response:
        form = await self._d.read_form(request)
        self._d.check_post(request, form)
        username = request.session.get(KEY_USER)
        await self._d.sessions.sign_out(request)
        if isinstance(username, str):
            logger.info("dashboard sign-out: %s", username)
        flash(request, "ok", "You are signed out.")
        return RedirectResponse("/login", status_code=303, headers=NO_STORE)
