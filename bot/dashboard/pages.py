"""The dashboard's pages: the ticket list at `/` and one ticket at `/tickets/{short_id}`."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

from bot.dashboard.auth import DashboardUser
from bot.dashboard.deps import Dashboard, ticket_ref
from bot.dashboard.problems import BadInput, NotFound, Unavailable
from bot.dashboard.reader import TemporalUnavailable
from bot.dashboard.sessions import new_token
from bot.dashboard.ticket_view import ticket_page
from core.models import OutcomeStatus, Risk, Stage
from core.names import ticket_label
from service.tickets import TicketNotFound

logger = logging.getLogger(__name__)

# What the list can be filtered by: the values the app DB's `status` and `risk` columns hold.
STATUS_FILTERS = [Stage.AWAITING_APPROVAL.value] + [
    stage.value for stage in Stage if stage not in (Stage.AWAITING_APPROVAL, Stage.FINISHED)
]
STATUS_FILTERS += [outcome.value for outcome in OutcomeStatus]
RISK_FILTERS = [risk.value for risk in Risk]
LIST_LIMIT = 100
# Sent by the live page's script when it wants only the ticket's part of the page.
FRAGMENT_HEADER = "x-dashboard-fragment"


def _filter(request: Request, name: str, allowed: list[str]) -> str | None:
    value = request.query_params.get(name, "").strip()
    if not value:
        return None
    if value not in allowed:
        raise BadInput(f"Unknown {name} {value!r}; choose one of: {', '.join(allowed)}.")
    return value


class Pages:
    def __init__(self, dashboard: Dashboard) -> None:
        self._d = dashboard

    async def ticket_list(self, request: Request) -> Response:
        user = await self._d.require_user(request)
        status = _filter(request, "status", STATUS_FILTERS)
        risk = _filter(request, "risk", RISK_FILTERS)
        tickets = await self._d.reader.tickets(status, risk, LIST_LIMIT)
        return self._d.templates.page(
            request,
            "tickets.html",
            {
                "tickets": tickets,
                "status_filter": status,
                "risk_filter": risk,
                "status_filters": STATUS_FILTERS,
                "risk_filters": RISK_FILTERS,
                "limit": LIST_LIMIT,
            },
            user=user,
        )

    async def ticket(self, request: Request) -> Response:
        user = await self._d.require_user(request)
        short_id = ticket_ref(request)
        fragment = request.headers.get(FRAGMENT_HEADER) == "ticket"
        return await self.render_ticket(request, user, short_id, fragment=fragment)

    async def render_ticket(
        self,
        request: Request,
        user: DashboardUser,
        short_id: str,
        *,
        error: str | None = None,
        status_code: int = 200,
        form: dict[str, str] | None = None,
        fragment: bool = False,
    ) -> Response:
        """The ticket page (or only its live part), optionally with an error above the forms."""
        try:
            snapshot = await self._d.reader.snapshot(short_id)
        except TicketNotFound as error_:
            raise NotFound(f"There is no ticket {ticket_label(short_id)}.") from error_
        except TemporalUnavailable as error_:
            raise Unavailable(f"{ticket_label(short_id)} cannot be shown: {error_}. Try again shortly.") from error_
        view = ticket_page(snapshot, user, revert_window=self._d.settings.revert_window)
        return self._d.templates.page(
            request,
            "ticket_fragment.html" if fragment else "ticket.html",
            # revert_key: one per page shown, so the Revert form's double click starts one revert
            {"ticket": view, "error": error, "form": form or {}, "revert_key": new_token()},
            user=user,
            status_code=status_code,
            show_flash=not fragment,  # the live swap must not eat a message meant for the next page
        )
