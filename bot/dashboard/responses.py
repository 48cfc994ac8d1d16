"""Turning a route's `Problem` into what the person sees: a page, a redirect to sign-in, or JSON."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from bot.dashboard.problems import Problem, SignInRequired
from bot.dashboard.templating import NO_STORE, Templates

Handler = Callable[[Request], Awaitable[Response]]


def safe_next(target: str | None) -> str:
    """A path on this site to return to after sign-in; anything else (another host) becomes `/`."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def login_redirect(request: Request, expired: bool = False) -> RedirectResponse:
    query = {"next": safe_next(request.url.path + (f"?{request.url.query}" if request.url.query else ""))}
    if expired:
        query["expired"] = "1"
    return RedirectResponse(f"/login?{urlencode(query)}", status_code=303, headers=NO_STORE)


def html_endpoint(templates: Templates, handler: Handler) -> Handler:
    """Pages: a signed-out GET goes to the sign-in page, every other problem gets an error page."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except SignInRequired as problem:
            if request.method in ("GET", "HEAD"):
                return login_redirect(request, expired=problem.expired)
            return problem_page(templates, request, problem)
        except Problem as problem:
            return problem_page(templates, request, problem)

    return endpoint


def _return_path(request: Request) -> str:
    """Where to go back to after signing in: the page itself, or for a post the ticket it was about."""
    if request.method in ("GET", "HEAD"):
        return safe_next(request.url.path)
    short_id = request.path_params.get("short_id")
    return f"/tickets/{short_id}" if short_id else "/"


def problem_page(templates: Templates, request: Request, problem: Problem) -> Response:
    return templates.page(
        request,
        "problem.html",
        {"problem": problem, "next": _return_path(request)},
        user=getattr(request.state, "user", None),
        status_code=problem.status_code,
    )


def json_endpoint(handler: Handler) -> Handler:
    """JSON and event streams: problems as `{"error": message}` with the status code."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except Problem as problem:
            return JSONResponse({"error": problem.message}, status_code=problem.status_code, headers=NO_STORE)

    return endpoint
