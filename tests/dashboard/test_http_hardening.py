"""Issue 14's findings over HTTP, each a case that held on the old dashboard and must not now.

Every test speaks from client addresses of its own (the throttle counts per address, and the
module shares one app), through the app as the bot serves it: the proxy middleware included.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from bot.app import create_metrics_app
from bot.dashboard.sessions import SESSION_COOKIE
from cli.main import app as cli_app
from core.settings import ConfigError, load_settings
from tests.dashboard.harness import ORIGIN, PASSWORD, DashboardWorld, csrf_from, dashboard_world, sign_in

BIDI_OVERRIDE = "\u202e"


@asynccontextmanager
async def client_at(world: DashboardWorld, address: str, base_url: str = ORIGIN) -> AsyncIterator[httpx.AsyncClient]:
    """A browser whose connections come from `address`."""
    transport = httpx.ASGITransport(app=world.app, client=(address, 50000))
    async with httpx.AsyncClient(transport=transport, base_url=base_url, follow_redirects=False) as client:
        yield client


async def _login_form(client: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    token = csrf_from((await client.get("/login")).text)
    return {"username": username, "password": password, "csrf_token": token, "next": "/"}


async def _approve(
    client: httpx.AsyncClient, world: DashboardWorld, short_id: str, comment: str = ""
) -> httpx.Response:
    page = await client.get(f"/tickets/{short_id}")
    status = await world.service.status(short_id)
    assert status.approval is not None
    form = {
        "csrf_token": csrf_from(page.text) if page.status_code == 200 else "stale-token",
        "request_id": status.approval.request_id,
        "plan_hash": status.approval.plan_hash,
        "comment": comment,
    }
    return await client.post(f"/tickets/{short_id}/approve", data=form, headers={"Origin": ORIGIN})


# ---------------------------------------------------------------- 2. a throttle that holds


async def test_parallel_guesses_are_counted_before_they_are_checked(world: DashboardWorld) -> None:
    """Old: 200 parallel guesses were all checked and the right one, last, signed in."""
    async with client_at(world, "10.14.2.1") as client:
        wrong = await _login_form(client, "dave", "guess")
        right = {**wrong, "password": PASSWORD["dave"]}
        guesses = [client.post("/login", data=wrong, headers={"Origin": ORIGIN}) for _ in range(40)]
        responses = await asyncio.gather(*guesses)
        last = await client.post("/login", data=right, headers={"Origin": ORIGIN})

    codes = [response.status_code for response in responses]
    assert codes.count(401) <= 5, codes  # at most the pair limit ever reached argon2
    assert set(codes) <= {401, 429, 503}
    assert last.status_code == 429 and last.headers["retry-after"].isdigit()


async def test_one_client_spraying_many_accounts_is_slowed(world: DashboardWorld) -> None:
    """Old: guesses across 20 usernames from one address were never slowed."""
    async with client_at(world, "10.14.2.2") as client:
        codes = []
        for index in range(24):
            form = await _login_form(client, f"user{index}", "Spring2026!")
            codes.append((await client.post("/login", data=form, headers={"Origin": ORIGIN})).status_code)
    assert codes[:20] == [401] * 20
    assert codes[20:] == [429] * 4


async def test_many_clients_guessing_one_account_are_slowed(world: DashboardWorld) -> None:
    """Old: there was no per-account limit; each address got its own five guesses."""
    codes = []
    for index in range(12):
        async with client_at(world, f"10.14.3.{index + 1}") as client:
            form = await _login_form(client, "carol", f"guess-{index}")  # unknown names count alike
            codes.append((await client.post("/login", data=form, headers={"Origin": ORIGIN})).status_code)
    assert codes[:10] == [401] * 10
    assert codes[10:] == [429, 429]


async def test_forwarded_for_is_ignored_unless_from_a_configured_proxy(world: DashboardWorld) -> None:
    """FORWARDED_ALLOW_IPS is empty here: a new X-Forwarded-For value is not a new client.

    The in-app half of the finding; tests/dashboard/test_bot_server.py shows it through uvicorn, where it broke.
    """
    async with client_at(world, "10.14.4.1") as client:
        for index in range(5):
            form = await _login_form(client, "dave", f"guess-{index}")
            assert (await client.post("/login", data=form, headers={"Origin": ORIGIN})).status_code == 401
        form = await _login_form(client, "dave", PASSWORD["dave"])
        spoofed = await client.post("/login", data=form, headers={"Origin": ORIGIN, "X-Forwarded-For": "203.0.113.9"})
    assert spoofed.status_code == 429


async def test_trusted_proxy_forwards_the_client_address(local_env: WorkflowEnvironment, tmp_path: Path) -> None:
    """Behind a configured proxy each forwarded client has its own count, so one's lock-out is not another's."""
    async with (
        dashboard_world(local_env.client, tmp_path / "data", forwarded_allow_ips="10.0.0.2") as world,
        client_at(world, "10.0.0.2") as proxy,
    ):
        for index in range(5):
            form = await _login_form(proxy, "dave", f"guess-{index}")
            headers = {"Origin": ORIGIN, "X-Forwarded-For": "198.51.100.7"}
            assert (await proxy.post("/login", data=form, headers=headers)).status_code == 401
        form = await _login_form(proxy, "dave", PASSWORD["dave"])
        other = await proxy.post("/login", data=form, headers={"Origin": ORIGIN, "X-Forwarded-For": "198.51.100.8"})
        assert other.status_code == 303


# ---------------------------------------------------------------- 3. revocable sessions


async def test_a_cookie_copied_before_sign_out_is_dead_after_it(world: DashboardWorld) -> None:
    """Old: a cookie copied before sign-out approved a ticket afterwards."""
    short_id = await world.file_ticket()
    async with client_at(world, "10.14.5.1") as browser:
        assert (await sign_in(browser, "bob")).status_code == 303
        copied = browser.cookies[SESSION_COOKIE]
        home = await browser.get("/")
        logout = {"csrf_token": csrf_from(home.text)}
        signed_out = await browser.post("/logout", data=logout, headers={"Origin": ORIGIN})
        assert signed_out.status_code == 303

    async with client_at(world, "10.14.5.2") as thief:
        thief.cookies.set(SESSION_COOKIE, copied)
        assert (await thief.get("/")).status_code == 303
        refused = await _approve(thief, world, short_id)
    assert refused.status_code in (401, 403)
    assert (await world.service.status(short_id)).pending_approval


async def test_sessions_revoke_ends_every_copy(world: DashboardWorld) -> None:
    async with client_at(world, "10.14.6.1") as laptop, client_at(world, "10.14.6.2") as phone:
        assert (await sign_in(laptop, "alice")).status_code == 303
        assert (await sign_in(phone, "alice")).status_code == 303
        assert (await laptop.get("/")).status_code == 200

        env = {"AGENT_TICKET_DATA_DIR": str(world.settings.data_dir), "APP_DATABASE_URL": world.settings.app_db_url}
        result = await asyncio.to_thread(CliRunner().invoke, cli_app, ["sessions", "revoke", "alice"], env=env)
        assert result.exit_code == 0, result.output
        assert "Revoked 2 dashboard sessions of alice." in result.output

        assert (await laptop.get("/")).status_code == 303
        assert (await phone.get("/")).status_code == 303
        assert (await sign_in(laptop, "alice")).status_code == 303  # signing in again works


# ---------------------------------------------------------------- 4. SSO only from the proxy


@pytest.fixture(scope="module")
async def sso_world(
    local_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[DashboardWorld]:
    async with dashboard_world(
        local_env.client,
        tmp_path_factory.mktemp("sso"),
        dashboard_trusted_header="X-Forwarded-User",
        trusted_proxy_ips="10.0.0.2",
        dashboard_trusted_header_secret="s" * 40,
    ) as built:
        yield built


async def test_a_bare_sso_header_from_anyone_is_ignored(sso_world: DashboardWorld) -> None:
    """Old: a bare `X-Forwarded-User: alice` from any client approved a ticket."""
    short_id = await sso_world.file_ticket()
    async with client_at(sso_world, "198.51.100.20") as stranger:
        stranger.headers["X-Forwarded-User"] = "alice"
        assert (await stranger.get("/")).status_code == 303
        refused = await _approve(stranger, sso_world, short_id)
    assert refused.status_code in (401, 403)
    assert (await sso_world.service.status(short_id)).pending_approval


async def test_sso_header_counts_from_the_proxy_or_with_its_secret_only(sso_world: DashboardWorld) -> None:
    async with client_at(sso_world, "10.0.0.2") as proxy:
        home = await proxy.get("/", headers={"X-Forwarded-User": "alice"})
        assert home.status_code == 200 and ">alice<" in home.text
    async with client_at(sso_world, "198.51.100.21") as elsewhere:
        with_secret = {"X-Forwarded-User": "alice", "X-Agent-Ticket-Proxy-Secret": "s" * 40}
        assert (await elsewhere.get("/", headers=with_secret)).status_code == 200
        wrong_secret = {"X-Forwarded-User": "alice", "X-Agent-Ticket-Proxy-Secret": "t" * 40}
        assert (await elsewhere.get("/", headers=wrong_secret)).status_code == 303


async def test_sso_header_is_checked_on_every_request_and_starts_no_session(sso_world: DashboardWorld) -> None:
    """Old: the session the header started outlived the header."""
    async with client_at(sso_world, "10.0.0.2") as proxy:
        assert (await proxy.get("/", headers={"X-Forwarded-User": "alice"})).status_code == 200
        assert (await proxy.get("/")).status_code == 303


async def test_duplicated_sso_header_is_refused(sso_world: DashboardWorld) -> None:
    async with client_at(sso_world, "10.0.0.2") as proxy:
        headers = [("X-Forwarded-User", "mallory"), ("X-Forwarded-User", "alice")]
        response = await proxy.get("/", headers=headers)
    assert response.status_code == 400 and "more than once" in response.text


async def test_sso_header_never_replaces_a_password_session(sso_world: DashboardWorld) -> None:
    """Old: the header replaced another user's signed-in session."""
    async with client_at(sso_world, "10.0.0.2") as proxy:
        assert (await sign_in(proxy, "bob")).status_code == 303
        clash = await proxy.get("/", headers={"X-Forwarded-User": "alice"})
        assert clash.status_code == 403 and "Sign out first" in clash.text
        home = await proxy.get("/")
    assert home.status_code == 200 and ">bob<" in home.text


def test_sso_header_without_a_trusted_sender_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="TRUSTED_PROXY_IPS or DASHBOARD_TRUSTED_HEADER_SECRET"):
        load_settings(_env_file=None, dashboard_trusted_header="X-Forwarded-User")
    with pytest.raises(ConfigError, match="TRUSTED_PROXY_IPS"):
        load_settings(_env_file=None, trusted_proxy_ips="not-an-address")


# ---------------------------------------------------------------- 6. the rest


async def test_bidi_controls_in_a_comment_are_refused(world: DashboardWorld) -> None:
    short_id = await world.file_ticket()
    async with client_at(world, "10.14.7.1") as client:
        assert (await sign_in(client, "bob")).status_code == 303
        response = await _approve(client, world, short_id, comment=f"fine {BIDI_OVERRIDE}evorppa ton")
    assert response.status_code == 400 and "invisible formatting character (U+202E)" in response.text
    assert (await world.service.status(short_id)).pending_approval


async def test_origin_must_be_public_url_not_the_requests_own_host(world: DashboardWorld) -> None:
    """Old: a post whose Origin matched its own Host header passed, whatever PUBLIC_URL said."""
    async with client_at(world, "10.14.8.1") as client:
        assert (await sign_in(client, "bob")).status_code == 303
        token = csrf_from((await client.get("/")).text)
        forged = await client.post(
            "/logout", data={"csrf_token": token}, headers={"Host": "evil.test", "Origin": "http://evil.test"}
        )
        assert forged.status_code == 403
        assert (await client.get("/")).status_code == 200  # still signed in


async def test_metrics_are_not_on_the_public_app(world: DashboardWorld) -> None:
    async with client_at(world, "10.14.9.1") as client:
        assert (await client.get("/metrics")).status_code == 404
    transport = httpx.ASGITransport(app=create_metrics_app(world.context))
    async with httpx.AsyncClient(transport=transport, base_url="http://metrics") as scraper:
        scraped = await scraper.get("/metrics")
    assert scraped.status_code == 200 and "agent_ticket_" in scraped.text


async def test_hsts_only_when_public_url_is_https(
    world: DashboardWorld, local_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with client_at(world, "10.14.10.1") as plain:
        assert "strict-transport-security" not in (await plain.get("/login")).headers
    async with (
        dashboard_world(local_env.client, tmp_path / "tls", public_url="https://dash.test") as secure,
        client_at(secure, "10.14.10.2", base_url="https://dash.test") as client,
    ):
        response = await client.get("/login")
    assert response.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
