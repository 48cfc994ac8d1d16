"""What a step's result may carry into workflow history: values cut for showing, and a bound in bytes.

Temporal refuses a payload over 2 MB. A local activity whose result is larger fails its workflow task
again and again, and a regular activity's fails every retry: a 300 KB text column in a dry run's
preview held a ticket at `validating` for good, and an execution's select of such rows ended a ticket
`failed` after its change had committed (red team 25). So values shown to people are cut to
`MAX_SHOWN_CHARS` (a select's to `MAX_READ_CHARS`), and a result is held under `MAX_RESULT_BYTES` by
dropping shown rows from its end; the counts stay true, so every view says how many rows it does not
show.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from pydantic import BaseModel

from core.models import Scalar

MAX_SHOWN_CHARS = 300  # a value in a preview, beside the value it replaces
MAX_READ_CHARS = 4000  # a value a select returns: what was asked for, in full where it reasonably can be
# A ticket's status carries the plan (256 KB at most), its report and its result, and every notification
# carries the status: each part a quarter of Temporal's 2 MB, with room for the decisions (red team 28).
MAX_RESULT_BYTES = 256 * 1024

Item = TypeVar("Item")


def shown(row: Mapping[str, Scalar], limit: int = MAX_SHOWN_CHARS) -> dict[str, Scalar]:
    """The row with each text value cut to `limit` characters, marked with `…` where cut."""
    return {name: _cut(value, limit) for name, value in row.items()}


def _cut(value: Scalar, limit: int) -> Scalar:
    if isinstance(value, str) and len(value) > limit:
        return value[: limit - 1] + "…"
    return value


def model_bytes(model: BaseModel) -> int:
    return len(model.model_dump_json().encode())


def row_bytes(row: Mapping[str, Scalar]) -> int:
    return len(json.dumps(row, ensure_ascii=False, separators=(",", ":"), default=str).encode())


def drop_from_the_end(groups: Sequence[list[Item]], excess: int, size: Callable[[Item], int]) -> int:
    """Remove items from the last group backwards until `excess` bytes are gone; returns what is still over."""
    for items in reversed(groups):
        while items and excess > 0:
            excess -= size(items.pop()) + (1 if items else 0)  # the item and the comma before it
    return excess
