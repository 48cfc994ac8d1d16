"""Ticket search attributes: what Temporal's visibility (Web UI, `temporal workflow list`) can filter on.

`TicketStatus` follows the ticket (stage, then outcome), `TicketRisk` is set once the plan is
validated, `TicketRequester` at start. A server only accepts attributes registered on the
namespace, so clients set them only when they are (see `SearchAttributeCheck`), and the
workflow upserts only on tickets that started with them. Workflow code imports this module
passed through the sandbox: the keys are plain values.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import timedelta

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError

from core.names import WORKFLOW_NAME

logger = logging.getLogger(__name__)

TICKET_STATUS = SearchAttributeKey.for_keyword("TicketStatus")
TICKET_RISK = SearchAttributeKey.for_keyword("TicketRisk")
TICKET_REQUESTER = SearchAttributeKey.for_keyword("TicketRequester")
TICKET_KEYS = (TICKET_STATUS, TICKET_RISK, TICKET_REQUESTER)

REGISTER_HINT = (
    "register them once per namespace: "
    + "; ".join(
        f"temporal operator search-attribute create --namespace <ns> --name {key.name} --type Keyword"
        for key in TICKET_KEYS
    )
    + " (Temporal Cloud: tcld namespace search-attributes add)"
)


def start_attributes(requester: str, status: str) -> TypedSearchAttributes:
    """What a ticket carries from its start: who asked and where it stands."""
    return TypedSearchAttributes(
        [SearchAttributePair(TICKET_REQUESTER, requester), SearchAttributePair(TICKET_STATUS, status)]
    )


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def visibility_query(*, status: str | None = None, risk: str | None = None, requester: str | None = None) -> str:
    """A visibility list filter for tickets, e.g. `WorkflowType = "TicketWorkflow" AND TicketStatus = "done"`."""
    clauses = [f"WorkflowType = {_quoted(WORKFLOW_NAME)}"]
    for key, value in ((TICKET_STATUS, status), (TICKET_RISK, risk), (TICKET_REQUESTER, requester)):
        if value:
            clauses.append(f"{key.name} = {_quoted(value)}")
    return " AND ".join(clauses)


async def missing_attributes(client: Client, namespace: str) -> list[str]:
    """The ticket attributes not registered on `namespace` (raises `RPCError` if the server will not say)."""
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace), timeout=timedelta(seconds=5)
    )
    known: Mapping[str, int] = {**listed.custom_attributes, **listed.system_attributes}
    return [key.name for key in TICKET_KEYS if key.name not in known]


async def ensure_registered(client: Client, namespace: str) -> bool:
    """Register the ticket attributes if they are missing and the server lets us; True when all are there.

    Workers call this at start-up: a dev server or a self-hosted cluster takes the registration
    (it needs operator rights); elsewhere the log says what to run. Without the attributes,
    tickets still run, only without the filters.
    """
    try:
        missing = await missing_attributes(client, namespace)
        if not missing:
            return True
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=namespace,
                search_attributes=dict.fromkeys(missing, IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD),
            )
        )
        logger.info("registered search attributes %s on namespace %s", ", ".join(missing), namespace)
        return True
    except RPCError as error:
        logger.error(
            "ticket search attributes are not registered on namespace %s and could not be registered (%s); "
            "tickets run without the TicketStatus/TicketRisk/TicketRequester filters until you %s",
            namespace,
            error.message,
            REGISTER_HINT,
        )
        return False


class SearchAttributeCheck:
    """Whether this namespace has the ticket attributes, asked once and remembered.

    A yes is kept for the life of the process; a no is asked again after `retry_seconds`, so a
    bot started before the attributes were registered picks them up without a restart.
    """

    def __init__(self, client: Client, namespace: str, retry_seconds: float = 60.0) -> None:
        self._client = client
        self._namespace = namespace
        self._retry_seconds = retry_seconds
        self._registered = False
        self._checked_at: float | None = None

    async def registered(self) -> bool:
        if self._registered:
            return True
        now = time.monotonic()
        if self._checked_at is not None and now - self._checked_at < self._retry_seconds:
            return False
        self._checked_at = now
        try:
            self._registered = not await missing_attributes(self._client, self._namespace)
        except Exception as error:  # whatever the reason, the ticket starts (unindexed) rather than not at all
            logger.warning("cannot list search attributes of namespace %s: %s", self._namespace, error)
            return False
        if not self._registered:
            logger.warning("tickets start without search attributes: %s", REGISTER_HINT)
        return self._registered
