"""The list and ticket pages over HTTP: what a signed-in reviewer sees, and 404 / 400 for bad input."""

from __future__ import annotations

import httpx

from tests.dashboard.harness import DashboardWorld


async def test_list_shows_pending_ticket_first_with_status_risk_requester(
    world: DashboardWorld, bob: httpx.AsyncClient
) -> None:
    pending = await world.file_ticket(requester="dave")
    response = await bob.get("/")
    assert response.status_code == 200
    page = response.text
    assert f"T-{pending}" in page
    assert 'data-status="awaiting_approval"' in page and 'data-risk="medium"' in page
    assert "dave" in page and "turn on sso and audit export for acme-corp" in page
    assert response.headers["cache-control"] == "no-store"
    assert "default-src 'self'" in response.headers["content-security-policy"]


async def test_list_filters_by_status_and_risk(world: DashboardWorld, bob: httpx.AsyncClient) -> None:
    pending = await world.file_ticket()
    assert f"T-{pending}" in (await bob.get("/?status=awaiting_approval&risk=medium")).text
    assert f"T-{pending}" not in (await bob.get("/?status=done")).text
    assert f"T-{pending}" not in (await bob.get("/?risk=high")).text


async def test_unknown_filter_is_a_400_with_message(bob: httpx.AsyncClient) -> None:
    response = await bob.get("/?status=sideways")
    assert response.status_code == 400
    assert "Unknown status &#39;sideways&#39;" in response.text


async def test_ticket_page_shows_plan_findings_preview_audit_and_temporal_link(
    world: DashboardWorld, bob: httpx.AsyncClient
) -> None:
    short_id = await world.file_ticket()
    status = await world.service.status(short_id)
    assert status.approval is not None
    response = await bob.get(f"/tickets/{short_id}")
    assert response.status_code == 200
    page = response.text
    assert "turn on sso and audit export for acme-corp" in page  # request text
    assert "Turn on SSO and audit export for acme-corp" in page  # plan summary
    assert "enabled = true" in page and "name in (&#39;sso&#39;, &#39;audit_export&#39;)" in page  # the operations
    # The real safety check's findings and its dry run's before → after, from the seeded demo data.
    assert "The plan changes 2 distinct rows of feature_flags" in page
    assert "Reads feature_flags; changes nothing." in page
    assert "<del>false</del>" in page and "<ins>true</ins>" in page
    assert "approval requested" in page and "submitted" in page  # audit timeline
    assert f"http://localhost:8233/namespaces/default/workflows/ticket-{short_id}" in page
    assert status.approval.request_id in page and status.approval.plan_hash in page
    assert 'id="approve-form"' in page and 'id="reject-form"' in page
    assert 'data-live="true"' in page


async def test_ticket_reference_forms_are_accepted(world: DashboardWorld, bob: httpx.AsyncClient) -> None:
    short_id = await world.file_ticket()
    assert (await bob.get(f"/tickets/T-{short_id}")).status_code == 200


async def test_unknown_ticket_is_404_everywhere(bob: httpx.AsyncClient) -> None:
    page = await bob.get("/tickets/nosuchticket")
    assert page.status_code == 404 and "There is no ticket T-nosuchticket" in page.text
    assert (await bob.get("/tickets/no%20such/status.json")).status_code == 404
    status = await bob.get("/tickets/nosuchticket/status.json")
    assert status.status_code == 404 and status.json() == {"error": "There is no ticket T-nosuchticket."}
    assert (await bob.get("/tickets/nosuchticket/events")).status_code == 404


async def test_non_approver_reads_but_is_offered_no_buttons(world: DashboardWorld, mallory: httpx.AsyncClient) -> None:
    short_id = await world.file_ticket()
    page = (await mallory.get(f"/tickets/{short_id}")).text
    assert "The plan changes 2 distinct rows of feature_flags" in page
    assert 'id="approve-form"' not in page and 'id="reject-form"' not in page
    assert "You are not an approver for this ticket." in page


async def test_requester_is_offered_no_buttons_on_own_ticket(world: DashboardWorld, bob: httpx.AsyncClient) -> None:
    short_id = await world.file_ticket(requester="bob")
    page = (await bob.get(f"/tickets/{short_id}")).text
    assert 'id="approve-form"' not in page
    assert "You filed this ticket, so someone else must decide on it." in page


async def test_status_json_reports_stage_and_version(world: DashboardWorld, bob: httpx.AsyncClient) -> None:
    short_id = await world.file_ticket()
    body = (await bob.get(f"/tickets/{short_id}/status.json")).json()
    assert body["status"] == "awaiting_approval" and body["pending_approval"] is True
    assert body["risk"] == "medium" and body["finished"] is False
    assert body["approval"]["required_approvals"] == 1 and len(body["version"]) == 16


async def test_live_fragment_is_only_the_ticket_part(world: DashboardWorld, bob: httpx.AsyncClient) -> None:
    short_id = await world.file_ticket()
    fragment = await bob.get(f"/tickets/{short_id}", headers={"X-Dashboard-Fragment": "ticket"})
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<div id="ticket"') and "<html" not in fragment.text
    assert f'data-events-url="/tickets/{short_id}/events"' in fragment.text
