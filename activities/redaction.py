"""What the planner may not see: private values in context rows, replaced by a marker.

A value stays when the ticket text itself holds it (the requester already wrote it down, and the
planner needs it to name the row); every other private value becomes `REDACTED`, and the
context counts what it replaced per column so the audit log can say so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from core.models import NamedRows

REDACTED = "[redacted]"


def redact_named_rows(
    named: Sequence[NamedRows], private: Mapping[str, Sequence[str]], text: str
) -> tuple[list[NamedRows], dict[str, int]]:
    """`named` with private values not in `text` replaced, and how many per `table.column`."""
    lowered = text.lower()
    counts: dict[str, int] = {}
    redacted = []
    for group in named:
        columns = set(private.get(group.table, ()))
        rows = []
        for row in group.rows:
            clean = dict(row)
            for column in columns & clean.keys():
                value = clean[column]
                if value is None or (isinstance(value, str) and value.lower() in lowered):
                    continue
                clean[column] = REDACTED
                where = f"{group.table}.{column}"
                counts[where] = counts.get(where, 0) + 1
            rows.append(clean)
        redacted.append(group.model_copy(update={"rows": rows}))
    return redacted, counts
