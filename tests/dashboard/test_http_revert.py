"""Revert over HTTP on the real pipeline: the button starts a revert ticket, and every bad post is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy import func, select
from temporalio.testing import WorkflowEnvironment

from core.models import OutcomeStatus, Risk, Stage, TicketSource
from core.names import ticket_label
from core.schema import TicketRow
from tests.dashboard.harness import ORIGIN, csrf_from, http_client, sign_in
from tests.dashboard.undo_world import UndoWorld, revert_key_from, undo_world


@pytest.fixture(scope="module")
async def undo(local_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[UndoWorld]:
    async with undo_world(local_env.client, tmp_path_factory.mktemp("dashboard-undo")) as built:
        yield built


@asynccontextmanager
async def signed_in(undo: UndoWorld, username: str) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(undo.app) as client:
        assert (await sign_in(client, username)).status_code == 303
        yield client


async def _revert_form(client: httpx.AsyncClient, short_id: str, **extra: str) -> dict[str, str]:
    page = await client.get(f"/tickets/{short_id}")
    assert page.status_code == 200 and 'id="revert-form"' in page.text, page.text
    return {"csrf_token": csrf_from(page.text), "revert_key": revert_key_from(page.text), **extra}


async def _post_revert(client: httpx.AsyncClient, short_id: str, form: dict[str, str]) -> httpx.Response:
    return await client.post(f"/tickets/{short_id}/revert", data=form, headers={"Origin": ORIGIN})


async def _reverts_of(undo: UndoWorld, short_id: str) -> int:
    """How many tickets were filed to revert `short_id` (the app DB lists each from its first audit batch)."""
    async with undo.pipeline.databases.app_sessions() as session:
        count = await session.scalar(
            select(func.count()).select_from(TicketRow).where(TicketRow.text.like(f"revert {ticket_label(short_id)}%"))
        )
    return count or 0


async def test_revert_button_starts_the_revert_which_puts_the_row_back_and_links_both_ways(undo: UndoWorld) -> None:
    invoice = await undo.unpaid_invoice()
    before = await undo.invoice(invoice)
    original, _ = await undo.paid_invoice_ticket()
    assert (await undo.invoice(invoice))["status"] == "paid"
    async with signed_in(undo, "bob") as bob:
        form = await _revert_form(bob, original)
        response = await _post_revert(bob, original, form)
        assert response.status_code == 303, response.text
        location = response.headers["location"]
        revert = location.removeprefix("/tickets/")
        assert revert != original
        again = await _post_revert(bob, original, form)  # the same click, sent twice
        assert again.status_code == 303 and again.headers["location"] == location

        status = await undo.wait_until_settled(revert)
        assert await _reverts_of(undo, original) == 1  # listed once it has left the worker; the same click filed one
        assert status.stage is Stage.AWAITING_APPROVAL, status.outcome
        assert status.request.reverts is not None and status.request.reverts.workflow_id == f"ticket-{original}"
        assert (status.request.requester, status.request.source) == ("bob", TicketSource.DASHBOARD)
        page = (await bob.get(location)).text
        assert f"{ticket_label(revert)} reverts {ticket_label(original)}" in page  # the flash
        assert f'This ticket reverts <a href="/tickets/{original}">{ticket_label(original)}</a>' in page
        assert "<del>paid</del>" in page and f"<ins>{before['status']}</ins>" in page  # the dry run's before → after
        assert "Nothing: every row is as" in page
        assert 'id="approve-form"' not in page  # bob asked for it: four-eyes

    await undo.pipeline.approve(revert, "carol")
    outcome = await undo.pipeline.service.result(revert)
    assert outcome.status is OutcomeStatus.DONE, outcome.reason
    assert await undo.invoice(invoice) == before
    async with signed_in(undo, "alice") as alice:
        page = (await alice.get(f"/tickets/{original}")).text
        assert f'This ticket was reverted by <a href="/tickets/{revert}">{ticket_label(revert)}</a>' in page
        assert 'id="revert-form"' not in page
        # The revert changed rows too: reverting it would restore the change.
        assert 'id="revert-form"' in (await alice.get(f"/tickets/{revert}")).text


async def test_forged_cross_site_and_signed_out_posts_start_nothing(undo: UndoWorld) -> None:
    original, _ = await undo.paid_invoice_ticket()
    async with signed_in(undo, "bob") as bob:
        form = await _revert_form(bob, original)
        forged = await _post_revert(bob, original, {**form, "csrf_token": "forged-" + form["csrf_token"][7:]})
        assert forged.status_code == 403 and "did not come from this dashboard" in forged.text
        cross_site = await bob.post(
            f"/tickets/{original}/revert", data=form, headers={"Origin": "https://evil.example"}
        )
        assert cross_site.status_code == 403 and "Cross-site request refused" in cross_site.text
        keyless = await _post_revert(bob, original, {"csrf_token": form["csrf_token"]})
        assert keyless.status_code == 400 and "one-off key" in keyless.text
    async with http_client(undo.app) as stranger:
        signed_out = await _post_revert(stranger, original, form)
        assert signed_out.status_code == 401 and "Sign in" in signed_out.text
    assert (await undo.status(original)).outcome is not None
    # A genuine click afterwards: once its revert is listed, any the refused posts had started would be too.
    async with signed_in(undo, "bob") as bob:
        genuine = await _post_revert(bob, original, await _revert_form(bob, original))
        assert genuine.status_code == 303, genuine.text
    await undo.wait_until_settled(genuine.headers["location"].removeprefix("/tickets/"))
    assert await _reverts_of(undo, original) == 1


async def test_a_ticket_that_is_not_done_cannot_be_reverted(undo: UndoWorld) -> None:
    invoice = await undo.unpaid_invoice()
    started = await undo.pipeline.service.start(undo.pipeline.request(f"mark invoice {invoice} as paid"))
    pending = started.short_id
    await undo.pipeline.wait_for_stage(pending, Stage.AWAITING_APPROVAL)
    async with signed_in(undo, "bob") as bob:
        page = await bob.get(f"/tickets/{pending}")
        assert 'id="revert-form"' not in page.text and 'id="approve-form"' in page.text
        form = {"csrf_token": csrf_from(page.text), "revert_key": "k1"}
        refused = await _post_revert(bob, pending, form)
        assert refused.status_code == 409
        assert (
            f"Cannot revert: {ticket_label(pending)} is awaiting_approval: only a ticket that executed can be reverted."
            in refused.text
        )
        assert 'id="approve-form"' in refused.text  # the ticket's page, with the problem above it
        missing = await _post_revert(bob, "nosuchticket", form)
        assert missing.status_code == 404 and "There is no ticket T-nosuchticket" in missing.text
    await undo.pipeline.approve(pending, "alice")
    assert (await undo.pipeline.service.result(pending)).status is OutcomeStatus.DONE
    assert await _reverts_of(undo, pending) == 0  # by now a revert the refused post had started would be listed


async def test_a_row_changed_since_is_shown_before_after_now_and_blocks_unless_overwriting(undo: UndoWorld) -> None:
    original, invoice = await undo.paid_invoice_ticket()
    after = await undo.invoice(invoice)
    await undo.change_invoice(invoice, amount_cents=after["amount_cents"] + 1)
    async with signed_in(undo, "bob") as bob:
        response = await _post_revert(bob, original, await _revert_form(bob, original))
        blocked = response.headers["location"].removeprefix("/tickets/")
        status = await undo.wait_until_settled(blocked)
        assert status.outcome is not None and status.outcome.status is OutcomeStatus.BLOCKED, status.status_label
        page = (await bob.get(f"/tickets/{blocked}")).text
        assert 'id="conflicts"' in page and "1 row(s) were changed by someone else" in page
        assert "The revert is blocked so their change is not overwritten" in page
        # amount_cents: the same before and after the original, another value now; status: put back by the original.
        amount = after["amount_cents"]
        assert f'<th scope="row">amount_cents</th>\n          <td>{amount}</td>\n          <td>{amount}</td>' in page
        assert f'<td class="changed">{amount + 1}</td>' in page
        assert '<th scope="row">status</th>' in page

        response = await _post_revert(bob, original, await _revert_form(bob, original, include_conflicts="1"))
        overwriting = response.headers["location"].removeprefix("/tickets/")
        status = await undo.wait_until_settled(overwriting)
        assert status.stage is Stage.AWAITING_APPROVAL and status.report is not None
        assert status.report.risk is Risk.HIGH
        page = (await bob.get(f"/tickets/{overwriting}")).text
        assert "overwriting changes made since" in page and "This revert was asked to go ahead anyway" in page
