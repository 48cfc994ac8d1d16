"""Dashboard sessions: signed cookies that name a server-side session, with an absolute lifetime.

Starlette's `SessionMiddleware` signs the cookie and slides its expiry on every response, so
the time of sign-in is kept in the session and a session older than the configured lifetime
is refused whatever the activity. The cookie also carries the id of a row in the app DB
(`core/dashboard_sessions.py`): sign-out and `agent-ticket sessions revoke USER` end that row,
and with it every copy of the cookie. A session also stops counting when the account's
password or approver identity changes, or the account is removed from `DASHBOARD_USERS`.
The trusted SSO header (`sso.py`) never writes a session: it is checked on each request.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request

from bot.dashboard.auth import DashboardUser, UserDirectory
from bot.dashboard.problems import Forbidden
from bot.dashboard.sso import TrustedHeader
from core.dashboard_sessions import SessionStore
from core.settings import Settings

logger = logging.getLogger(__name__)

SESSION_COOKIE = "agent_ticket_session"
KEY_USER = "user"
KEY_SESSION_ID = "sid"
KEY_LOGIN_AT = "login_at"
KEY_CREDENTIAL = "credential"
KEY_VIA = "via"
KEY_CSRF = "csrf"
KEY_FLASH = "flash"
# A sign-in time this far in the future means a forged or clock-skewed cookie.
CLOCK_SKEW_SECONDS = 300


def session_secret(settings: Settings) -> str:
    """The configured cookie-signing key, or a random one for this process (development)."""
    if settings.dashboard_session_secret is not None:
        return settings.dashboard_session_secret.get_secret_value()
    logger.warning(
        "DASHBOARD_SESSION_SECRET is not set: using a random key, so dashboard sign-ins "
        "will not survive a restart (and will not work across several bot processes)"
    )
    return secrets.token_urlsafe(48)


def session_middleware(settings: Settings) -> Middleware:
    return Middleware(
        SessionMiddleware,
        secret_key=session_secret(settings),
        session_cookie=SESSION_COOKIE,
        max_age=int(settings.dashboard_session_hours * 3600),
        same_site="lax",
        https_only=settings.dashboard_secure_cookies,
    )


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Visitor:
    """Who is asking: a signed-in user, or nobody (and whether a session just expired)."""

    user: DashboardUser | None
    expired: bool = False
    sso_unknown: str | None = None
    via: str = "password"


class SessionPolicy:
    """Reads and writes the session for sign-in, sign-out and every request in between."""

    def __init__(
        self,
        directory: UserDirectory,
        store: SessionStore,
        lifetime_seconds: float,
        trusted_header: TrustedHeader | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._directory = directory
        self._store = store
        self._lifetime = lifetime_seconds
        self._trusted_header = trusted_header
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, directory: UserDirectory, store: SessionStore) -> SessionPolicy:
        return cls(directory, store, settings.dashboard_session_hours * 3600, TrustedHeader.from_settings(settings))

    @property
    def directory(self) -> UserDirectory:
        return self._directory

    async def visitor(self, request: Request) -> Visitor:
        """The signed-in user: named by the trusted proxy on this request, or by a live password session."""
        named = self._trusted_header.named(request) if self._trusted_header else None
        from_session = await self._session_visitor(request)
        if named is None:
            return from_session
        user = self._directory.user(named)
        if user is None:
            return Visitor(None, sso_unknown=named)
        if from_session.user is not None and from_session.user.username != user.username:
            logger.warning("SSO names %s but the session is %s's; refused", user.username, from_session.user.username)
            raise Forbidden(
                f"You are signed in as {from_session.user.username}, but your single sign-on says {user.username}. "
                "Sign out first."
            )
        return Visitor(user, via="header")

    async def _session_visitor(self, request: Request) -> Visitor:
        session = request.session
        username = session.get(KEY_USER)
        if not isinstance(username, str):
            return Visitor(None)
        session_id = session.get(KEY_SESSION_ID)
        login_at = session.get(KEY_LOGIN_AT)
        now = self._clock()
        if not isinstance(login_at, int | float) or not (now - self._lifetime <= login_at <= now + CLOCK_SKEW_SECONDS):
            logger.info("dashboard session of %s expired", username)
            await self.sign_out(request)
            return Visitor(None, expired=True)
        user = self._directory.user(username)
        if user is None or session.get(KEY_CREDENTIAL) != user.credential_tag:
            logger.info("dashboard session of %s no longer matches its account; signed out", username)
            await self.sign_out(request, reason="account changed")
            return Visitor(None, expired=True)
        live = await self._store.live(session_id) if isinstance(session_id, str) else None
        if live is None or live.username != username:
            logger.info("dashboard session of %s was ended (signed out or revoked); refused", username)
            session.clear()
            return Visitor(None, expired=True)
        return Visitor(user)

    async def sign_in(self, request: Request, user: DashboardUser) -> None:
        """A fresh session: nothing from before sign-in (a planted token, a flash) carries over."""
        session = request.session
        await self.sign_out(request, reason="signed in again")
        session_id = await self._store.create(user.username, self._lifetime)
        session.update(
            {
                KEY_USER: user.username,
                KEY_SESSION_ID: session_id,
                KEY_LOGIN_AT: int(self._clock()),
                KEY_CREDENTIAL: user.credential_tag,
                KEY_VIA: "password",
                KEY_CSRF: new_token(),
            }
        )

    async def sign_out(self, request: Request, reason: str = "signed out") -> None:
        """End this session for every copy of its cookie, then forget it here."""
        session_id = request.session.get(KEY_SESSION_ID)
        if isinstance(session_id, str):
            await self._store.revoke(session_id, reason)
        request.session.clear()


def flash(request: Request, kind: str, text: str) -> None:
    """A message for the next page this session sees (after a redirect)."""
    request.session[KEY_FLASH] = {"kind": kind, "text": text}


def pop_flash(request: Request) -> dict[str, Any] | None:
    message = request.session.pop(KEY_FLASH, None)
    return message if isinstance(message, dict) else None
