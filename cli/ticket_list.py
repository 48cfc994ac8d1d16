"""`list`: the tickets as one table, one line each, that still reads on a narrow terminal."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from cli.styles import RISK_STYLE, RISK_VALUES, add_row, status_style, when
from core.models import Risk
from core.names import ticket_label
from core.schema import TicketRow

# Below this many columns `list` leaves out source and creation time, so the text keeps room to be read.
COMPACT_LIST_WIDTH = 110


def tickets_table(rows: Sequence[TicketRow], width: int | None = None) -> Table:
    """`list`: one line per ticket, pending approvals first; on a narrow terminal, the text wraps instead."""
    compact = width is not None and width < COMPACT_LIST_WIDTH
    table = Table(
        title="Tickets",
        title_justify="left",
        box=box.SIMPLE_HEAD if compact else box.HEAVY_HEAD,
        pad_edge=not compact,
        collapse_padding=compact,
    )
    columns = (
        ("ticket", "status", "risk", "requester", "text")
        if compact
        else ("ticket", "status", "risk", "requester", "source", "created", "text")
    )
    for column in columns:
        if column == "text":
            table.add_column(column, ratio=1, min_width=20, overflow="fold")
        else:
            table.add_column(column, no_wrap=True, overflow="ellipsis", max_width=24 if column == "requester" else None)
    for row in rows:
        risk = Text(row.risk or "—", RISK_STYLE.get(Risk(row.risk), "") if row.risk in RISK_VALUES else "")
        cells: dict[str, RenderableType] = {
            "ticket": ticket_label(row.ticket_id),
            "status": Text(row.status, status_style(row.status)),
            "risk": risk,
            "requester": row.requester,
            "source": row.source,
            "created": when(row.created_at),
            "text": row.text if len(row.text) <= 80 else row.text[:79] + "…",
        }
        add_row(table, *(cells[column] for column in columns))
    return table
