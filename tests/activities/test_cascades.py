"""A write that makes the database change another table's rows needs people to approve it (red team 38).

Renaming one team's code (one row, within the auto-approve limit, no approval) rewrote 50 members'
rows through `ON UPDATE CASCADE`: rows the dry run neither counted nor showed, outside every row
limit, which undo does not put back.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from activities.safety import SafetyActivities
from activities.safety_rules import RULE_CASCADE
from core.bootstrap import Databases
from core.models import (
    Assignment,
    DeleteOperation,
    Filter,
    Plan,
    Risk,
    SafetyReport,
    UpdateOperation,
    ValidatePlanInput,
)
from core.policy import PolicyCache, TablePolicy, store_policy
from tests.activities.conftest import activity_env
from tests.support import dev_authority

TEAM_ONE = [Filter(column="id", op="eq", value=1)]
RENAME = UpdateOperation(table="teams", values=[Assignment(column="code", value="green")], filters=TEAM_ONE)
NOTE = UpdateOperation(table="teams", values=[Assignment(column="note", value="n")], filters=TEAM_ONE)
REMOVE = DeleteOperation(table="teams", filters=TEAM_ONE)


async def _teams(dbs: Databases, actions: str) -> None:
    """`teams` (listed for every write) with 50 `members` in team `red`, their key to it with `actions`."""
    async with dbs.target_engine.begin() as connection:
        await connection.execute(text("CREATE TABLE teams (id INTEGER PRIMARY KEY, code TEXT UNIQUE, note TEXT)"))
        await connection.execute(
            text(f"CREATE TABLE members (id INTEGER PRIMARY KEY, team_code TEXT REFERENCES teams (code) {actions})")
        )
        await connection.execute(text("INSERT INTO teams VALUES (1, 'red', 'r'), (2, 'blue', 'b')"))
        await connection.execute(text("INSERT INTO members VALUES (:id, 'red')"), [{"id": i} for i in range(1, 51)])
    await _list_teams(dbs)


async def _list_teams(dbs: Databases) -> None:
    policy = await PolicyCache(dbs.app_sessions).current()
    policy.tables["teams"] = TablePolicy(operations=["select", "update", "delete"], max_rows=10, auto_approve_rows=5)
    await store_policy(dbs.app_sessions, policy)


async def _validated(dbs: Databases, operation: Any) -> SafetyReport:
    activities = SafetyActivities(dbs.app_sessions, dbs.target_engine, dev_authority())
    plan = Plan(summary="teams", operations=[operation])
    report: SafetyReport = await activity_env("validate").run(
        activities.validate_plan, ValidatePlanInput(ticket_id="t1", plan=plan)
    )
    return report


def _cascade_findings(report: SafetyReport) -> list[str]:
    return [finding.message for finding in report.findings if finding.rule == RULE_CASCADE]


async def test_an_update_that_cascades_to_another_tables_rows_needs_approval(dbs: Databases) -> None:
    await _teams(dbs, "ON UPDATE CASCADE")
    report = await _validated(dbs, RENAME)
    assert report.risk is Risk.HIGH and report.required_approvals >= 1
    [message] = _cascade_findings(report)
    assert "members (ON UPDATE CASCADE)" in message and "undo does not put them back" in message


async def test_an_update_of_columns_no_key_refers_to_is_judged_as_before(dbs: Databases) -> None:
    await _teams(dbs, "ON UPDATE CASCADE ON DELETE CASCADE")
    report = await _validated(dbs, NOTE)
    assert _cascade_findings(report) == []
    assert report.required_approvals == 0  # one row, within the auto-approve limit


async def test_a_delete_that_cascades_needs_approval(dbs: Databases) -> None:
    await _teams(dbs, "ON DELETE SET NULL")
    report = await _validated(dbs, REMOVE)
    [message] = _cascade_findings(report)
    assert "members (ON DELETE SET NULL)" in message
    assert report.required_approvals >= 1


async def test_keys_that_refuse_instead_of_cascading_are_left_to_the_database(dbs: Databases) -> None:
    await _teams(dbs, "")
    assert _cascade_findings(await _validated(dbs, RENAME)) == []


# ---------------------------------------------------------------- red team 39: keys the rule did not see


async def test_a_cascading_key_added_after_the_schema_was_read_is_seen(pg_databases: Databases) -> None:
    await _teams(pg_databases, "")
    assert _cascade_findings(await _validated(pg_databases, RENAME)) == []  # restricted: the DB refuses it
    await _ddl(
        pg_databases,
        "ALTER TABLE members DROP CONSTRAINT members_team_code_fkey",
        "ALTER TABLE members ADD CONSTRAINT members_team_code_fkey FOREIGN KEY (team_code) "
        "REFERENCES teams (code) ON UPDATE CASCADE",
    )
    assert "members (ON UPDATE CASCADE)" in " ".join(_cascade_findings(await _validated(pg_databases, RENAME)))


async def test_a_cascading_key_from_another_schema_is_seen(pg_databases: Databases) -> None:
    await _teams(pg_databases, "")
    await _ddl(
        pg_databases,
        "CREATE SCHEMA other",
        "CREATE TABLE other.members (id INTEGER PRIMARY KEY, team_code TEXT REFERENCES teams (code) ON UPDATE CASCADE)",
    )
    assert "other.members (ON UPDATE CASCADE)" in " ".join(_cascade_findings(await _validated(pg_databases, RENAME)))


async def test_sqlite_keys_naming_the_table_in_another_case_or_twice_are_seen(databases: Databases) -> None:
    await _teams(databases, "")
    await _ddl(
        databases,
        "CREATE TABLE badges (id INTEGER PRIMARY KEY, team_code TEXT REFERENCES Teams (code) ON UPDATE CASCADE)",
        "CREATE TABLE seats (id INTEGER PRIMARY KEY, team_code TEXT REFERENCES teams (code) ON UPDATE RESTRICT, "
        "FOREIGN KEY (team_code) REFERENCES teams (code) ON UPDATE SET NULL)",
    )
    found = " ".join(_cascade_findings(await _validated(databases, RENAME)))
    assert "badges (ON UPDATE CASCADE)" in found and "seats (ON UPDATE SET NULL)" in found


async def test_a_key_on_a_generated_column_counts_every_update_of_the_table(dbs: Databases) -> None:
    stored = "GENERATED ALWAYS AS (lower(code)) STORED"
    await _ddl(
        dbs,
        f"CREATE TABLE teams (id INTEGER PRIMARY KEY, code TEXT, note TEXT, code_key TEXT {stored} UNIQUE)",
        "CREATE TABLE members (id INTEGER PRIMARY KEY, team_key TEXT REFERENCES teams (code_key) ON UPDATE CASCADE)",
        "INSERT INTO teams (id, code, note) VALUES (1, 'red', 'r')",
    )
    await _list_teams(dbs)
    assert "members (ON UPDATE CASCADE)" in " ".join(_cascade_findings(await _validated(dbs, RENAME)))


async def _ddl(dbs: Databases, *statements: str) -> None:
    async with dbs.target_engine.begin() as connection:
        for statement in statements:
            await connection.execute(text(statement))
