"""Refusing forged form posts: a per-session token, and the browser's own word on where a post came from.

Either check alone stops a cross-site post; both are kept so a leaked token or a missing
header is not enough on its own.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from starlette.requests import Request

from bot.dashboard.sessions import KEY_CSRF, new_token

CSRF_FIELD = "csrf_token"


def csrf_token(request: Request) -> str:
    """This session's token, made on first use (the sign-in form needs one before sign-in)."""
    token = request.session.get(KEY_CSRF)
    if not isinstance(token, str) or not token:
        token = new_token()
        request.session[KEY_CSRF] = token
    return token


def csrf_matches(request: Request, submitted: object) -> bool:
    expected = request.session.get(KEY_CSRF)
    if not isinstance(expected, str) or not expected or not isinstance(submitted, str) or not submitted:
        return False
    return hmac.compare_digest(expected.encode(), submitted.encode())


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of a URL, lower-cased; "" when it has none."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if not parts.scheme or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(request: Request, public_url: str) -> bool:
    """Whether the browser says the post came from this dashboard's own pages.

    `Sec-Fetch-Site` must be `same-origin` when sent; `Origin` (or, without it, `Referer`) must
    be `PUBLIC_URL`'s origin. The request's own `Host` is not evidence: whoever sends the
    request chooses it. A post with neither header is refused: every browser that can run the
    dashboard sends one.
    """
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site != "same-origin":
        return False
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return False
    expected = origin_of(public_url)
    return bool(expected) and origin_of(source) == expected
