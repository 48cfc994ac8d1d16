"""Names that the workflow, the worker and every client must agree on.

Kept free of imports so workflow code can use them inside the sandbox.
"""

WORKFLOW_TASK_QUEUE = "agent-ticket"
LLM_TASK_QUEUE = "agent-ticket-llm"

WORKFLOW_NAME = "TicketWorkflow"
WORKFLOW_ID_PREFIX = "ticket-"
TICKET_ID_PREFIX = "T-"

SIGNAL_APPROVE = "approve"
SIGNAL_REJECT = "reject"
QUERY_STATUS = "status"

ACTIVITY_RECORD_EVENTS = "record_events"
ACTIVITY_GATHER_CONTEXT = "gather_context"
ACTIVITY_PLAN_TICKET = "plan_ticket"
ACTIVITY_VALIDATE_PLAN = "validate_plan"
ACTIVITY_EXECUTE_PLAN = "execute_plan"
ACTIVITY_FIND_EXECUTION = "find_execution"
ACTIVITY_NOTIFY = "notify_ticket"
ACTIVITY_RESOLVE_APPROVERS = "resolve_approvers"
ACTIVITY_VERIFY_DECISION = "verify_decision"
ACTIVITY_VERIFY_REQUEST = "verify_request"
ACTIVITY_PLAN_REVERT = "plan_revert"

# `execute_plan` refused: the rows the plan would touch now differ from the approved ones, or the
# requester's budget ran out since validation. Nothing was written; validate again and ask again.
ERROR_APPROVED_ROWS_CHANGED = "ApprovedRowsChanged"
ERROR_REVERT_REFUSED = "RevertRefused"  # the change was reverted meanwhile, or its window closed
ERROR_NOT_A_TICKET = "NotATicket"  # a workflow started under an id no ticket has
ERROR_UNPROVEN_REQUEST = "UnprovenRequest"  # a request no front door signed for this ticket
# In an audit event's detail: the event's own identity, so it is appended once whatever batch carries it.
AUDIT_EVENT_KEY = "event_key"


# What a ticket's short id may hold: what `new_short_id` makes, and what the app DB's key column fits.
SHORT_ID_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
MAX_SHORT_ID = 64


def is_short_id(text: str) -> bool:
    """Whether `text` can be a ticket's short id at all: letters, digits, `_` and `-`, at most 64."""
    return 0 < len(text) <= MAX_SHORT_ID and set(text) <= SHORT_ID_CHARACTERS


def is_ticket_workflow_id(workflow_id: str) -> bool:
    """Exactly `ticket-<short id>`, where the short id is one `short_id_from` leaves as it is.

    `short_id_from` also accepts `T-<id>`, `t-<id>` and `<id>` from people: a workflow started under one
    of those (red team 15), or under `ticket-T-<id>`, whose id is stripped again on the way to the app
    DB (red team 16), would write to another ticket's record.
    """
    short_id = workflow_id.removeprefix(WORKFLOW_ID_PREFIX)
    return workflow_id.startswith(WORKFLOW_ID_PREFIX) and is_short_id(short_id) and short_id_from(short_id) == short_id


def workflow_id_for(short_id: str) -> str:
    """`ticket-<short id>`: the Temporal workflow id of a ticket."""
    return f"{WORKFLOW_ID_PREFIX}{short_id}"


def ticket_label(short_id: str) -> str:
    """`T-<short id>`: how people see a ticket."""
    return f"{TICKET_ID_PREFIX}{short_id}"


def short_id_from(reference: str) -> str:
    """Accept `T-abc123`, `ticket-abc123` or `abc123` and return `abc123`."""
    text = reference.strip()
    for prefix in (WORKFLOW_ID_PREFIX, TICKET_ID_PREFIX, TICKET_ID_PREFIX.lower()):
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text
