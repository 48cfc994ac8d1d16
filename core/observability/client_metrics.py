"""What the front doors (bot, dashboard, CLI) count, in the process's prometheus-client registry.

Starts and decisions happen in the client, not in a worker, so they are counted here and
served on the bot's `/metrics`; what happens to a ticket afterwards is counted by the workers.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from core.observability.names import DECISIONS_SENT, REQUEST_BUCKETS, TICKET_START_DURATION, TICKETS_STARTED

tickets_started = Counter(
    TICKETS_STARTED,
    "Ticket start requests, by front door and result (started, duplicate: the same request again).",
    ["source", "result"],
)
ticket_start_seconds = Histogram(
    TICKET_START_DURATION,
    "Time to start a ticket's workflow (the acknowledgement a person waits for).",
    ["source"],
    buckets=REQUEST_BUCKETS,
)
decisions_sent = Counter(
    DECISIONS_SENT,
    "Approve/reject decisions, by front door and result (sent to the workflow, or refused before sending).",
    ["source", "decision", "result"],
)
