"""Hypothesis fuzzing of everything untrusted that becomes a model: plans, tickets, decisions, Slack payloads.

What must hold for any input: parsing fails only with a validation error (never a crash that
would fail an activity or a listener in some other way); a plan that parses compiles to SQL
whose every value is a bound parameter on a known, non-ledger table, or is refused with
`SqlCompileError`; the deterministic safety rules block what the policy forbids; and models
cross the Temporal boundary unchanged (their plan hash included).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import string
import unicodedata
from collections.abc import Iterator
from datetime import UTC, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import Delete, Engine, Insert, MetaData, Select, Update, create_engine, insert, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.pool import StaticPool
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.llm_prompt import plan_from_answer
from activities.safety import target_shape
from activities.safety_rules import overall_risk, static_findings
from activities.sql import SqlCompileError, compile_operation, count_query, preview_query
from bot.slack.actions import ButtonClick, RejectSubmission
from bot.slack.commands import CommandKind, SlashCommand, parse_command_text
from core.demo import demo_metadata, demo_rows
from core.ledger import LEDGER_TABLE, ledger_metadata
from core.models import (
    IDENTIFIER_PATTERN,
    MAX_OPERATIONS,
    MAX_TICKET_TEXT,
    Assignment,
    Decision,
    DeleteOperation,
    Filter,
    FilterOperator,
    InsertOperation,
    Plan,
    Risk,
    SelectOperation,
    TicketRequest,
    UpdateOperation,
)
from core.policy import Policy, load_policy_file
from core.settings import DEFAULT_POLICY_FILE
from rendering.slack_ids import ButtonValue

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

HOSTILE_TEXT = [
    "'; DROP TABLE users; --",
    "Robert'); DROP TABLE customers;--",
    "1 OR 1=1",
    '" OR ""="',
    "users; DROP TABLE users",
    "users--",
    "/* */",
    "%' OR '%'='",
    "\\x00",
    "NULL",
]
TABLE_NAMES = [*sorted(demo_metadata.tables), LEDGER_TABLE, LEDGER_TABLE.upper(), "sqlite_master", "Users"]
COLUMN_NAMES = sorted(
    {column.name for table in demo_metadata.tables.values() for column in table.columns}
    | {column.name for column in ledger_metadata.tables[LEDGER_TABLE].columns}
)
FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}

# ---------------------------------------------------------------- strategies

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
offsets = st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23)).map(timezone)
date_texts = st.one_of(
    st.sampled_from(["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "2025-02-30", "24:00", "1e309"]),
    st.datetimes(timezones=st.none() | st.just(UTC) | offsets).map(lambda moment: moment.isoformat()),
    st.dates().map(lambda day: day.isoformat()),
    st.times().map(lambda moment: moment.isoformat()),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),  # the plan model refuses wider (tests/activities)
    st.floats(),
    st.text(max_size=30),
    st.sampled_from(HOSTILE_TEXT),
    date_texts,
)
# What a parsed plan can hold: JSON carries no NaN or Infinity, so the model refuses them.
finite_scalars = scalars.filter(lambda value: not isinstance(value, float) or math.isfinite(value))
identifiers = st.one_of(
    st.sampled_from(COLUMN_NAMES),
    st.sampled_from(TABLE_NAMES),
    st.from_regex(IDENTIFIER_PATTERN, fullmatch=True),
    st.sampled_from(HOSTILE_TEXT),
    st.text(max_size=12),
)
tables = st.sampled_from(TABLE_NAMES) | identifiers
operators = st.sampled_from([op.value for op in FilterOperator]) | st.text(max_size=6)
filters = st.fixed_dictionaries(
    {"column": identifiers, "op": operators}, optional={"value": scalars | st.lists(scalars, max_size=4)}
)
assignments = st.fixed_dictionaries({"column": identifiers, "value": scalars})
operations = st.one_of(
    st.fixed_dictionaries(
        {"kind": st.just("select"), "table": tables},
        optional={
            "columns": st.lists(identifiers, max_size=4),
            "filters": st.lists(filters, max_size=3),
            "limit": st.integers(min_value=-5, max_value=600),
        },
    ),
    st.fixed_dictionaries({"kind": st.just("insert"), "table": tables, "values": st.lists(assignments, max_size=4)}),
    st.fixed_dictionaries(
        {"kind": st.just("update"), "table": tables, "values": st.lists(assignments, max_size=4)},
        optional={"filters": st.lists(filters, max_size=3)},
    ),
    st.fixed_dictionaries(
        {"kind": st.just("delete"), "table": tables}, optional={"filters": st.lists(filters, max_size=3)}
    ),
    st.dictionaries(st.sampled_from(["kind", "table", "values", "filters", "columns", "sql"]), json_values, max_size=4),
)
plan_like = st.fixed_dictionaries(
    {"summary": st.text(max_size=40)},
    optional={"rationale": st.text(max_size=40), "operations": st.lists(operations, max_size=4), "planner": st.text()},
)
anything = json_values | plan_like

# Plans that pass the model: what an LLM answer that parsed can contain, for the stages after parsing.
# Cheaper than `st.from_regex(IDENTIFIER_PATTERN)`, and the same language.
pattern_names = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from(string.ascii_letters + "_"),
    st.text(alphabet=string.ascii_letters + string.digits + "_", max_size=20),
)
valid_tables = st.sampled_from(TABLE_NAMES[:-1]) | pattern_names
valid_columns = st.sampled_from(COLUMN_NAMES) | pattern_names


def operations_on(tables: st.SearchStrategy[str], columns: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    """Every kind of operation over names drawn from `tables` and `columns`, with any values."""
    filters = st.builds(
        Filter,
        column=columns,
        op=st.sampled_from(FilterOperator),
        value=finite_scalars | st.lists(finite_scalars, max_size=4),
    )
    assignments = st.builds(Assignment, column=columns, value=finite_scalars)
    return st.one_of(
        st.builds(
            SelectOperation,
            table=tables,
            columns=st.lists(columns, max_size=4),
            filters=st.lists(filters, max_size=3),
            limit=st.integers(min_value=1, max_value=500),
        ),
        st.builds(InsertOperation, table=tables, values=st.lists(assignments, min_size=1, max_size=4)),
        st.builds(
            UpdateOperation,
            table=tables,
            values=st.lists(assignments, min_size=1, max_size=4),
            filters=st.lists(filters, max_size=3),
        ),
        st.builds(DeleteOperation, table=tables, filters=st.lists(filters, max_size=3)),
    )


def operations_on_demo_table(name: str) -> st.SearchStrategy[Any]:
    """Operations on one real table with its real columns: these get past the name checks to the values."""
    return operations_on(st.just(name), st.sampled_from([column.name for column in demo_metadata.tables[name].columns]))


model_operations = st.one_of(
    st.sampled_from(sorted(demo_metadata.tables)).flatmap(operations_on_demo_table),
    operations_on(valid_tables, valid_columns),
)
plans = st.builds(
    Plan,
    summary=st.text(max_size=40),
    operations=st.lists(model_operations, max_size=MAX_OPERATIONS // 2),
    planner=st.just("openai:fuzz"),
)


# ---------------------------------------------------------------- a real target to run compiled statements on


@pytest.fixture(scope="module")
def target() -> Iterator[tuple[Engine, MetaData]]:
    """The demo target (with its ledger) in SQLite, reflected the way the activities reflect it."""
    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    demo_metadata.create_all(engine)
    ledger_metadata.create_all(engine)
    with engine.begin() as connection:
        for name, rows in demo_rows().items():
            if rows:
                connection.execute(insert(demo_metadata.tables[name]), rows)
    metadata = MetaData()
    metadata.reflect(engine)
    yield engine, metadata
    engine.dispose()


def database_state(engine: Engine) -> tuple[list[Any], int]:
    """The schema as SQLite records it, and how many rows all tables hold together (one round trip each)."""
    total = " + ".join(f"(SELECT count(*) FROM {name})" for name in [*demo_metadata.tables, LEDGER_TABLE])
    with engine.connect() as connection:
        schema = connection.execute(text("SELECT type, name, sql FROM sqlite_master ORDER BY name")).all()
        rows = int(connection.scalar(text(f"SELECT {total}")) or 0)
    return [tuple(row) for row in schema], rows


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy_file(DEFAULT_POLICY_FILE)


# ---------------------------------------------------------------- plans


@FUZZ
@given(anything)
def test_plan_parsing_fails_only_with_validation_errors(data: Any) -> None:
    try:
        plan = Plan.model_validate(data)
    except ValidationError:
        return
    for operation in plan.operations:
        assert re.fullmatch(IDENTIFIER_PATTERN, operation.table)
    assert_crosses_the_boundary_unchanged(plan)


def assert_crosses_the_boundary_unchanged(plan: Plan) -> None:
    """Through the converter every client and worker uses: same JSON, same plan hash."""
    converter = pydantic_data_converter.payload_converter
    [decoded] = converter.from_payloads(converter.to_payloads([plan]), [Plan])
    assert decoded.fingerprint() == plan.fingerprint()
    assert decoded.model_dump_json() == plan.model_dump_json()


@FUZZ
@given(anything)
def test_llm_answers_are_parsed_or_refused_with_a_reason(data: Any) -> None:
    """`plan_from_answer` is what the planner calls on the LLM's text: ValueError (re-ask) or a Plan."""
    try:
        plan_from_answer(json.dumps(data), "openai:fuzz")
    except ValueError as problem:
        assert str(problem)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_values_json_cannot_carry_are_refused(value: float) -> None:
    """Found by the fuzzer: NaN and Infinity became null in history, so `eq NaN` would have run as IS NULL."""
    update = {"kind": "update", "table": "users", "values": [{"column": "role", "value": value}], "filters": []}
    with pytest.raises(ValidationError, match="finite number"):
        Plan.model_validate({"summary": "x", "operations": [update]})
    with pytest.raises(ValueError, match="finite number"):
        plan_from_answer(json.dumps({"summary": "x", "rationale": "", "operations": [update]}), "openai:fuzz")


# Found by this test (after 2,000 examples): an ISO date-time past year 9999 in UTC overflowed.
FAR_FUTURE = Plan(
    summary="far future",
    operations=[
        SelectOperation(
            table="customers",
            filters=[Filter(column="created_at", op=FilterOperator.EQ, value="9999-12-31T23:00-05:00")],
        )
    ],
)

# Found by this test in a fresh-clone CI run: an ordering filter against a boolean raised
# SQLAlchemy's ArgumentError (it makes bare True/False a literal) instead of compiling.
BOOLEAN_ORDERING = Plan(
    summary="boolean ordering",
    operations=[
        SelectOperation(
            table="feature_flags", filters=[Filter(column="enabled", op=FilterOperator.LT, value=False)], limit=1
        )
    ],
)


@FUZZ
@given(plans)
@example(FAR_FUTURE)
@example(BOOLEAN_ORDERING)
def test_parsed_plans_cross_the_boundary_and_compile_to_bound_statements_or_are_refused(
    target: tuple[Engine, MetaData], plan: Plan
) -> None:
    """What the planner returns is what is reviewed and run; each operation compiles safely or is refused."""
    engine, metadata = target
    assert_crosses_the_boundary_unchanged(plan)
    before = database_state(engine)
    for operation in plan.operations:
        try:
            statement = compile_operation(metadata, operation)
            count_query(metadata, operation)
            preview_query(metadata, operation)
        except SqlCompileError as refusal:
            assert str(refusal)
            continue
        table = operation.table
        assert table in metadata.tables and table.lower() != LEDGER_TABLE
        if isinstance(statement, Insert | Update | Delete):
            assert statement.table.name == table  # type: ignore[union-attr]
        else:
            assert isinstance(statement, Select)
            assert {str(getattr(item, "name", "")) for item in statement.get_final_froms()} == {table}
        for dialect in (sqlite.dialect(), postgresql.dialect()):
            sql = str(statement.compile(dialect=dialect))
            assert "'" not in sql, sql  # no literal values: every value is a bound parameter
            assert ";" not in sql, sql
        with engine.connect() as connection:
            transaction = connection.begin()
            try:
                connection.execute(statement)
            except (sa_exc.DBAPIError, OverflowError):
                pass  # the target refuses bad data (a constraint, an integer too large); the activity says so
            finally:
                transaction.rollback()
    assert database_state(engine) == before


def _forbidden_by_policy(operation: Any, policy: Policy, columns: dict[str, frozenset[str]]) -> str | None:
    """Why the shipped policy must block `operation`, if it must."""
    table = operation.table
    if table.lower() == LEDGER_TABLE:
        return "ledger"
    if table not in columns or table not in policy.tables:
        return "unknown or unlisted table"
    rules = policy.tables[table]
    if operation.kind not in rules.operations:
        return "operation kind"
    if isinstance(operation, UpdateOperation | DeleteOperation) and not operation.filters:
        return "write without a filter"
    if isinstance(operation, InsertOperation | UpdateOperation) and any(
        item.column in rules.protected_columns for item in operation.values
    ):
        return "protected column"
    named = [
        *(getattr(operation, "columns", []) or []),
        *(item.column for item in getattr(operation, "values", [])),
        *(item.column for item in getattr(operation, "filters", [])),
    ]
    if any(name not in columns[table] for name in named):
        return "unknown column"
    return None


@FUZZ
@given(plans)
def test_safety_rules_block_whatever_the_policy_forbids(
    target: tuple[Engine, MetaData], policy: Policy, plan: Plan
) -> None:
    _, metadata = target
    shape = target_shape(metadata)
    risk = overall_risk(static_findings(plan, policy, shape))
    columns = {name: table.columns for name, table in shape.items()}
    reasons = [_forbidden_by_policy(operation, policy, columns) for operation in plan.operations]
    if any(reasons) or len(plan.operations) > policy.limits.max_operations:
        assert risk is Risk.BLOCKED, reasons
    for operation in plan.operations:
        rules = policy.tables.get(operation.table)
        sensitive = rules.sensitive_columns if rules else []
        if isinstance(operation, InsertOperation | UpdateOperation) and any(
            item.column in sensitive for item in operation.values
        ):
            assert risk.rank >= Risk.HIGH.rank
        if isinstance(operation, DeleteOperation):
            assert risk.rank >= Risk.HIGH.rank
        if risk is Risk.LOW:
            assert isinstance(operation, SelectOperation) or operation.table in policy.tables


# ---------------------------------------------------------------- tickets and decisions

any_text = st.text(alphabet=st.characters(exclude_categories=()), max_size=MAX_TICKET_TEXT + 50)


@FUZZ
@given(any_text)
def test_ticket_text_is_clean_or_refused(value: str) -> None:
    try:
        request = TicketRequest(text=value, requester="dave")
    except ValidationError as error:
        assert "text" in str(error)
        return
    assert 1 <= len(request.text) <= MAX_TICKET_TEXT
    assert request.text == request.text.strip()
    for char in request.text:
        assert char in "\n\t" or unicodedata.category(char) not in FORBIDDEN_CATEGORIES, hex(ord(char))
    # The workflow decodes its input again: a ticket that was accepted must decode to itself.
    assert TicketRequest.model_validate_json(request.model_dump_json()) == request


@FUZZ
@given(
    json_values
    | st.fixed_dictionaries(
        {"text": any_text, "requester": st.text(max_size=5)},
        optional={"source": st.text(max_size=8), "channel": json_values},
    )
)
def test_ticket_request_parsing_fails_only_with_validation_errors(data: Any) -> None:
    with contextlib.suppress(ValidationError):
        TicketRequest.model_validate(data)


@FUZZ
@given(st.binary(max_size=300))
def test_ticket_request_from_raw_bytes_fails_only_with_validation_errors(raw: bytes) -> None:
    with contextlib.suppress(ValidationError):
        TicketRequest.model_validate_json(raw)


decision_like = st.fixed_dictionaries(
    {
        "approve": st.booleans() | json_scalars,
        "decider": st.text(max_size=10),
        "source": st.sampled_from(["slack", "dashboard", "cli", "api"]) | st.text(max_size=6),
        "request_id": st.text(max_size=10) | json_scalars,
        "plan_hash": st.text(max_size=16),
    },
    optional={"comment": st.text(max_size=50), "replan": st.booleans() | json_scalars, "extra": json_values},
)


@FUZZ
@given(json_values | decision_like)
def test_decisions_parse_or_fail_with_validation_errors_and_round_trip(data: Any) -> None:
    try:
        decision = Decision.model_validate(data)
    except ValidationError:
        return
    assert Decision.model_validate_json(decision.model_dump_json()) == decision


# ---------------------------------------------------------------- Slack payloads

button_values = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda w, r, p: json.dumps({"workflow_id": w, "request_id": r, "plan_hash": p}),
        st.text(max_size=10),
        st.text(max_size=10),
        st.text(max_size=10),
    ),
    json_values.map(json.dumps),
)
slack_ids = st.text(max_size=8) | json_scalars
click_like = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["block_actions", "view_submission"]) | st.text(max_size=5),
        "user": st.fixed_dictionaries({"id": slack_ids}) | json_values,
        "trigger_id": slack_ids,
        "actions": st.lists(
            st.fixed_dictionaries({"action_id": st.text(max_size=10), "value": button_values}) | json_values, max_size=2
        ),
    },
    optional={"channel": st.fixed_dictionaries({"id": slack_ids}), "container": json_values, "team": json_values},
)
submission_like = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["view_submission"]) | st.text(max_size=5),
        "user": st.fixed_dictionaries({"id": slack_ids}),
        "view": st.fixed_dictionaries(
            {"callback_id": st.text(max_size=10), "private_metadata": button_values},
            optional={"state": json_values},
        )
        | json_values,
    }
)
command_like = st.fixed_dictionaries(
    {
        "command": st.sampled_from(["/agent-ticket"]) | st.text(max_size=5),
        "text": any_text,
        "team_id": slack_ids,
        "channel_id": slack_ids,
        "user_id": slack_ids,
        "trigger_id": slack_ids,
        "response_url": st.sampled_from(["https://hooks.slack.com/x"]) | st.text(max_size=10),
    }
)


@FUZZ
@given(any_text)
def test_slash_command_text_is_always_answered(raw: str) -> None:
    """Any text gets an answer; text filed as a ticket is always a valid ticket text."""
    parsed = parse_command_text(raw)
    if parsed.kind is CommandKind.FILE:
        assert TicketRequest(text=parsed.argument, requester="U1").text == parsed.argument
    if parsed.kind is CommandKind.INVALID:
        assert parsed.argument


@FUZZ
@given(json_values | click_like | submission_like | command_like)
def test_slack_payload_parsers_refuse_misfits_with_value_errors(body: Any) -> None:
    """The listeners' matchers treat ValueError as "not ours" (HTTP 400); anything else would be a 500."""
    for parse in (SlashCommand.model_validate, ButtonClick.parse, RejectSubmission.parse):
        with contextlib.suppress(ValueError):
            parse(body)


@FUZZ
@given(button_values)
def test_button_values_decode_or_fail_with_validation_errors(raw: str) -> None:
    with contextlib.suppress(ValidationError):
        ButtonValue.decode(raw)
