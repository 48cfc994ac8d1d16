"""Approve and Reject from the ticket page: the same `TicketService.decide` that Slack and the CLI use.

The decision is made as the signed-in user's approver identity, carrying the approval request
id and plan hash the page showed, so a decision on a plan that has since changed is refused,
and four-eyes and the approver list hold exactly as in Slack. A rejection can, as in Slack,
ask for a new plan with its reason as the planner's feedback.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot.dashboard.auth import DashboardUser
from bot.dashboard.deps import Dashboard, form_text, ticket_ref
from bot.dashboard.pages import Pages
from bot.dashboard.problems import BadInput, Forbidden, NotFound, Unavailable
from bot.dashboard.reader import TemporalUnavailable
from bot.dashboard.sessions import flash
from bot.dashboard.templating import NO_STORE
from core.approval import NO_LONGER_AN_APPROVER, NOT_AN_APPROVER, in_words
from core.models import Decision, DecisionSource, TicketStatus
from core.names import ticket_label
from service.tickets import TicketNotFound

logger = logging.getLogger(__name__)


def decision_from_form(form: FormData, user: DashboardUser, *, approve: bool) -> Decision:
    """The signal's payload from the posted form; `BadInput` says what is missing."""
    request_id = form_text(form, "request_id", 100)
    plan_hash = form_text(form, "plan_hash", 100)
    if not request_id or not plan_hash:
        raise BadInput("The form is missing the approval request id or plan hash. Reload the page and try again.")
    comment = form_text(form, "comment" if approve else "reason")
    if not approve and not comment:
        raise BadInput("A reason is required to reject.")
    try:
        return Decision(
            approve=approve,
            decider=user.approver,
            source=DecisionSource.DASHBOARD,
            request_id=request_id,
            plan_hash=plan_hash,
            comment=comment,
            replan=not approve and form.get("replan") == "1",
        )
    except ValidationError as error:
        raise BadInput(f"The decision is not valid: {error.errors()[0]['msg']}.") from error


def sent_message(decision: Decision, label: str) -> str:
    if decision.replan:
        sent = f"You sent {label} back for a new plan."
    else:
        sent = f"Your {'approval' if decision.approve else 'rejection'} of {label} was sent."
    return f"{sent} This page follows the ticket as it moves on."


class Decisions:
    def __init__(self, dashboard: Dashboard, pages: Pages) -> None:
        self._d = dashboard
        self._pages = pages

    async def approve(self, request: Request) -> Response:
        return await self._decide(request, approve=True)

    async def reject(self, request: Request) -> Response:
        return await self._decide(request, approve=False)

    async def _decide(self, request: Request, *, approve: bool) -> Response:
        user = await self._d.require_user(request)
        form = await self._d.read_form(request)
        self._d.check_post(request, form)
        short_id = ticket_ref(request)
        label = ticket_label(short_id)
        # A missing ticket or a Temporal outage answers here, deciding nothing; so does a finished
        # ticket, whose closed workflow could not record the decision.
        current = await self._current_status(short_id)
        if current.outcome is not None:
            message = f"{label} is not waiting for approval ({current.status_label})."
            return await self._pages.render_ticket(request, user, short_id, error=message, status_code=409)
        typed = {name: form_text(form, name) for name in ("comment", "reason", "replan")}
        try:
            decision = decision_from_form(form, user, approve=approve)
            record = await self._d.service.decide(short_id, decision)
        except BadInput as problem:
            return await self._pages.render_ticket(
                request, user, short_id, error=problem.message, status_code=400, form=typed
            )
        except TicketNotFound as error:
            raise NotFound(f"There is no ticket {label}.") from error
        if record is not None and not record.accepted:  # the workflow's verdict, recorded in its audit
            logger.info("%s: decision by %s not counted: %s", label, user.username, record.reason)
            if record.reason in (NOT_AN_APPROVER, NO_LONGER_AN_APPROVER):
                raise Forbidden(f"You ({user.approver}) are not an approver for {label}, so you cannot decide on it.")
            message = f"Not counted. {in_words(record.reason)}"
            return await self._pages.render_ticket(request, user, short_id, error=message, status_code=409, form=typed)

        kind = "approve" if approve else ("reject and re-plan" if decision.replan else "reject")
        logger.info("%s: %s (%s) sent %s from the dashboard", label, user.username, user.approver, kind)
        flash(request, "ok", sent_message(decision, label))
        return RedirectResponse(f"/tickets/{short_id}", status_code=303, headers=NO_STORE)

    async def _current_status(self, short_id: str) -> TicketStatus:
        label = ticket_label(short_id)
        try:
            return await self._d.reader.status(short_id, fresh=True)
        except TicketNotFound as error:
            raise NotFound(f"There is no ticket {label}.") from error
        except TemporalUnavailable as error:
            raise Unavailable(f"{label}: {error}. Nothing was decided; try again shortly.") from error
