"""The ticket's search attributes in Temporal's visibility, kept current by the workflow."""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate


class TicketIndex:
    """Upserts the ticket's search attributes, for tickets that started with them.

    Updates wait and go out as one upsert when the ticket next leaves this worker (`flush`),
    each attribute at its latest value: every upsert is a history event and a visibility
    write on the server.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._pending: dict[str, SearchAttributeUpdate[Any]] = {}

    def update(self, *updates: SearchAttributeUpdate[Any]) -> None:
        if not self.enabled:
            return
        for change in updates:
            self._pending[change.key.name] = change

    def flush(self) -> None:
        """Before a step on another queue, a wait or the end: visibility shows where the ticket stands."""
        if self._pending:
            workflow.upsert_search_attributes(list(self._pending.values()))
            self._pending.clear()
