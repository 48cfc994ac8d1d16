"""The ticket's search attributes in Temporal's visibility, kept current by the workflow."""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate


class TicketIndex:
    """Upserts the ticket's search attributes, for tickets that started with them.

    Updates wait and go out as one upsert where the ticket rests (`flush`: waiting for approval,
    continuing as new, its outcome), each attribute at its latest value. Every upsert is a history
    event and a visibility write on the server, about as costly as one of the ticket's activities
    (bench/notes.md, item 38), so the stages a ticket passes through in a moment are not upserted:
    its live stage is the status query's (dashboard, CLI, Slack message) and the app DB's.
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
        """Where the ticket rests: visibility shows where it stands."""
        if self._pending:
            workflow.upsert_search_attributes(list(self._pending.values()))
            self._pending.clear()
