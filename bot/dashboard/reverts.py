"""Revert from a done ticket's page: the same `TicketService.revert` as `agent-ticket revert` and Slack's Undo.

Any signed-in user may ask for a revert, as the identity they decide as; the revert is a new
ticket that the policy judges and approvers approve like any other (docs/undo.md), so asking
changes nothing by itself. The form is guarded like Approve and Reject (same origin, this
session's token). It carries a one-off key, so a double click starts one revert, not two.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from temporalio.service import RPCError

from bot.dashboard.deps import Dashboard, form_text, ticket_ref
from bot.dashboard.pages import Pages
from bot.dashboard.problems import BadInput, NotFound, Unavailable
from bot.dashboard.reader import TemporalUnavailable
from bot.dashboard.sessions import flash
from bot.dashboard.templating import NO_STORE
from core.models import TicketSource
from core.names import ticket_label
from service.tickets import CannotRevert, TicketNotFound

logger = logging.getLogger(__name__)

REVERT_KEY_FIELD = "revert_key"


class Reverts:
    def __init__(self, dashboard: Dashboard, pages: Pages) -> None:
        self._d = dashboard
        self._pages = pages

    async def revert(self, request: Request) -> Response:
        user = await self._d.require_user(request)
        form = await self._d.read_form(request)
        self._d.check_post(request, form)
        short_id = ticket_ref(request)
        label = ticket_label(short_id)
        key = form_text(form, REVERT_KEY_FIELD, 64)
        if not key:
            raise BadInput("The form is missing its one-off key. Reload the page and try again.")
        include_conflicts = form.get("include_conflicts") == "1"
        await self._check_answers(short_id)
        try:
            started = await self._d.service.revert(
                short_id,
                user.approver,
                approval=self._d.settings.approval_settings(),
                source=TicketSource.DASHBOARD,
                include_conflicts=include_conflicts,
                dedupe_key=f"revert:{short_id}:{user.username}:{key}",
            )
        except CannotRevert as refused:
            return await self._pages.render_ticket(
                request, user, short_id, error=f"Cannot revert: {refused}.", status_code=409
            )
        except TicketNotFound as error:
            raise NotFound(f"There is no ticket {label}.") from error
        except RPCError as error:
            raise Unavailable(f"{label} could not be reverted: Temporal did not answer ({error.message}).") from error
        logger.info(
            "%s: %s (%s) asked from the dashboard to revert it%s: %s",
            label,
            user.username,
            user.approver,
            ", overwriting later changes" if include_conflicts else "",
            started.label,
        )
        flash(request, "ok", f"{started.label} reverts {label}. It is checked and approved like any ticket.")
        return RedirectResponse(f"/tickets/{started.short_id}", status_code=303, headers=NO_STORE)

    async def _check_answers(self, short_id: str) -> None:
        """Temporal answers for the ticket (a bounded wait), before the service asks it again to revert."""
        label = ticket_label(short_id)
        try:
            await self._d.reader.status(short_id, fresh=True)
        except TicketNotFound as error:
            raise NotFound(f"There is no ticket {label}.") from error
        except TemporalUnavailable as error:
            raise Unavailable(f"{label}: {error}. Nothing was reverted; try again shortly.") from error
