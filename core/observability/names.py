"""Names and buckets of the application's metrics, shared by the workflow, the worker and the exporter.

Free of imports, so workflow code can read them inside the sandbox.
"""

PREFIX = "agent_ticket_"

# Recorded in the workflow (replay-safe, through the Temporal SDK's meter).
TICKETS_FINISHED = PREFIX + "tickets_finished"
TICKET_DURATION = PREFIX + "ticket_duration_seconds"
TIME_TO_PLAN = PREFIX + "time_to_plan_seconds"
APPROVAL_WAIT = PREFIX + "approval_wait_seconds"
DECISIONS = PREFIX + "decisions"

# Recorded around every activity by the worker's interceptor.
ACTIVITY_DURATION = PREFIX + "activity_seconds"
LLM_CALLS = PREFIX + "llm_calls"
NOTIFY_FAILURES = PREFIX + "notify_failures"

# Recorded by the clients (bot, dashboard, CLI) in their own prometheus-client registry.
TICKETS_STARTED = PREFIX + "tickets_started"
TICKET_START_DURATION = PREFIX + "ticket_start_seconds"
DECISIONS_SENT = PREFIX + "decisions_sent"

_MINUTE = 60.0
_HOUR = 3600.0
_DAY = 86400.0

# A ticket lives from seconds (runs without approval) to days (waits for people).
LONG_WAIT_BUCKETS = (
    1.0,
    5.0,
    15.0,
    _MINUTE,
    5 * _MINUTE,
    15 * _MINUTE,
    _HOUR,
    4 * _HOUR,
    12 * _HOUR,
    _DAY,
    3 * _DAY,
    7 * _DAY,
)
# Context gathering plus an LLM call (with its retries): sub-second offline, minutes when a provider struggles.
PLANNING_BUCKETS = (
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    _MINUTE,
    2 * _MINUTE,
    5 * _MINUTE,
    15 * _MINUTE,
    30 * _MINUTE,
)
# One activity attempt or one start request.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, _MINUTE, 3 * _MINUTE)

HISTOGRAM_BUCKETS = {
    TICKET_DURATION: LONG_WAIT_BUCKETS,
    APPROVAL_WAIT: LONG_WAIT_BUCKETS,
    TIME_TO_PLAN: PLANNING_BUCKETS,
    ACTIVITY_DURATION: REQUEST_BUCKETS,
}
