"""JSON log lines: each parses, and every line of a ticket's work says which ticket."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from core.logs import JsonFormatter, TicketContextFilter, json_handler, ticket_log_context
from core.models import OutcomeStatus
from tests.observability.conftest import pipeline_factory


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """A JSON handler on the root logger, as `LOG_FORMAT=json` installs it."""
    stream = io.StringIO()
    handler = json_handler(stream)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def parsed(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def format_record(record: logging.LogRecord) -> dict[str, object]:
    TicketContextFilter().filter(record)
    return dict(json.loads(JsonFormatter().format(record)))


async def test_a_ticket_run_logs_json_with_its_id_on_every_line(
    local_env: WorkflowEnvironment, tmp_path: Path, json_lines: io.StringIO
) -> None:
    async with pipeline_factory(local_env, tmp_path)() as pipeline:
        started = await pipeline.service.start(pipeline.request("upgrade acme-corp to the pro plan"))
        assert (await pipeline.service.result(started.short_id)).status is OutcomeStatus.DONE

    lines = parsed(json_lines)
    ticket_loggers = ("activities.", "service.tickets", "temporalio.workflow")
    ticket_lines = [line for line in lines if str(line["logger"]).startswith(ticket_loggers)]
    loggers = {str(line["logger"]) for line in ticket_lines}
    assert {"service.tickets", "activities.planning", "activities.audit"} <= loggers, loggers
    assert all(line.get("ticket_id") == started.short_id for line in ticket_lines), [
        line for line in ticket_lines if line.get("ticket_id") != started.short_id
    ]
    activity_lines = [line for line in ticket_lines if str(line["logger"]).startswith("activities.")]
    assert all(line["workflow_id"] == started.workflow_id and line.get("activity_type") for line in activity_lines)
    assert all({"time", "level", "message"} <= line.keys() for line in lines)


def test_workflow_logger_records_carry_the_ticket() -> None:
    """`workflow.logger` attaches the workflow's info as `temporal_workflow`; the formatter surfaces it."""
    record = logging.LogRecord("temporalio.workflow", logging.INFO, __file__, 1, "decision from %s", ("alice",), None)
    record.temporal_workflow = {"workflow_id": "ticket-abc123", "run_id": "r1", "workflow_type": "TicketWorkflow"}
    line = format_record(record)
    assert line["ticket_id"] == "abc123"
    assert line["run_id"] == "r1" and line["workflow_type"] == "TicketWorkflow"
    assert line["message"] == "decision from alice"
    assert "temporal_workflow" not in line


async def test_activity_records_carry_the_ticket_from_the_activity_info() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("tests.observability.activity")
    logger.addHandler(json_handler(stream))
    logger.setLevel(logging.INFO)
    logger.propagate = False

    @activity.defn(name="logs_something")
    async def logs_something() -> None:
        logger.info("working", extra={"rows": 3})

    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(environment.info, workflow_id="ticket-xyz789")
    await environment.run(logs_something)
    (line,) = parsed(stream)
    assert line["ticket_id"] == "xyz789" and line["activity_type"] == environment.info.activity_type
    assert line["rows"] == 3


def test_bot_side_records_take_the_ticket_from_the_context() -> None:
    record = logging.LogRecord("bot.slack", logging.WARNING, __file__, 1, "posted", None, None)
    with ticket_log_context("T-def456"):
        line = format_record(record)
    assert line["ticket_id"] == "def456" and line["level"] == "WARNING"
    outside = format_record(logging.LogRecord("bot.slack", logging.INFO, __file__, 1, "idle", None, None))
    assert "ticket_id" not in outside


def test_exceptions_are_one_json_field() -> None:
    try:
        raise ValueError("bad row")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = format_record(record)
    assert "ValueError: bad row" in str(line["exception"])
