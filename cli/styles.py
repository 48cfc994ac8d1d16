"""The terminal's shared vocabulary: colours and words for risks, stages and outcomes, and small cell helpers.

The ticket view (`cli.render`), the ticket list (`cli.ticket_list`) and the running product's
banner all draw from here, so a status looks the same wherever it is printed.
"""

from __future__ import annotations

from datetime import datetime

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import make_url

from core.models import OutcomeStatus, Risk, Stage

RISK_STYLE = {Risk.LOW: "green", Risk.MEDIUM: "yellow", Risk.HIGH: "red", Risk.BLOCKED: "bold red"}
OUTCOME_STYLE = {
    OutcomeStatus.DONE: "bold green",
    OutcomeStatus.REJECTED: "bold yellow",
    OutcomeStatus.BLOCKED: "bold red",
    OutcomeStatus.EXPIRED: "bold yellow",
    OutcomeStatus.FAILED: "bold red",
    OutcomeStatus.CANCELLED: "yellow",
}
STAGE_TEXT = {
    Stage.RECEIVED: "received",
    Stage.GATHERING_CONTEXT: "gathering context",
    Stage.PLANNING: "planning",
    Stage.VALIDATING: "checking the plan against safety policy",
    Stage.AWAITING_APPROVAL: "awaiting approval",
    Stage.EXECUTING: "executing",
    Stage.FINISHED: "finished",
}
RISK_VALUES = {risk.value for risk in Risk}


def add_row(table: Table, *cells: RenderableType) -> None:
    """Add a row whose plain strings are shown as typed: ticket text, LLM output and names are never markup."""
    table.add_row(*(Text(cell) if isinstance(cell, str) else cell for cell in cells))


def describe_url(url: str) -> str:
    """A database URL safe to print: the password is hidden."""
    return make_url(url).render_as_string(hide_password=True)


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def status_style(label: str) -> str:
    """The colour of a status or stage label wherever it appears."""
    try:
        return OUTCOME_STYLE[OutcomeStatus(label)]
    except ValueError:
        return "bold cyan" if label == Stage.AWAITING_APPROVAL.value else "cyan"
