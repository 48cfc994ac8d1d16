"""Pydantic models shared by the workflow, activities, bot, dashboard and CLI.

Every value that crosses a Temporal boundary is one of these models, so the
pydantic data converter can check it on the way in and on the way out. New
fields always get defaults: running workflow histories must keep decoding.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_TICKET_TEXT = 2000
MAX_OPERATIONS = 20
IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"

Identifier = Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]
Scalar = str | int | float | bool | None


class Model(BaseModel):
    """Base for every shared model: unknown fields are refused, values are checked."""

    model_config = ConfigDict(extra="forbid", frozen=False)


# ---------------------------------------------------------------- the request


class TicketSource(StrEnum):
    SLACK = "slack"
    DASHBOARD = "dashboard"
    CLI = "cli"
    API = "api"
    MCP = "mcp"


class ApprovalSettings(Model):
    """Who may approve and how long to wait: fixed when the ticket starts."""

    approvers: list[str] = Field(default_factory=list)
    timeout_seconds: int = Field(default=3 * 24 * 3600, ge=60)
    reminder_before_seconds: int = Field(default=24 * 3600, ge=0)
    escalation_channel: str | None = None


class TicketRequest(Model):
    """What someone asked for, validated at the edge before anything starts."""

    text: str = Field(min_length=1, max_length=MAX_TICKET_TEXT)
    requester: str = Field(min_length=1, max_length=200)
    source: TicketSource = TicketSource.CLI
    channel: str | None = Field(default=None, max_length=200)
    approval: ApprovalSettings = Field(default_factory=ApprovalSettings)
    continued: ContinuedTicket | None = None  # set only by the workflow when it continues as new
    reason: str = Field(default="", max_length=1000)  # why the requester asks, shown to approvers
    # An agent's own plan (the MCP door's `propose_plan`): the planning step returns it instead of asking the LLM.
    proposed_plan: Plan | None = None
    # Set only by `TicketService.revert`: this ticket undoes an executed one, from its before-images.
    reverts: RevertOf | None = None

    @field_validator("text")
    @classmethod
    def _clean_text(cls, value: str) -> str:
        return clean_ticket_text(value)

    @field_validator("reason")
    @classmethod
    def _clean_reason(cls, value: str) -> str:
        return clean_ticket_text(value) if value.strip() else ""


class RevertOf(Model):
    """Which executed ticket a revert ticket undoes, and whether it may overwrite later changes."""

    workflow_id: str = Field(min_length=1, max_length=80)
    include_conflicts: bool = False


class ContinuedTicket(Model):
    """What a ticket carries into a fresh run when a long review conversation continues as new."""

    created_at: datetime
    feedback: list[str] = Field(default_factory=list)
    rounds: int = 0
    slack_message: SlackMessageRef | None = None


def refuse_hidden_characters(text: str, what: str) -> str:
    """`text` unchanged, or a ValueError naming the first character no person types.

    Control characters (other than newline and tab), surrogates, private-use and unassigned
    code points, invisible format characters (bidi overrides, zero-width joiners), line and
    paragraph separators, and characters that show nothing (variation selectors, Hangul
    fillers, the blank braille pattern) that can make text read differently to a person than
    to a program.
    """
    hidden = hidden_character(text)
    if hidden:
        raise ValueError(f"{what} contains {hidden}")
    return text


def clean_ticket_text(value: str) -> str:
    """Normalise ticket text and refuse what no person types.

    Control characters (other than newline and tab), invisible format
    characters used to hide instructions, and text that is blank once
    normalised are refused with a message saying so.
    """
    text = unicodedata.normalize("NFKC", value).strip()
    if not text:
        raise ValueError("ticket text is empty")
    refuse_hidden_characters(text, "ticket text")
    if len(text) > MAX_TICKET_TEXT:
        raise ValueError(f"ticket text is longer than {MAX_TICKET_TEXT} characters")
    return text


# Characters of letter, mark or symbol categories that show nothing: they can hide text or data
# (a variation selector per byte after an emoji) as well as any format character can.
_INVISIBLE = {
    0x034F: "an invisible combining grapheme joiner",
    0x115F: "an invisible Hangul filler",
    0x1160: "an invisible Hangul filler",
    0x3164: "an invisible Hangul filler",
    0xFFA0: "an invisible Hangul filler",
    0x2800: "a blank braille pattern",
    **{code: "an invisible variation selector" for code in (*range(0x180B, 0x1810), *range(0xFE00, 0xFE10))},
}
_SUPPLEMENTARY_SELECTORS = range(0xE0100, 0xE01F0)
# Emoji presentation (U+FE0F) or text presentation (U+FE0E), once, right after a symbol: what
# keyboards put in "❤️"; it carries nothing, unlike a run of selectors or one after a letter.
_PRESENTATION_SELECTORS = "\ufe0e\ufe0f"


def hidden_character(text: str) -> str | None:
    """What no person types in `text`, in words, or None: control, unassigned or invisible characters.

    Newline and tab are allowed. Used for ticket text and for every string a plan carries.
    """
    previous = ""
    for char in text:
        category = unicodedata.category(char)
        code = ord(char)
        if char in "\n\t":
            pass
        elif category in ("Cc", "Cs", "Co", "Cn"):
            return f"a control or unassigned character (U+{code:04X})"
        elif category == "Cf":
            return f"an invisible formatting character (U+{code:04X})"
        elif category in ("Zl", "Zp"):
            return f"a line or paragraph separator (U+{code:04X})"
        elif code in _SUPPLEMENTARY_SELECTORS:
            return f"an invisible variation selector (U+{code:04X})"
        elif code in _INVISIBLE and not _presentation(previous, char):
            return f"{_INVISIBLE[code]} (U+{code:04X})"
        previous = char
    return None


def _presentation(previous: str, char: str) -> bool:
    return char in _PRESENTATION_SELECTORS and bool(previous) and unicodedata.category(previous) == "So"


# ---------------------------------------------------------------- context


class ColumnInfo(Model):
    name: str
    type: str
    nullable: bool = True
    primary_key: bool = False
    foreign_key: str | None = None
    private: bool = False  # its values reach the planner only when the ticket text holds them


class TableInfo(Model):
    name: str
    columns: list[ColumnInfo] = Field(default_factory=list)
    row_count: int | None = None


class NamedRows(Model):
    """Rows of one table that the ticket text names (by id, email, slug or name)."""

    table: str
    match: str
    rows: list[dict[str, Scalar]] = Field(default_factory=list)


class PastTicket(Model):
    ticket_id: str
    text: str
    status: str
    created_at: datetime


class AuditEntry(Model):
    ticket_id: str
    kind: str
    actor: str | None = None
    summary: str = ""
    created_at: datetime


class TicketContext(Model):
    """Everything the planner may see, bounded in size (see `max_bytes`)."""

    schema_tables: list[TableInfo] = Field(default_factory=list)
    named_rows: list[NamedRows] = Field(default_factory=list)
    past_tickets: list[PastTicket] = Field(default_factory=list)
    recent_audit: list[AuditEntry] = Field(default_factory=list)
    truncated: bool = False
    redacted: dict[str, int] = Field(default_factory=dict)  # "table.column" -> private values replaced

    def summary(self) -> str:
        rows = sum(len(named.rows) for named in self.named_rows)
        redacted = sum(self.redacted.values())
        return (
            f"{len(self.schema_tables)} tables, {rows} named rows, "
            f"{len(self.past_tickets)} earlier tickets, {len(self.recent_audit)} audit entries"
            + (f", {redacted} private values redacted ({', '.join(sorted(self.redacted))})" if redacted else "")
            + (" (truncated)" if self.truncated else "")
        )


# ---------------------------------------------------------------- the plan


class FilterOperator(StrEnum):
    EQ = "eq"
    NE = "ne"
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"
    IN = "in"
    LIKE = "like"
    IS_NULL = "is_null"
    NOT_NULL = "not_null"


# Plan values must survive JSON unchanged: Temporal's converter writes NaN and ±Infinity as null,
# which would turn `eq NaN` into `IS NULL` between the planner and the safety check.
_FINITE_VALUES = ConfigDict(allow_inf_nan=False)


# Bounds on plan values, so what no column or person needs never reaches the database: SQLite
# refuses LIKE patterns past 50,000 characters, and no driver binds integers past 64 bits.
MAX_FILTER_TEXT = 1000
MAX_VALUE_TEXT = 10_000
MIN_PLAN_INT, MAX_PLAN_INT = -(2**63), 2**63 - 1


def bounded_value(value: Scalar, max_text: int) -> Scalar:
    """`value` unchanged, or a ValueError when it is text longer than `max_text` or an integer past 64 bits."""
    if isinstance(value, str) and len(value) > max_text:
        raise ValueError(f"text values are at most {max_text} characters; this one has {len(value)}")
    if isinstance(value, int) and not isinstance(value, bool) and not MIN_PLAN_INT <= value <= MAX_PLAN_INT:
        raise ValueError(f"integer values lie between {MIN_PLAN_INT} and {MAX_PLAN_INT}")
    return value


class Filter(Model):
    """`column operator value`; filters of one operation are joined with AND."""

    model_config = _FINITE_VALUES

    column: Identifier
    op: FilterOperator
    value: Scalar | list[Scalar] = None

    @field_validator("value")
    @classmethod
    def _bounded(cls, value: Scalar | list[Scalar]) -> Scalar | list[Scalar]:
        if isinstance(value, list):
            return [bounded_value(item, MAX_FILTER_TEXT) for item in value]
        return bounded_value(value, MAX_FILTER_TEXT)


class Assignment(Model):
    """`column = value` in an insert or update."""

    model_config = _FINITE_VALUES

    column: Identifier
    value: Scalar

    @field_validator("value")
    @classmethod
    def _bounded(cls, value: Scalar) -> Scalar:
        return bounded_value(value, MAX_VALUE_TEXT)


class SelectOperation(Model):
    kind: Literal["select"] = "select"
    table: Identifier
    columns: list[Identifier] = Field(default_factory=list, max_length=50)
    filters: list[Filter] = Field(default_factory=list, max_length=20)
    limit: int = Field(default=50, ge=1, le=500)


class InsertOperation(Model):
    kind: Literal["insert"] = "insert"
    table: Identifier
    values: list[Assignment] = Field(min_length=1, max_length=50)


class UpdateOperation(Model):
    kind: Literal["update"] = "update"
    table: Identifier
    values: list[Assignment] = Field(min_length=1, max_length=50)
    filters: list[Filter] = Field(default_factory=list, max_length=20)


class DeleteOperation(Model):
    kind: Literal["delete"] = "delete"
    table: Identifier
    filters: list[Filter] = Field(default_factory=list, max_length=20)


Operation = Annotated[
    SelectOperation | InsertOperation | UpdateOperation | DeleteOperation,
    Field(discriminator="kind"),
]


class Plan(Model):
    """The LLM's proposal: typed operations, never SQL."""

    summary: str = Field(max_length=500)
    rationale: str = Field(default="", max_length=2000)
    operations: list[Operation] = Field(default_factory=list, max_length=MAX_OPERATIONS)
    planner: str = "unknown"

    def fingerprint(self) -> str:
        """Hash of what would run: approvals are bound to it."""
        return plan_hash(self)


def plan_hash(plan: Plan) -> str:
    """SHA-256 over the operations' canonical JSON (summary and prose excluded)."""
    canonical = json.dumps(
        [operation.model_dump(mode="json") for operation in plan.operations],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# ---------------------------------------------------------------- safety


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    BLOCKED = "blocked"

    @property
    def rank(self) -> int:
        return list(Risk).index(self)


class Finding(Model):
    """One rule's verdict on one operation (or on the plan when index is None)."""

    rule: str
    risk: Risk
    message: str
    operation_index: int | None = None


class RowChange(Model):
    before: dict[str, Scalar] | None = None
    after: dict[str, Scalar] | None = None
    key: str | None = None  # the row's key as in `OperationImpact.row_keys`


class OperationImpact(Model):
    """What one operation did in the dry run of the whole plan, in plan order."""

    operation_index: int
    kind: str
    table: str
    rows_affected: int
    preview: list[RowChange] = Field(default_factory=list)
    # Keys of every row touched (read, for a select), sorted; `new:<index>` names a row the plan inserts.
    row_keys: list[str] = Field(default_factory=list)
    # For an update or delete: a digest of the rows it touches as they were (activities/plan_runner.py);
    # execution refuses when the same keys now hold other values (a row changed or a key was reused).
    rows_version: str = ""
    # Counts, keys and preview withheld from view: the operation finds rows by a private value, and
    # what it matched would tell that value before anyone approved reading it (core/masking.py).
    withheld: bool = False


class RowConflict(Model):
    """A row a revert would put back that someone changed after the original ran: before, after and now."""

    table: str
    key: str
    before: dict[str, Scalar] | None = None  # before the original (None: the original inserted it)
    after: dict[str, Scalar] | None = None  # right after the original (None: the original deleted it)
    now: dict[str, Scalar] | None = None  # today (None: the row is gone)


class RevertCheck(Model):
    """What judging a revert plan found beyond the rules every plan meets (activities/revert.py)."""

    reverts: str  # the original ticket's workflow id
    original_requester: str = ""  # may ask for the revert, never approve it
    original_approvals: int = 0  # people who approved the original: the revert needs at least as many
    conflicts: list[RowConflict] = Field(default_factory=list)
    include_conflicts: bool = False


class SafetyReport(Model):
    risk: Risk
    findings: list[Finding] = Field(default_factory=list)
    impacts: list[OperationImpact] = Field(default_factory=list)
    required_approvals: int = 0
    plan_hash: str = ""
    # Private columns per table the plan touches: their values are masked unless the plan was approved.
    private_columns: dict[str, list[str]] = Field(default_factory=dict)
    revert: RevertCheck | None = None  # set when the plan reverts an executed ticket

    @property
    def approved_row_keys(self) -> list[list[str]]:
        """The row keys an approval of this report covers, one list per operation (`ExecutePlanInput`)."""
        return [list(impact.row_keys) for impact in self.impacts]

    @property
    def rows_affected(self) -> int:
        return sum(impact.rows_affected for impact in self.impacts if impact.kind != "select")

    @property
    def blocked(self) -> bool:
        return self.risk is Risk.BLOCKED


# ---------------------------------------------------------------- approval


class DecisionSource(StrEnum):
    SLACK = "slack"
    DASHBOARD = "dashboard"
    CLI = "cli"
    API = "api"


class ApprovalRequest(Model):
    request_id: str
    plan_hash: str
    approvers: list[str] = Field(default_factory=list)
    required_approvals: int = 1
    requested_at: datetime
    deadline: datetime
    reminder_at: datetime | None = None
    # Who may not decide besides the requester: for a revert, whoever asked for the change it undoes.
    excluded: list[str] = Field(default_factory=list)

    def decision(self, decider: str, source: DecisionSource, *, approve: bool = True, comment: str = "") -> Decision:
        """A decision on this request, naming its id and plan hash so the workflow can tell it is current."""
        return Decision(
            approve=approve,
            decider=decider,
            source=source,
            request_id=self.request_id,
            plan_hash=self.plan_hash,
            comment=comment,
        )


class Decision(Model):
    """The payload of the `approve` and `reject` signals (docs/decisions.md)."""

    approve: bool
    decider: str = Field(min_length=1, max_length=200)
    source: DecisionSource
    request_id: str = Field(max_length=100)
    plan_hash: str = Field(max_length=100)
    comment: str = Field(default="", max_length=2000)
    replan: bool = False  # a reject that asks for a new plan, with `comment` as the feedback
    # Names this decision, so the client that sent it can find the workflow's verdict in `status`.
    id: str = Field(default="", max_length=64)
    # Set by the front door that authenticated the decider (core/decision_proof.py).
    signed_at: datetime | None = None
    proof: str = Field(default="", max_length=200)

    @field_validator("comment")
    @classmethod
    def _screen_comment(cls, value: str) -> str:
        """Comments and reasons are shown to people and fed to the planner: screened like ticket text."""
        return refuse_hidden_characters(value, "the comment")


# Stands in for a payload that did not parse, so its record still shows in the status and the audit.
MALFORMED_DECIDER = "(malformed)"


def malformed_decision(approve: bool) -> Decision:
    return Decision(approve=approve, decider=MALFORMED_DECIDER, source=DecisionSource.API, request_id="", plan_hash="")


class DecisionRecord(Model):
    """A decision as the workflow saw it: counted, or ignored and why."""

    decision: Decision
    received_at: datetime
    accepted: bool
    reason: str = ""


class VerifyDecisionInput(Model):
    ticket_id: str
    decision: Decision


class DecisionCheck(Model):
    """The worker's verdict on a decision's proof: None when it may be counted."""

    problem: str | None = None


# ---------------------------------------------------------------- execution and outcome


class OperationResult(Model):
    operation_index: int
    kind: str
    table: str
    rows_affected: int
    rows: list[dict[str, Scalar]] = Field(default_factory=list)


class ExecutionResult(Model):
    plan_hash: str
    results: list[OperationResult] = Field(default_factory=list)
    replayed: bool = False
    executed_at: datetime

    @property
    def rows_changed(self) -> int:
        return sum(result.rows_affected for result in self.results if result.kind != "select")


class Stage(StrEnum):
    RECEIVED = "received"
    GATHERING_CONTEXT = "gathering_context"
    PLANNING = "planning"
    VALIDATING = "validating"
    AWAITING_APPROVAL = "awaiting_approval"
    EXECUTING = "executing"
    FINISHED = "finished"


class OutcomeStatus(StrEnum):
    DONE = "done"
    REJECTED = "rejected"
    BLOCKED = "blocked"
    EXPIRED = "expired"
    FAILED = "failed"


class TicketOutcome(Model):
    status: OutcomeStatus
    reason: str
    execution: ExecutionResult | None = None
    decided_by: list[str] = Field(default_factory=list)
    finished_at: datetime


class TicketStatus(Model):
    """The `status` query's answer: all a UI needs, so no UI keeps its own copy."""

    ticket_id: str
    workflow_id: str
    request: TicketRequest
    stage: Stage
    created_at: datetime
    updated_at: datetime
    context_summary: str = ""
    plan: Plan | None = None
    plan_hash: str | None = None
    report: SafetyReport | None = None
    approval: ApprovalRequest | None = None
    decisions: list[DecisionRecord] = Field(default_factory=list)
    reminders_sent: int = 0
    outcome: TicketOutcome | None = None
    slack_message: SlackMessageRef | None = None
    feedback: list[str] = Field(default_factory=list)
    review_rounds: int = 0
    # Why the plan is being judged (and asked for) again: the rows it touches changed since approval.
    rejudged_because: str = ""
    # Who has approved the current approval request: the one count every client shows.
    approved_by: list[str] = Field(default_factory=list)
    # The Slack message is owed while the state it should show is newer than the one delivered.
    message_version: int = 0
    message_delivered: int = 0
    posts_owed: list[str] = Field(default_factory=list)

    @property
    def message_owed(self) -> bool:
        return self.message_delivered < self.message_version or bool(self.posts_owed)

    @property
    def approvals_needed(self) -> int:
        """How many more approvals the current request needs (0 when none is pending)."""
        if self.approval is None:
            return 0
        return max(0, self.approval.required_approvals - len(self.approved_by))

    @property
    def pending_approval(self) -> bool:
        return self.stage is Stage.AWAITING_APPROVAL and self.approval is not None

    @property
    def status_label(self) -> str:
        return self.outcome.status.value if self.outcome else self.stage.value


class SlackMessageRef(Model):
    channel: str
    ts: str


# ---------------------------------------------------------------- activity inputs


class AuditEventKind(StrEnum):
    SUBMITTED = "submitted"
    CONTEXT_GATHERED = "context_gathered"
    PLANNED = "planned"
    VALIDATED = "validated"
    DECIDED = "decided"
    APPROVAL_REQUESTED = "approval_requested"
    REMINDER_SENT = "reminder_sent"
    DECISION_ACCEPTED = "decision_accepted"
    DECISION_IGNORED = "decision_ignored"
    REPLAN_REQUESTED = "replan_requested"
    EXECUTED = "executed"
    ROWS_CHANGED = "rows_changed"
    FAILED = "failed"
    FINISHED = "finished"
    NOTIFIED = "notified"
    NOTIFY_FAILED = "notify_failed"
    REVERTED = "reverted"  # on the original ticket's record, when a revert of it is done


class RecordEventInput(Model):
    """Append one audit event and bring the ticket's row up to date."""

    ticket_id: str
    kind: AuditEventKind
    actor: str | None = None
    source: str | None = None
    summary: str = ""
    detail: dict[str, Any] = Field(default_factory=dict)
    request: TicketRequest | None = None
    stage: Stage | None = None
    status: str | None = None
    risk: Risk | None = None


class RecordEventsInput(Model):
    """Several events of one ticket, in the order they happened, written in one transaction."""

    events: list[RecordEventInput] = Field(min_length=1)
    # Names this batch across every attempt, local or not, so a retry never appends it twice.
    batch_key: str = ""

    @model_validator(mode="after")
    def _one_ticket(self) -> RecordEventsInput:
        if len({event.ticket_id for event in self.events}) > 1:
            raise ValueError("a batch of audit events must all belong to one ticket")
        return self


class GatherContextInput(Model):
    ticket_id: str
    request: TicketRequest


class PlanTicketInput(Model):
    ticket_id: str
    request: TicketRequest
    context: TicketContext
    feedback: list[str] = Field(default_factory=list)


class ValidatePlanInput(Model):
    ticket_id: str
    plan: Plan
    requester: str = ""  # whose budget of unapproved changes the plan would spend ("": none checked)
    reverts: RevertOf | None = None  # the plan claims to revert this ticket: checked against its before-images


class PlanRevertInput(Model):
    ticket_id: str
    reverts: RevertOf


class RevertPlan(Model):
    """The inverse of an executed ticket's change, or why it cannot be reverted."""

    plan: Plan | None = None
    refusal: str = ""


class ExecutePlanInput(Model):
    ticket_id: str
    workflow_id: str
    plan: Plan
    plan_hash: str
    approved_rows: list[int] = Field(default_factory=list)
    # The row keys each operation touched in the approved dry run (`SafetyReport.approved_row_keys`);
    # when given, execution refuses with ERROR_APPROVED_ROWS_CHANGED if it would touch any others.
    approved_row_keys: list[list[str]] = Field(default_factory=list)
    approved_versions: list[str] = Field(default_factory=list)  # `OperationImpact.rows_version`, per operation
    requester: str = ""  # charged for the rows changed when no one approved the plan
    approved_by: list[str] = Field(default_factory=list)  # empty: ran without approval (budget, masking)
    reverts: str = ""  # the workflow id of the ticket this plan reverts: claimed in the same transaction


class NotifyEvent(StrEnum):
    STAGE = "stage"
    REMINDER = "reminder"
    ESCALATION = "escalation"
    OUTCOME = "outcome"


class NotifyPost(Model):
    """A one-off message about the ticket (a reminder, an escalation, the outcome), sent once."""

    kind: NotifyEvent
    key: str  # unique within the ticket; how a retry recognises a post already made


class NotifyInput(Model):
    """Bring the ticket's Slack message up to its newest state, and send `posts`.

    The activity asks the workflow for its status when it runs, so a delivery that waited
    out an outage sends the newest state, not the one it was scheduled with.
    """

    ticket_id: str
    workflow_id: str
    posts: list[NotifyPost] = Field(default_factory=list)


class NotifyResult(Model):
    delivered: bool
    message: SlackMessageRef | None = None
    error: str | None = None
    version: int = 0  # the `message_version` of the status that was delivered
    posted: list[str] = Field(default_factory=list)  # keys of the posts made (or found made)


class ResolveApproversInput(Model):
    ticket_id: str
    approvers: list[str]


TicketRequest.model_rebuild()
TicketStatus.model_rebuild()
