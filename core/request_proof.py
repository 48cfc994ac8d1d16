"""Proof that a front door filed a ticket's request: who asked, what, from where, for which ticket.

Anyone who can start a workflow writes its request, and the request names the requester: the
person the approval rules keep from approving their own ticket, whose budget the ticket spends
and whose history the planner reads. So the front door that authenticated the person signs the
request under `DECISION_SIGNING_KEY`, for the ticket's workflow id, and the worker checks it
before the ticket does anything. Bound to the id, a signed request copied from one ticket's
history cannot start another; a run of its own id it did start is refused by the audit log.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from core.decision_proof import digest, proven, signature_problem
from core.models import TicketRequest

# Between the front door's signature and Temporal's start of the run: a start is sent at once.
MAX_START_DELAY = timedelta(minutes=10)


def _signed_fields(request: TicketRequest, workflow_id: str) -> dict[str, Any]:
    # `continued` is the workflow's own note when it continues as new; the first run was checked.
    fields = request.model_dump(mode="json", exclude={"proof", "continued"})
    fields["workflow_id"] = workflow_id
    return fields


def sign_request(request: TicketRequest, workflow_id: str, key: bytes, now: datetime) -> TicketRequest:
    """`request` stamped with the time and signed for `workflow_id`: what a front door starts."""
    stamped = request.model_copy(update={"signed_at": now, "proof": ""})
    return stamped.model_copy(update={"proof": digest(_signed_fields(stamped, workflow_id), key)})


def request_proof_problem(
    request: TicketRequest, workflow_id: str, keys: list[bytes], started_at: datetime
) -> str | None:
    """Why `request` is not proven to be a front door's for `workflow_id` under any of `keys`, judged at
    `started_at` (when Temporal started the run), or None."""
    fields = _signed_fields(request, workflow_id)
    return signature_problem(request.proof, request.signed_at, fields, keys, started_at, MAX_START_DELAY)


def signed_for(request: TicketRequest, workflow_id: str, keys: list[bytes]) -> bool:
    """Whether a front door signed `request` for `workflow_id`, whenever it did."""
    return bool(request.proof) and proven(request.proof, _signed_fields(request, workflow_id), keys)


def needs_proof(requester: str, allow_unsigned: bool, agents: Collection[str]) -> bool:
    """Whether a request naming `requester` must be signed: unless unsigned ones may pass (`agent-ticket
    dev`) or it names a configured agent, whose MCP door holds no key (agents never approve)."""
    return not allow_unsigned and requester not in agents
