"""Approve and Reject over HTTP: the decision reaches the workflow, and every bad post is refused with a reason."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from core.models import OutcomeStatus, Stage, TicketStatus
from core.schema import AuditEventRow
from tests.dashboard.conftest import signed_in
from tests.dashboard.harness import ORIGIN, DashboardWorld, csrf_from


async def _form(client: httpx.AsyncClient, world: DashboardWorld, short_id: str) -> dict[str, str]:
    """What the ticket page's form carries: this session's token, the request id and plan hash shown."""
    page = await client.get(f"/tickets/{short_id}")
    status = await world.service.status(short_id)
    assert status.approval is not None
    return {
        "csrf_token": csrf_from(page.text),
        "request_id": status.approval.request_id,
        "plan_hash": status.approval.plan_hash,
    }


async def _post(client: httpx.AsyncClient, path: str, form: dict[str, str]) -> httpx.Response:
    return await client.post(path, data=form, headers={"Origin": ORIGIN})


def _finished(status: TicketStatus) -> bool:
    return status.outcome is not None


async def test_approve_runs_the_plan_and_is_audited_as_the_dashboard(
    world: DashboardWorld, bob: httpx.AsyncClient
) -> None:
    short_id = await world.file_ticket()
    form = await _form(bob, world, short_id)
    response = await _post(bob, f"/tickets/{short_id}/approve", {**form, "comment": "checked with billing"})
    assert response.status_code == 303 and response.headers["location"] == f"/tickets/{short_id}"
    assert f"Your approval of T-{short_id} was sent." in (await bob.get(response.headers["location"])).text

    final = await world.wait_for(short_id, _finished)
    assert final.outcome is not None and final.outcome.status is OutcomeStatus.DONE
    assert final.outcome.decided_by == ["bob"] and await world.executions_of(short_id) == 1
    async with world.databases.app_sessions() as session:
        event = await session.scalar(
            select(AuditEventRow).where(AuditEventRow.ticket_id == short_id, AuditEventRow.kind == "decision_accepted")
        )
    assert event is not None and (event.actor, event.source) == ("bob", "dashboard")
    assert event.detail["comment"] == "checked with billing"
    done = (await bob.get(f"/tickets/{short_id}")).text
    assert 'data-status="done"' in done and 'data-live="false"' in done and "approve-form" not in done


async def test_reject_with_reason_ends_the_ticket(world: DashboardWorld, bob: httpx.AsyncClient) -> None:
    short_id = await world.file_ticket()
    form = await _form(bob, world, short_id)
    response = await _post(bob, f"/tickets/{short_id}/reject", {**form, "reason": "wrong customer"})
    assert response.status_code == 303
    final = await world.wait_for(short_id, _finished)
    assert final.outcome is not None and final.outcome.status is OutcomeStatus.REJECTED
    assert "wrong customer" in final.outcome.reason
    assert "rejected by bob: wrong customer" in (await bob.get(f"/tickets/{short_id}")).text
    assert await world.executions_of(short_id) == 0


async def test_reject_without_reason_is_400_and_sends_nothing(world: DashboardWorld, bob: httpx.AsyncClient) -> None:
    short_id = await world.file_ticket()
    form = await _form(bob, world, short_id)
    response = await _post(bob, f"/tickets/{short_id}/reject", {**form, "reason": "   "})
    assert response.status_code == 400
    assert "A reason is required to reject." in response.text and 'id="reject-form"' in response.text
    status = await world.service.status(short_id)
    assert status.pending_approval and status.decisions == []


async def test_stale_plan_hash_is_refused_with_message(world: DashboardWorld, bob: httpx.AsyncClient) -> None:
    short_id = await world.file_ticket()
    form = await _form(bob, world, short_id)
    response = await _post(bob, f"/tickets/{short_id}/approve", {**form, "plan_hash": "0" * 16})
    assert response.status_code == 409
    assert "the plan has changed since it was shown" in response.text
    stale_request = await _post(bob, f"/tickets/{short_id}/approve", {**form, "request_id": "old"})
    assert stale_request.status_code == 409
    status = await world.service.status(short_id)
    # Both reached the workflow, the one judge, and are on record as ignored.
    assert status.pending_approval and [r.accepted for r in status.decisions] == [False, False]


async def test_missing_request_id_or_plan_hash_is_400(world: DashboardWorld, bob: httpx.AsyncClient) -> None:
    short_id = await world.file_ticket()
    form = await _form(bob, world, short_id)
    response = await _post(bob, f"/tickets/{short_id}/approve", {"csrf_token": form["csrf_token"]})
    assert response.status_code == 400 and "missing the approval request id or plan hash" in response.text


async def test_deciding_twice_or_after_the_end_is_refused(world: DashboardWorld, bob: httpx.AsyncClient) -> None:
    short_id = await world.file_ticket()
    form = await _form(bob, world, short_id)
    assert (await _post(bob, f"/tickets/{short_id}/approve", form)).status_code == 303
    await world.wait_for(short_id, _finished)
    again = await _post(bob, f"/tickets/{short_id}/approve", form)
    assert again.status_code == 409 and "is not waiting for approval (done)" in again.text


async def test_missing_or_wrong_csrf_token_is_403(world: DashboardWorld, bob: httpx.AsyncClient) -> None:
    short_id = await world.file_ticket()
    form = await _form(bob, world, short_id)
    without = {key: value for key, value in form.items() if key != "csrf_token"}
    assert (await _post(bob, f"/tickets/{short_id}/approve", without)).status_code == 403
    wrong = await _post(bob, f"/tickets/{short_id}/approve", {**form, "csrf_token": "x" * 43})
    assert wrong.status_code == 403 and "did not come from this dashboard" in wrong.text
    assert (await world.service.status(short_id)).decisions == []


async def test_cross_origin_or_headerless_post_is_403(world: DashboardWorld, bob: httpx.AsyncClient) -> None:
    short_id = await world.file_ticket()
    form = await _form(bob, world, short_id)
    path = f"/tickets/{short_id}/approve"
    evil = await bob.post(path, data=form, headers={"Origin": "http://evil.test"})
    assert evil.status_code == 403 and "Cross-site request refused" in evil.text
    sibling = await bob.post(path, data=form, headers={"Origin": ORIGIN, "Sec-Fetch-Site": "same-site"})
    assert sibling.status_code == 403
    assert (await bob.post(path, data=form)).status_code == 403  # neither Origin nor Referer
    by_referer = await bob.post(path, data=form, headers={"Referer": f"{ORIGIN}/tickets/{short_id}"})
    assert by_referer.status_code == 303  # a same-origin Referer is enough when Origin is absent


async def test_non_approver_post_is_403(world: DashboardWorld, mallory: httpx.AsyncClient) -> None:
    short_id = await world.file_ticket()
    form = await _form(mallory, world, short_id)
    response = await _post(mallory, f"/tickets/{short_id}/approve", form)
    assert response.status_code == 403 and "You (mallory) are not an approver" in response.text
    status = await world.service.status(short_id)
    assert status.pending_approval and [(r.decision.decider, r.accepted) for r in status.decisions] == [
        ("mallory", False)
    ]


async def test_requester_cannot_approve_own_ticket(world: DashboardWorld) -> None:
    short_id = await world.file_ticket(requester="alice")
    async with signed_in(world, "alice") as alice:
        form = await _form(alice, world, short_id)
        response = await _post(alice, f"/tickets/{short_id}/approve", form)
    assert response.status_code == 409 and "You filed this ticket" in response.text
    assert (await world.service.status(short_id)).stage is Stage.AWAITING_APPROVAL


async def test_decision_on_unknown_ticket_is_404(bob: httpx.AsyncClient) -> None:
    token = csrf_from((await bob.get("/")).text)
    form = {"csrf_token": token, "request_id": "r", "plan_hash": "h", "reason": "no"}
    for verb in ("approve", "reject"):
        response = await _post(bob, f"/tickets/nosuchticket/{verb}", form)
        assert response.status_code == 404 and "There is no ticket T-nosuchticket" in response.text


async def test_signed_out_post_is_401_and_sends_nothing(world: DashboardWorld, anonymous: httpx.AsyncClient) -> None:
    short_id = await world.file_ticket()
    status = await world.service.status(short_id)
    assert status.approval is not None
    form = {"request_id": status.approval.request_id, "plan_hash": status.approval.plan_hash, "csrf_token": "x"}
    response = await _post(anonymous, f"/tickets/{short_id}/approve", form)
    assert response.status_code == 401 and "Sign in" in response.text
    assert f'href="/login?next=/tickets/{short_id}"' in response.text.replace("%2F", "/")
    assert (await world.service.status(short_id)).decisions == []


async def test_events_stream_of_finished_ticket_ends_with_its_outcome(
    world: DashboardWorld, bob: httpx.AsyncClient
) -> None:
    short_id = await world.file_ticket()
    form = await _form(bob, world, short_id)
    await _post(bob, f"/tickets/{short_id}/reject", {**form, "reason": "not today"})
    await world.wait_for(short_id, _finished)
    response = await bob.get(f"/tickets/{short_id}/events")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert response.text.startswith("retry: ")
    assert 'event: status\ndata: {"ticket_id"' in response.text and '"status":"rejected"' in response.text


async def test_reject_asking_for_a_new_plan_starts_a_new_review_round(
    world: DashboardWorld, bob: httpx.AsyncClient
) -> None:
    short_id = await world.file_ticket()
    form = await _form(bob, world, short_id)
    response = await _post(bob, f"/tickets/{short_id}/reject", {**form, "reason": "only acme-corp", "replan": "1"})
    assert response.status_code == 303
    assert f"You sent T-{short_id} back for a new plan." in (await bob.get(response.headers["location"])).text

    renewed = await world.wait_for(
        short_id,
        lambda status: (
            status.pending_approval and status.approval is not None and status.approval.request_id != form["request_id"]
        ),
    )
    assert renewed.feedback == ["only acme-corp"] and renewed.review_rounds == 1
    page = (await bob.get(f"/tickets/{short_id}")).text
    assert "only acme-corp" in page and 'id="approve-form"' in page
    assert renewed.approval is not None and renewed.approval.request_id in page
    stale = await _post(bob, f"/tickets/{short_id}/approve", form)  # the first round's ids
    assert stale.status_code == 409 and "out of date" in stale.text


async def test_oversized_or_non_form_posts_are_refused(world: DashboardWorld, bob: httpx.AsyncClient) -> None:
    short_id = await world.file_ticket()
    form = await _form(bob, world, short_id)
    huge = await _post(bob, f"/tickets/{short_id}/reject", {**form, "reason": "x" * 70_000})
    assert huge.status_code == 413
    as_json = await bob.post(f"/tickets/{short_id}/approve", json=form, headers={"Origin": ORIGIN})
    assert as_json.status_code == 400 and "Expected a form post." in as_json.text
    assert (await world.service.status(short_id)).decisions == []
