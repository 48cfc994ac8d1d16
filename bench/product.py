"""The product's Temporal client side and the tests' settings builder, from whichever layout the tree has.

`make bench-compare` runs these benchmarks against older trees too, from before the client side
moved from `core/` to `service/` (9fdc950). Such a tree has no `service` package, and the one an
editable install of the working tree offers must not stand in for it: the side would run a mix
of both trees. So `service` counts only when it comes from the tree under test.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
from pathlib import Path
from typing import Any


def _has_service_package() -> bool:
    spec = importlib.util.find_spec("service")
    if spec is None or spec.origin is None:
        return False
    root = os.environ.get("BENCH_PRODUCT_ROOT")  # set by bench/compare.py for each side
    return root is None or Path(spec.origin).resolve().is_relative_to(Path(root).resolve())


if _has_service_package():
    from service.temporal import temporal_cli_path
    from service.tickets import WORKFLOW_EXECUTION_TIMEOUT, StartedTicket, TicketService, new_short_id
else:  # a tree from before service/ existed
    from core.temporal import temporal_cli_path  # type: ignore[no-redef]
    from core.tickets import (  # type: ignore[no-redef]
        WORKFLOW_EXECUTION_TIMEOUT,
        StartedTicket,
        TicketService,
        new_short_id,
    )

if importlib.util.find_spec("tests.support") is not None:
    from tests.support import APPROVERS, build_settings
else:  # before the tests' one support layer (tests/support.py)
    from tests.pipeline import APPROVERS  # type: ignore[attr-defined,no-redef]
    from tests.pipeline import pipeline_settings as build_settings  # type: ignore[attr-defined,no-redef]


def front_door(client: Any, settings: Any, task_queue: str, app_sessions: Any = None) -> TicketService:
    """The tree's `TicketService` as a front door builds it: signing with the settings' key where the
    tree signs (trees from before signed decisions and requests take no key)."""
    if "signing_key" in inspect.signature(TicketService).parameters:
        return TicketService(client, app_sessions, task_queue, signing_key=settings.signing_key)
    return TicketService(client, app_sessions, task_queue)


__all__ = [
    "APPROVERS",
    "WORKFLOW_EXECUTION_TIMEOUT",
    "StartedTicket",
    "TicketService",
    "build_settings",
    "front_door",
    "new_short_id",
    "temporal_cli_path",
]
