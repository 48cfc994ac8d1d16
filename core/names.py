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
ACTIVITY_NOTIFY = "notify_ticket"
ACTIVITY_RESOLVE_APPROVERS = "resolve_approvers"
ACTIVITY_VERIFY_DECISION = "verify_decision"
ACTIVITY_PLAN_REVERT = "plan_revert"

# `execute_plan` refused: the rows the plan would touch now differ from the approved ones, or the
# requester's budget ran out since validation. Nothing was written; validate again and ask again.
ERROR_APPROVED_ROWS_CHANGED = "ApprovedRowsChanged"
ERROR_REVERT_REFUSED = "RevertRefused"  # the change was reverted meanwhile, or its window closed
# In an audit event's detail: the event's own identity, so it is appended once whatever batch carries it.
AUDIT_EVENT_KEY = "event_key"


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
