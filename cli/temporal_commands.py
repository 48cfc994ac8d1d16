"""Ready-to-paste `temporal` CLI commands that decide a pending ticket (docs/decisions.md).

Any Temporal client can decide with the `approve` and `reject` signals; the workflow's
verdict shows in `agent-ticket show` (or the `status` query). Such a decision carries no
proof of who made it, so the worker counts it only with ALLOW_UNSIGNED_DECISIONS on (as
under `agent-ticket dev`); elsewhere it is recorded as ignored ("unsigned").
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

from core.models import ApprovalRequest, DecisionSource, TicketStatus
from core.names import QUERY_STATUS, SIGNAL_APPROVE, SIGNAL_REJECT
from core.settings import Settings

REJECT_COMMENT = "why the plan is rejected"


@dataclass(frozen=True)
class PastableCommand:
    """What a command does, and the command as one shell line."""

    purpose: str
    line: str


def decision_input(approval: ApprovalRequest, decider: str, *, approve: bool, comment: str = "") -> dict[str, Any]:
    """The JSON a raw client sends: a `Decision` without the fields only front doors set (proof, signed_at)."""
    decision = approval.decision(decider, DecisionSource.API, approve=approve, comment=comment)
    return decision.model_dump(mode="json", exclude_defaults=True)


def temporal_command(settings: Settings, workflow_id: str, verb: list[str], name: str, payload: dict[str, Any]) -> str:
    """`temporal workflow … --input '<json>'`, quoted for a POSIX shell."""
    words = [
        "temporal",
        "workflow",
        *verb,
        "--address",
        settings.temporal_address,
        "--namespace",
        settings.temporal_namespace,
        "--workflow-id",
        workflow_id,
        "--name",
        name,
        "--input",
        json.dumps(payload, separators=(", ", ": "), ensure_ascii=False),
    ]
    return shlex.join(words)


def decision_commands(settings: Settings, status: TicketStatus, decider: str) -> list[PastableCommand]:
    """The signal commands for the ticket's pending request, as `decider`, and the query that shows the verdict."""
    approval = status.approval
    if not status.pending_approval or approval is None:
        return []
    approve = decision_input(approval, decider, approve=True)
    reject = decision_input(approval, decider, approve=False, comment=REJECT_COMMENT)
    workflow_id = status.workflow_id
    return [
        PastableCommand(
            "approve (signal)", temporal_command(settings, workflow_id, ["signal"], SIGNAL_APPROVE, approve)
        ),
        PastableCommand("reject (signal)", temporal_command(settings, workflow_id, ["signal"], SIGNAL_REJECT, reject)),
        PastableCommand("the workflow's verdicts (query)", status_query_command(settings, workflow_id)),
    ]


def status_query_command(settings: Settings, workflow_id: str) -> str:
    """`temporal workflow query … --name status`: every decision with its verdict is in `decisions`."""
    words = ["temporal", "workflow", "query", "--address", settings.temporal_address]
    words += ["--namespace", settings.temporal_namespace, "--workflow-id", workflow_id, "--name", QUERY_STATUS]
    return shlex.join(words)
