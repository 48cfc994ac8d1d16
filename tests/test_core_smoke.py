"""The core contract: settings, models and databases on their embedded defaults."""

import pytest
from pydantic import ValidationError

from core.bootstrap import Databases
from core.models import Plan, Risk, TicketRequest, UpdateOperation, plan_hash
from core.policy import read_policy
from core.settings import ConfigError, load_settings


def test_bad_setting_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="BOT_PORT"):
        load_settings(bot_port=70000, _env_file=None)


def test_ticket_text_refuses_invisible_characters() -> None:
    with pytest.raises(ValidationError, match="invisible"):
        TicketRequest(text="upgrade acme\u200b to pro", requester="u")


def test_plan_hash_ignores_prose_but_not_operations() -> None:
    op = UpdateOperation(table="subscriptions", values=[{"column": "plan_id", "value": 3}], filters=[])
    a = Plan(summary="one", operations=[op])
    b = Plan(summary="two", operations=[op])
    c = Plan(summary="one", operations=[op.model_copy(update={"table": "users"})])
    assert plan_hash(a) == plan_hash(b) != plan_hash(c)


async def test_databases_seed_policy_and_demo(databases: Databases) -> None:
    policy = await read_policy(databases.app_sessions)
    assert "customers" in policy.tables
    assert policy.approvals_for(Risk.HIGH) == 2
    assert policy.approvals_for(Risk.LOW) == 0
