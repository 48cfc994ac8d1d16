"""The dashboard in real headless Chromium against uvicorn and the real workflow on the dev server.

Set AGENT_TICKET_SCREENSHOT=path.png to also save the pending ticket's page (see
scripts/screenshot_dashboard.py).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
from playwright.async_api import Browser, BrowserContext, expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from temporalio.testing import WorkflowEnvironment

from core.models import OutcomeStatus, TicketStatus
from core.names import ticket_label
from tests.dashboard.browser import CHROMIUM, chromium, signed_in_page
from tests.dashboard.harness import DashboardWorld, dashboard_world
from tests.dashboard.undo_world import UndoWorld, undo_world
from tests.support import base_url_of, bound_socket, serve

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Chromium is not installed at /usr/bin/chromium (run `make browser-deps`)"
)

SCREENSHOT = os.environ.get("AGENT_TICKET_SCREENSHOT")


@pytest.fixture(scope="module")
def listening() -> Iterator[socket.socket]:
    sock = bound_socket()
    yield sock
    sock.close()


@pytest.fixture(scope="module")
async def world(
    local_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory, listening: socket.socket
) -> AsyncIterator[DashboardWorld]:
    """The module's dashboard, whose PUBLIC_URL is where Chromium reaches it (the Origin check needs that)."""
    public_url = base_url_of(listening)
    async with dashboard_world(local_env.client, tmp_path_factory.mktemp("browser"), public_url=public_url) as built:
        yield built


@pytest.fixture(scope="module")
async def base_url(world: DashboardWorld, listening: socket.socket) -> AsyncIterator[str]:
    async with serve(world.app, listening) as url:
        yield url


@pytest.fixture(scope="module")
def undo_listening() -> Iterator[socket.socket]:
    sock = bound_socket()
    yield sock
    sock.close()


@pytest.fixture(scope="module")
async def undo(
    local_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory, undo_listening: socket.socket
) -> AsyncIterator[UndoWorld]:
    """A second dashboard, on the real pipeline: reverting needs rows really changed and their images kept."""
    public_url = base_url_of(undo_listening)
    async with undo_world(local_env.client, tmp_path_factory.mktemp("undo"), public_url=public_url) as built:
        yield built


@pytest.fixture(scope="module")
async def undo_base_url(undo: UndoWorld, undo_listening: socket.socket) -> AsyncIterator[str]:
    async with serve(undo.app, undo_listening) as url:
        yield url


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile (no cookies) per test, laptop-sized."""
    created = await browser.new_context(viewport={"width": 1280, "height": 900})
    created.set_default_timeout(10_000)
    yield created
    await created.close()


def _finished(status: TicketStatus) -> bool:
    return status.outcome is not None


async def test_approver_reviews_approves_and_watches_it_finish_without_reload(
    world: DashboardWorld, base_url: str, context: BrowserContext
) -> None:
    hold = asyncio.Event()
    world.gate.hold = hold
    try:
        short_id = await world.file_ticket()
        page = await signed_in_page(context, base_url, "bob")

        row = page.locator(f'tr[data-ticket="{short_id}"]')
        await expect(row).to_have_class("pending")
        await expect(row).to_contain_text("awaiting approval")
        await expect(row).to_contain_text("medium risk")
        statuses = await page.locator("table.tickets tbody tr").evaluate_all("rows => rows.map(r => r.className)")
        assert statuses == sorted(statuses, key=lambda name: name != "pending"), "pending approvals come first"
        await row.locator("a.ticket-link").click()
        await page.wait_for_url(f"{base_url}/tickets/{short_id}")

        await expect(page.locator("#plan")).to_contain_text("Turn on SSO and audit export for acme-corp")
        await expect(page.locator("#plan table.operations")).to_contain_text("enabled = true")
        await expect(page.locator("#plan table.operations")).to_contain_text("name in ('sso', 'audit_export')")
        await expect(page.locator("#findings")).to_contain_text("The plan changes 2 distinct rows of feature_flags")
        await expect(page.locator("#findings")).to_contain_text("Reads feature_flags; changes nothing.")
        await expect(page.locator("#preview td.changed").first).to_contain_text("false → true")
        await expect(page.locator("#audit")).to_contain_text("approval requested")
        if SCREENSHOT:
            await page.screenshot(path=SCREENSHOT, full_page=True)

        await page.fill("#approve-form textarea[name=comment]", "Checked with billing")
        await page.click("#approve-form button")
        await page.wait_for_url(f"{base_url}/tickets/{short_id}")
        await expect(page.locator(".flash-ok")).to_contain_text(f"Your approval of T-{short_id} was sent.")
        await expect(page.locator("#ticket-status")).to_contain_text("executing")
        await page.evaluate("window.__sameDocument = true")

        hold.set()
        await expect(page.locator("#ticket-status")).to_contain_text("done")
        await expect(page.locator("#outcome-reason")).to_contain_text("executed: 2 row(s) changed")
        await expect(page.locator("#decision-panel")).to_contain_text("Decided by bob")
        assert await page.evaluate("window.__sameDocument === true"), "the page must update without a reload"
    finally:
        world.gate.hold = None
        hold.set()
    final = await world.wait_for(short_id, _finished)
    assert final.outcome is not None and final.outcome.status is OutcomeStatus.DONE
    assert await world.executions_of(short_id) == 1


async def test_approver_rejects_with_a_reason(world: DashboardWorld, base_url: str, context: BrowserContext) -> None:
    short_id = await world.file_ticket()
    page = await signed_in_page(context, base_url, "alice")
    await page.goto(f"{base_url}/tickets/{short_id}")

    await page.click("#reject-form button")  # no reason: the browser keeps the form open
    assert page.url == f"{base_url}/tickets/{short_id}"
    await expect(page.locator("#ticket-status")).to_contain_text("awaiting approval")

    await page.fill("#reject-form textarea[name=reason]", "Globex stays on starter until renewal")
    await page.click("#reject-form button")
    await expect(page.locator("#ticket-status")).to_contain_text("rejected")
    await expect(page.locator("#outcome-reason")).to_contain_text(
        "rejected by alice: Globex stays on starter until renewal"
    )
    final = await world.wait_for(short_id, _finished)
    assert final.outcome is not None and final.outcome.status is OutcomeStatus.REJECTED
    assert await world.executions_of(short_id) == 0


async def test_non_approver_and_signed_out_visitor_cannot_decide(
    world: DashboardWorld, base_url: str, browser: Browser, context: BrowserContext
) -> None:
    short_id = await world.file_ticket()
    page = await signed_in_page(context, base_url, "mallory")
    await page.goto(f"{base_url}/tickets/{short_id}")
    await expect(page.locator("#findings")).to_contain_text("The plan changes 2 distinct rows of feature_flags")
    await expect(page.locator("#approve-form")).to_have_count(0)
    await expect(page.locator("#reject-form")).to_have_count(0)
    await expect(page.locator("#cannot-decide")).to_have_text("You are not an approver for this ticket.")

    # A forged post from mallory's own signed-in page, with her valid token and the shown ids.
    async with page.expect_navigation() as navigation:
        await page.evaluate(
            """(shortId) => {
                const form = document.createElement("form");
                form.method = "post";
                form.action = `/tickets/${shortId}/approve`;
                const fields = {
                    csrf_token: document.querySelector('input[name="csrf_token"]').value,
                    request_id: document.getElementById("request-id").textContent,
                    plan_hash: document.getElementById("plan-hash").textContent,
                };
                for (const [name, value] of Object.entries(fields)) {
                    const input = document.createElement("input");
                    input.type = "hidden"; input.name = name; input.value = value;
                    form.append(input);
                }
                document.body.append(form);
                form.submit();
            }""",
            short_id,
        )
    response = await navigation.value
    assert response is not None and response.status == 403
    await expect(page.locator(".problem")).to_contain_text("You (mallory) are not an approver")

    stranger = await browser.new_context()
    try:
        visitor = await stranger.new_page()
        await visitor.goto(f"{base_url}/tickets/{short_id}")
        assert visitor.url.startswith(f"{base_url}/login?next=")
        await expect(visitor.locator("body")).not_to_contain_text("Changes 2 rows")
        status = await world.service.status(short_id)
        assert status.approval is not None
        posted = await stranger.request.post(
            f"{base_url}/tickets/{short_id}/approve",
            form={"request_id": status.approval.request_id, "plan_hash": status.approval.plan_hash},
            headers={"Origin": base_url},
        )
        assert posted.status == 401
    finally:
        await stranger.close()
    status = await world.service.status(short_id)
    # Mallory's attempt reached the workflow and is on record, not counted; the visitor's never left the door.
    assert status.pending_approval and [(r.decision.decider, r.accepted) for r in status.decisions] == [
        ("mallory", False)
    ]


async def test_cross_site_form_post_is_refused(world: DashboardWorld, base_url: str, context: BrowserContext) -> None:
    short_id = await world.file_ticket()
    page = await signed_in_page(context, base_url, "bob")
    await page.goto(f"{base_url}/tickets/{short_id}")
    # Even with bob's real token (say it leaked), a post from another origin is refused.
    token = await page.locator('#approve-form input[name="csrf_token"]').input_value()
    request_id = await page.locator("#request-id").text_content()
    plan_hash = await page.locator("#plan-hash").text_content()

    async def attack(request: Request) -> HTMLResponse:
        return HTMLResponse(
            f"""<!doctype html><title>You won a prize</title>
            <form method="post" action="{base_url}/tickets/{short_id}/approve">
              <input type="hidden" name="csrf_token" value="{token}">
              <input type="hidden" name="request_id" value="{request_id}">
              <input type="hidden" name="plan_hash" value="{plan_hash}">
              <button id="claim">Claim your prize</button>
            </form>"""
        )

    async with serve(Starlette(routes=[Route("/", attack)])) as attacker_url:
        assert attacker_url != base_url  # same host, another port: another origin (and the same site)
        await page.goto(attacker_url)
        async with page.expect_navigation() as navigation:
            await page.click("#claim")
        response = await navigation.value
        assert response is not None and response.status == 403
        await expect(page.locator(".problem")).to_contain_text("Cross-site request refused")
    status = await world.service.status(short_id)
    assert status.pending_approval and status.decisions == []


async def test_requester_reverts_a_done_ticket_and_another_user_approves_it(
    undo: UndoWorld, undo_base_url: str, browser: Browser, context: BrowserContext
) -> None:
    base_url = undo_base_url
    invoice = await undo.unpaid_invoice()
    before = await undo.invoice(invoice)
    original, _ = await undo.paid_invoice_ticket()
    label = ticket_label(original)

    page = await signed_in_page(context, base_url, "bob")
    await page.locator(f'tr[data-ticket="{original}"] a.ticket-link').click()
    await page.wait_for_url(f"{base_url}/tickets/{original}")
    await expect(page.locator("#ticket-status")).to_contain_text("done")
    await expect(page.locator("#revert-form")).to_contain_text("Include changes made since (overwrite)")
    await page.click("#revert-form button")
    await page.wait_for_url(lambda url: url.startswith(f"{base_url}/tickets/") and not url.endswith(original))
    revert = page.url.rsplit("/", 1)[1]
    await expect(page.locator(".flash-ok")).to_contain_text(f"{ticket_label(revert)} reverts {label}")
    await expect(page.locator("#reverts")).to_contain_text(f"This ticket reverts {label}")
    await expect(page.locator("#ticket-status")).to_contain_text("awaiting approval")
    await expect(page.locator("#plan")).to_contain_text("Proposed by revert")
    await expect(page.locator("#preview td.changed")).to_contain_text(f"paid → {before['status']}")
    await expect(page.locator("#conflicts")).to_contain_text(f"Nothing: every row is as {label} left it.")
    await expect(page.locator("#cannot-decide")).to_be_visible()  # bob asked for it, so he cannot approve it

    other = await browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        alice = await signed_in_page(other, base_url, "alice")
        await alice.goto(f"{base_url}/tickets/{revert}")
        await alice.click("#approve-form button")
        await expect(alice.locator("#ticket-status")).to_contain_text("done")
        await alice.locator("#reverts a").click()
        await alice.wait_for_url(f"{base_url}/tickets/{original}")
        await expect(alice.locator("#reverted-by")).to_contain_text(
            f"This ticket was reverted by {ticket_label(revert)}"
        )
        await expect(alice.locator("#revert-form")).to_have_count(0)
    finally:
        await other.close()
    assert await undo.invoice(invoice) == before
