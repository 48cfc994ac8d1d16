"""Signing in and out over HTTP: passwords, sessions and their lifetime, CSRF on the sign-in form, SSO."""

from __future__ import annotations

import json
import time
from base64 import b64decode, b64encode
from pathlib import Path

import httpx
from itsdangerous import TimestampSigner
from temporalio.testing import WorkflowEnvironment

from bot.dashboard.auth import credential_tag
from bot.dashboard.sessions import SESSION_COOKIE
from core.dashboard_sessions import SessionStore
from tests.dashboard.harness import (
    ORIGIN,
    PASSWORD,
    SESSION_SECRET,
    DashboardWorld,
    csrf_from,
    dashboard_world,
    http_client,
    sign_in,
)


async def test_signed_out_visitor_is_sent_to_sign_in(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/?status=awaiting_approval")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2F%3Fstatus%3Dawaiting_approval"
    assert (await anonymous.get("/tickets/abc")).headers["location"] == "/login?next=%2Ftickets%2Fabc"
    for path in ("/tickets/abc/status.json", "/tickets/abc/events"):
        denied = await anonymous.get(path)
        assert denied.status_code == 401 and denied.json() == {"error": "Sign in to use the dashboard."}


async def test_sign_in_then_sign_out(anonymous: httpx.AsyncClient) -> None:
    signed_in = await sign_in(anonymous, "bob")
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/"
    cookie = signed_in.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    home = await anonymous.get("/")
    assert home.status_code == 200 and ">bob<" in home.text

    signed_out = await anonymous.post("/logout", data={"csrf_token": csrf_from(home.text)}, headers={"Origin": ORIGIN})
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/login"
    assert "You are signed out." in (await anonymous.get("/login")).text
    assert (await anonymous.get("/")).status_code == 303


async def test_wrong_password_and_unknown_user_get_the_same_answer(anonymous: httpx.AsyncClient) -> None:
    wrong = await sign_in(anonymous, "bob", password="not-bobs-password")
    unknown = await sign_in(anonymous, "nobody", password="whatever")
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "Wrong username or password." in response.text
    assert (await anonymous.get("/")).status_code == 303


async def test_repeated_failures_are_throttled(anonymous: httpx.AsyncClient) -> None:
    for _ in range(5):
        assert (await sign_in(anonymous, "dave", password="guess")).status_code == 401
    throttled = await sign_in(anonymous, "dave")  # even the right password waits
    assert throttled.status_code == 429 and "Too many failed attempts" in throttled.text


async def test_sign_in_form_needs_csrf_token_and_same_origin(anonymous: httpx.AsyncClient) -> None:
    token = csrf_from((await anonymous.get("/login")).text)
    form = {"username": "bob", "password": PASSWORD["bob"], "csrf_token": token}
    missing = await anonymous.post("/login", data={**form, "csrf_token": ""}, headers={"Origin": ORIGIN})
    assert missing.status_code == 403 and "Reload the page" in missing.text
    cross_site = await anonymous.post("/login", data=form, headers={"Origin": "http://evil.test"})
    assert cross_site.status_code == 403 and "Cross-site request refused" in cross_site.text
    assert (await anonymous.post("/login", data=form, headers={"Origin": ORIGIN})).status_code == 303


async def test_next_never_leaves_the_site(anonymous: httpx.AsyncClient) -> None:
    token = csrf_from((await anonymous.get("/login")).text)
    response = await anonymous.post(
        "/login",
        data={"username": "bob", "password": PASSWORD["bob"], "csrf_token": token, "next": "//evil.test/x"},
        headers={"Origin": ORIGIN},
    )
    assert response.headers["location"] == "/"


async def _session_cookie(world: DashboardWorld, username: str, login_at: float, token: str = "t" * 20) -> str:
    """A live session signed with the server's key, as sign-in records it and SessionMiddleware writes it."""
    account = next(account for account in world.settings.dashboard_users if account.username == username)
    session_id = await SessionStore(world.databases.app_sessions).create(username, 12 * 3600)
    session = {
        "user": username,
        "sid": session_id,
        "login_at": int(login_at),
        "credential": credential_tag(account),
        "csrf": token,
    }
    data = b64encode(json.dumps(session).encode())
    return TimestampSigner(SESSION_SECRET).sign(data).decode()


async def test_session_older_than_its_lifetime_is_refused(world: DashboardWorld) -> None:
    short_id = await world.file_ticket()
    fresh = await _session_cookie(world, "bob", time.time() - 60)
    stale = await _session_cookie(world, "bob", time.time() - 13 * 3600)  # the lifetime is 12 h
    async with http_client(world.app) as client:
        client.cookies.set(SESSION_COOKIE, fresh)
        assert (await client.get("/")).status_code == 200

    async with http_client(world.app) as client:
        client.cookies.set(SESSION_COOKIE, stale)
        page = await client.get(f"/tickets/{short_id}")
        assert page.status_code == 303
        assert page.headers["location"] == f"/login?next=%2Ftickets%2F{short_id}&expired=1"
        assert "Your session has expired" in (await client.get(page.headers["location"])).text

    async with http_client(world.app) as client:
        client.cookies.set(SESSION_COOKIE, stale)
        status = await world.service.status(short_id)
        assert status.approval is not None
        approval = status.approval
        form = {"csrf_token": "t" * 20, "request_id": approval.request_id, "plan_hash": approval.plan_hash}
        post = await client.post(f"/tickets/{short_id}/approve", data=form, headers={"Origin": ORIGIN})
        assert post.status_code == 401 and "Your session has expired. Sign in again." in post.text
    assert (await world.service.status(short_id)).pending_approval


async def test_tampered_session_cookie_is_ignored(world: DashboardWorld) -> None:
    good = await _session_cookie(world, "mallory", time.time())
    payload, _, signature = good.partition(".")
    forged = json.loads(b64decode(payload))
    forged["user"] = "bob"
    async with http_client(world.app) as client:
        client.cookies.set(SESSION_COOKIE, b64encode(json.dumps(forged).encode()).decode() + "." + signature)
        assert (await client.get("/")).status_code == 303


async def test_changed_password_ends_older_sessions(local_env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with dashboard_world(local_env.client, tmp_path / "one") as first:
        cookie = await _session_cookie(first, "bob", time.time())
    rotated = first.settings.dashboard_users
    users = ",".join(
        f"{a.username}:{a.approver}:{a.password_hash.get_secret_value()}" for a in rotated if a.username != "bob"
    )
    new_bob = "bob:bob:$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHRzYWx0$" + "A" * 43
    async with (
        # The same app DB, so the session's row is live: only the changed password refuses it.
        dashboard_world(local_env.client, tmp_path / "one", dashboard_users=f"{users},{new_bob}") as second,
        http_client(second.app) as client,
    ):
        client.cookies.set(SESSION_COOKIE, cookie)
        assert (await client.get("/")).status_code == 303


async def test_trusted_header_signs_in_known_users_only(local_env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with dashboard_world(
        local_env.client, tmp_path / "data", dashboard_trusted_header="X-Forwarded-User", trusted_proxy_ips="127.0.0.1"
    ) as world:
        async with http_client(world.app) as client:
            home = await client.get("/", headers={"X-Forwarded-User": "alice"})
            assert home.status_code == 200 and ">alice<" in home.text
            stranger = await client.get("/", headers={"X-Forwarded-User": "eve"})
            assert stranger.status_code == 403 and "eve is not a dashboard user" in stranger.text
        async with http_client(world.app) as client:
            assert (await client.get("/")).status_code == 303  # no header, no session: sign in


async def test_no_configured_users_explains_how_to_add_one(local_env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with (
        dashboard_world(local_env.client, tmp_path / "data", dashboard_users="") as world,
        http_client(world.app) as client,
    ):
        page = (await client.get("/login")).text
        assert "No dashboard users are configured." in page and "agent-ticket hash-password" in page
        assert (await sign_in(client, "bob")).status_code == 401
