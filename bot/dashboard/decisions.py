"""Approve and Reject from the ticket page: the same `TicketService.decide` that Slack and the CLI use.

The decision is made as the signed-in user's approver identity, carrying the approval request
id and plan hash the page showed, so a decision on a plan that has since changed is refused,
and four-eyes and the approver list hold exactly as in Slack.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot.dashboard.deps import Dashboard, form_text, ticket_ref
from bot.dashboard.pages import Pages
from bot.dashboard.problems import BadInput, Forbidden, NotFound, Unavailable
from bot.dashboard.reader import TemporalUnavailable
from bot.dashboard.sessions import flash
from bot.dashboard.templating import NO_STORE
from bot.dashboard.ticket_view import approvers_of
from core.models import Decision, DecisionSource
from core.names import ticket_label
from core.tickets import DecisionRefused, TicketNotFound

logger = logging.getLogger(__name__)


class Decisions:
    def __init__(self, dashboard: Dashboard, pages: Pages) -> None:
        self._d = dashboard
        self._pages = pages

    async def approve(self, request: Request) -> Response:
        return await self._decide(request, approve=True)

    async def reject(self, request: Request) -> Response:
        return await self._decide(request, approve=False)

    async def _decide(self, request: Request, *, approve: bool) -> Response:
        user = self._d.require_user(request)
        form = await self._d.read_form(request)
        self._d.check_post(request, form)
        short_id = ticket_ref(request)
        label = ticket_label(short_id)

        try:
            status = await self._d.reader.status(short_id, fresh=True)
        except TicketNotFound as error:
            raise NotFound(f"There is no ticket {label}.") from error
        except TemporalUnavailable as error:
            raise Unavailable(f"{label}: {error}. Nothing was decided; try again shortly.") from error
        if user.approver not in approvers_of(status):
            logger.warning("%s: %s (%s) is not an approver; decision refused", label, user.username, user.approver)
            raise Forbidden(f"You ({user.approver}) are not an approver for {label}, so you cannot decide on it.")

        request_id = form_text(form, "request_id", 100)
        plan_hash = form_text(form, "plan_hash", 100)
        comment = form_text(form, "reason" if not approve else "comment")
        if not request_id or not plan_hash:
            raise BadInput("The form is missing the approval request id or plan hash. Reload the page and try again.")
        if not approve and not comment:
            return await self._pages.render_ticket(
                request, user, short_id, error="A reason is required to reject.", status_code=400
            )
        try:
            decision = Decision(
                approve=approve,
                decider=user.approver,
                source=DecisionSource.DASHBOARD,
                request_id=request_id,
                plan_hash=plan_hash,
                comment=comment,
            )
        except ValidationError as error:
            raise BadInput(f"The decision is not valid: {error.errors()[0]['msg']}.") from error

        verb = "approve" if approve else "reject"
        try:
            await self._d.service.decide(short_id, decision)
        except DecisionRefused as refused:
            logger.info("%s: %s's %s refused: %s", label, user.username, verb, refused)
            return await self._pages.render_ticket(
                request, user, short_id, error=str(refused), status_code=409, form={"reason": comment}
            )
        except TicketNotFound as error:
            raise NotFound(f"There is no ticket {label}.") from error
        logger.info("%s: %s (%s) sent %s from the dashboard", label, user.username, user.approver, verb)
        noun = "approval" if approve else "rejection"
        flash(request, "ok", f"Your {noun} of {label} was sent. This page follows the ticket as it moves on.")
        return RedirectResponse(f"/tickets/{short_id}", status_code=303, headers=NO_STORE)
