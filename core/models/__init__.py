"""Pydantic models shared by the workflow, activities, bot, dashboard and CLI.

One module a concern (the request, its context, the plan, the safety report, decisions, the status,
activity inputs); every name is re-exported here, so `from core.models import X` is all a caller needs.
"""

from __future__ import annotations

from core.models.audit import AuditEventKind, RecordEventInput, RecordEventsInput
from core.models.base import IDENTIFIER_PATTERN, Identifier, Model, Scalar
from core.models.context import AuditEntry, ColumnInfo, NamedRows, PastTicket, TableInfo, TicketContext
from core.models.decisions import (
    MALFORMED_DECIDER,
    ApprovalRequest,
    Decision,
    DecisionCheck,
    DecisionRecord,
    DecisionSource,
    VerifyDecisionInput,
    malformed_decision,
)
from core.models.notify import NotifyEvent, NotifyInput, NotifyPost, NotifyResult
from core.models.plan import (
    MAX_FILTER_TEXT,
    MAX_OPERATIONS,
    MAX_PLAN_INT,
    MAX_PLAN_OPERATIONS,
    MAX_VALUE_TEXT,
    MIN_PLAN_INT,
    Assignment,
    DeleteOperation,
    Filter,
    FilterOperator,
    InsertOperation,
    Operation,
    Plan,
    SelectOperation,
    UpdateOperation,
    bounded_value,
    plan_hash,
)
from core.models.request import ApprovalSettings, ContinuedTicket, SlackMessageRef, TicketRequest, TicketSource
from core.models.revert import PlanRevertInput, RevertCheck, RevertOf, RevertPlan, RowConflict
from core.models.safety import Finding, OperationImpact, Risk, RowChange, SafetyReport
from core.models.status import ExecutionResult, OperationResult, OutcomeStatus, Stage, TicketOutcome, TicketStatus
from core.models.steps import (
    ExecutePlanInput,
    GatherContextInput,
    PlanTicketInput,
    ResolveApproversInput,
    ValidatePlanInput,
)
from core.models.text import MAX_TICKET_TEXT, clean_ticket_text, hidden_character, refuse_hidden_characters

__all__ = [
    "IDENTIFIER_PATTERN",
    "MALFORMED_DECIDER",
    "MAX_FILTER_TEXT",
    "MAX_OPERATIONS",
    "MAX_PLAN_INT",
    "MAX_PLAN_OPERATIONS",
    "MAX_TICKET_TEXT",
    "MAX_VALUE_TEXT",
    "MIN_PLAN_INT",
    "ApprovalRequest",
    "ApprovalSettings",
    "Assignment",
    "AuditEntry",
    "AuditEventKind",
    "ColumnInfo",
    "ContinuedTicket",
    "Decision",
    "DecisionCheck",
    "DecisionRecord",
    "DecisionSource",
    "DeleteOperation",
    "ExecutePlanInput",
    "ExecutionResult",
    "Filter",
    "FilterOperator",
    "Finding",
    "GatherContextInput",
    "Identifier",
    "InsertOperation",
    "Model",
    "NamedRows",
    "NotifyEvent",
    "NotifyInput",
    "NotifyPost",
    "NotifyResult",
    "Operation",
    "OperationImpact",
    "OperationResult",
    "OutcomeStatus",
    "PastTicket",
    "Plan",
    "PlanRevertInput",
    "PlanTicketInput",
    "RecordEventInput",
    "RecordEventsInput",
    "ResolveApproversInput",
    "RevertCheck",
    "RevertOf",
    "RevertPlan",
    "Risk",
    "RowChange",
    "RowConflict",
    "SafetyReport",
    "Scalar",
    "SelectOperation",
    "SlackMessageRef",
    "Stage",
    "TableInfo",
    "TicketContext",
    "TicketOutcome",
    "TicketRequest",
    "TicketSource",
    "TicketStatus",
    "UpdateOperation",
    "ValidatePlanInput",
    "VerifyDecisionInput",
    "bounded_value",
    "clean_ticket_text",
    "hidden_character",
    "malformed_decision",
    "plan_hash",
    "refuse_hidden_characters",
]
