"""Log records that say which ticket they are about, as JSON lines or text (LOG_FORMAT).

Every record of a ticket's work gets `ticket_id`: in an activity from the activity's workflow
id, in the workflow from the info `workflow.logger` attaches, elsewhere (the bot, the
ticket service) from `ticket_log_context`. JSON lines let a log pipeline (Loki, CloudWatch,
Elasticsearch) index and filter by ticket without parsing messages.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from temporalio import activity, workflow

from core.names import short_id_from

_current_ticket: contextvars.ContextVar[str | None] = contextvars.ContextVar("agent_ticket_log_ticket", default=None)

# Record attributes the formatter always writes or never should: the rest are `extra=` fields.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}
_CONTEXT = {"ticket_id", "workflow_id", "run_id", "activity_type", "workflow_type", "attempt", "task_queue"}
_TEMPORAL_EXTRAS = ("temporal_workflow", "temporal_activity")


@contextlib.contextmanager
def ticket_log_context(ticket_id: str) -> Iterator[None]:
    """Log records made inside the block (in this task) carry `ticket_id`."""
    token = _current_ticket.set(short_id_from(ticket_id))
    try:
        yield
    finally:
        _current_ticket.reset(token)


def _temporal_context(record: logging.LogRecord) -> dict[str, Any]:
    """Workflow or activity details: from the SDK loggers' `extra`, else from the running activity."""
    for name in _TEMPORAL_EXTRAS:
        details = getattr(record, name, None)
        if isinstance(details, dict):
            return details
    if activity.in_activity():
        info = activity.info()
        return {
            "workflow_id": info.workflow_id,
            "run_id": info.workflow_run_id,
            "activity_type": info.activity_type,
            "attempt": info.attempt,
        }
    return {}


class TicketContextFilter(logging.Filter):
    """Adds `ticket_id` (and the workflow or activity it came from) to each record that has one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "ticket_id", None):
            return True
        details = _temporal_context(record)
        for key in ("workflow_id", "run_id", "activity_type", "workflow_type", "attempt", "task_queue"):
            if key in details and not hasattr(record, key):
                setattr(record, key, details[key])
        workflow_id = details.get("workflow_id")
        ticket = short_id_from(str(workflow_id)) if workflow_id else _current_ticket.get()
        if ticket:
            record.ticket_id = ticket
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, ticket and Temporal context, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in sorted(_CONTEXT):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in _CONTEXT and key not in _TEMPORAL_EXTRAS and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def json_handler(stream: Any = None) -> logging.Handler:
    """A stream handler writing JSON lines with the ticket context."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(TicketContextFilter())
    return handler


def use_plain_sdk_messages() -> None:
    """The SDK's workflow and activity loggers append their info dict to each message; JSON has it as fields."""
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
