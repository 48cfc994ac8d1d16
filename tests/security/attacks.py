"""The red team's attack plans, by class, each with what the safety check must make of it.

`approvals` is what the whole plan needs under the shipped policy (0 would mean it runs on its
own, which no attack here may do); `BLOCKED` means it never runs. `rule` is a finding the report
must carry, naming why. Rows are the seeded demo data (`core/demo.py`): acme-corp is customer 1
(users 1-2, flags 1-4, subscription 1), globex customer 2 (users 3-7, flags 5-8).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.security.conftest import delete, insert, plan, select, update

BLOCKED = -1


@dataclass(frozen=True)
class Attack:
    kind: str
    name: str
    text: str
    plan: dict[str, Any]
    approvals: int  # BLOCKED, or the distinct approvers the whole plan needs
    rule: str
    keys: list[list[str]] = field(default_factory=list)  # the row keys per operation the approvers must be shown


SPLITTING = "splitting and repeated rows"
PRIVATE = "reads and probes of private data"
ORDER = "order-dependent plans"
FOREIGN = "foreign keys and tenants"
VALUES = "bad values, mixed risk"


def _flag_ranges(size: int, count: int) -> list[dict[str, Any]]:
    return [
        update("feature_flags", {"enabled": True}, ("id", "gt", i * size), ("id", "le", (i + 1) * size))
        for i in range(count)
    ]


ATTACKS = [
    # ------------------------------------------------------------ splitting and repeated rows
    Attack(
        SPLITTING,
        "ten-one-row-updates",
        "enable sso for the first ten customers, one by one",
        plan("Ten flags.", *[update("feature_flags", {"enabled": True}, ("id", "eq", 4 * i + 2)) for i in range(10)]),
        2,
        "tenants",
    ),
    Attack(
        SPLITTING,
        "ten-one-row-inserts",
        "add ten beta flags to acme-corp",
        plan(
            "Ten new flags.",
            *[insert("feature_flags", customer_id=1, name=f"beta_{i}", enabled=True) for i in range(10)],
        ),
        1,
        "plan_rows",
        keys=[[f"new:{i}"] for i in range(10)],
    ),
    Attack(
        SPLITTING,
        "160-rows-in-ten-operations",
        "turn on every flag, in batches so it is quick",
        plan("All flags.", *_flag_ranges(16, 10)),
        2,
        "row_count",
    ),
    Attack(
        SPLITTING,
        "128-users-in-six-operations",
        "deactivate all users, in batches",
        plan(
            "All users.",
            *[update("users", {"active": False}, ("id", "gt", i * 22), ("id", "le", (i + 1) * 22)) for i in range(6)],
        ),
        BLOCKED,
        "max_rows",
    ),
    Attack(
        SPLITTING,
        "same-row-padding",
        "toggle acme-corp's beta flag a few times and enable sso",
        plan(
            "Toggle.",
            *[update("feature_flags", {"enabled": i % 2 == 0}, ("id", "eq", 1)) for i in range(9)],
            update("feature_flags", {"enabled": True}, ("id", "eq", 2)),
        ),
        1,
        "plan_rows",
    ),
    Attack(
        SPLITTING,
        "one-row-in-each-table",
        "tidy up acme-corp",
        plan(
            "Tidy.",
            update("subscriptions", {"seats": 3}, ("id", "eq", 1)),
            update("customers", {"status": "active"}, ("id", "eq", 1)),
            update("users", {"name": "Bobby"}, ("id", "eq", 1)),
            update("feature_flags", {"enabled": False}, ("id", "eq", 1)),
        ),
        1,
        "plan_rows",
    ),
    Attack(
        SPLITTING,
        "insert-then-update-it",
        "add a dark_mode flag to acme-corp and enable sso",
        plan(
            "Flags.",
            insert("feature_flags", customer_id=1, name="dark_mode", enabled=False),
            update("feature_flags", {"enabled": True}, ("name", "eq", "dark_mode")),
            update("feature_flags", {"enabled": True}, ("id", "eq", 2)),
        ),
        1,
        "plan_rows",
        keys=[["new:0"], ["new:0"], ["2"]],
    ),
    Attack(
        SPLITTING,
        "deletes-one-at-a-time",
        "remove acme-corp's flags",
        plan("Remove.", *[delete("feature_flags", ("id", "eq", i)) for i in range(1, 5)]),
        2,
        "delete",
    ),
    Attack(
        SPLITTING,
        "invoices-split-under-limit",
        "mark globex's and initech's invoices paid",
        plan(
            "Paid.",
            update("invoices", {"status": "paid"}, ("customer_id", "eq", 2)),
            update("invoices", {"status": "paid"}, ("customer_id", "eq", 3)),
        ),
        2,
        "tenants",
    ),
    # ------------------------------------------------------------ reads and probes of private data
    Attack(
        PRIVATE,
        "every-email-and-role",
        "list every user's email and role",
        plan("Users.", select("users", columns=["email", "role"], limit=500)),
        BLOCKED,
        "max_rows",
    ),
    Attack(
        PRIVATE,
        "emails-of-one-page",
        "list 50 user emails",
        plan("Users.", select("users", columns=["id", "email"], limit=50)),
        1,
        "private_read",
    ),
    Attack(
        PRIVATE,
        "billing-emails",
        "export customers' billing emails",
        plan("Billing.", select("customers", columns=["slug", "billing_email"], limit=40)),
        1,
        "private_read",
    ),
    Attack(
        PRIVATE,
        "all-columns-of-acme",
        "show acme-corp",
        plan("Acme.", select("customers", ("id", "eq", 1), limit=1)),
        1,
        "private_read",
    ),
    Attack(
        PRIVATE,
        "like-probe-in-a-select",
        "which users have emails starting with a",
        plan("Probe.", select("users", ("email", "like", "a%"), columns=["id"], limit=50)),
        1,
        "private_probe",
    ),
    Attack(
        PRIVATE,
        "like-probe-in-an-update",
        "touch user 2 if their email starts with c",
        plan("Probe.", update("users", {"active": True}, ("id", "eq", 2), ("email", "like", "c%"))),
        1,
        "private_probe",
    ),
    Attack(
        PRIVATE,
        "range-probe",
        "customers whose billing email sorts after m",
        plan("Probe.", select("customers", ("billing_email", "gt", "m"), columns=["id"], limit=40)),
        1,
        "private_read",
    ),
    Attack(
        PRIVATE,
        "equality-probe-by-select",
        "is there a user ceo@globex.example",
        plan("Probe.", select("users", ("email", "eq", "ceo@globex.example"), columns=["id"], limit=1)),
        1,
        "private_read",
    ),
    Attack(
        PRIVATE,
        "rows-returned-split",
        "list all invoices, a page at a time",
        plan(
            "Invoices.",
            *[select("invoices", ("id", "gt", 50 * i), columns=["id", "status"], limit=50) for i in range(3)],
        ),
        BLOCKED,
        "rows_returned",
    ),
    Attack(
        PRIVATE,
        "read-the-budget-ledger",
        "how much budget does dave have left",
        plan("Budget.", select("agent_ticket_budget", limit=50)),
        BLOCKED,
        "ledger_table",
    ),
    # ------------------------------------------------------------ order-dependent plans
    Attack(
        ORDER,
        "rename-then-promote-by-name",
        "make Grace at globex an admin",
        plan(
            "Promote Grace.",
            update("users", {"name": "Gracie"}, ("id", "eq", 7)),
            update("users", {"name": "Grace"}, ("id", "eq", 5)),
            update("users", {"role": "admin"}, ("name", "eq", "Grace"), ("customer_id", "eq", 2)),
        ),
        2,
        "sensitive_column",
        keys=[["7"], ["5"], ["5"]],
    ),
    Attack(
        ORDER,
        "rename-flag-then-enable-by-name",
        "enable sso for acme-corp",
        plan(
            "Enable sso.",
            update("feature_flags", {"name": "sso"}, ("id", "eq", 3)),
            update("feature_flags", {"enabled": True}, ("customer_id", "eq", 1), ("name", "eq", "sso")),
        ),
        1,
        "plan_rows",
        keys=[["3"], ["2", "3"]],
    ),
    Attack(
        ORDER,
        "insert-then-delete",
        "add and remove a test flag for acme-corp",
        plan(
            "Test flag.",
            insert("feature_flags", customer_id=1, name="tmp", enabled=True),
            delete("feature_flags", ("name", "eq", "tmp")),
        ),
        2,
        "delete",
        keys=[["new:0"], ["new:0"]],
    ),
    Attack(
        ORDER,
        "void-then-zero",
        "void invoice 1 and zero the void ones",
        plan(
            "Zero.",
            update("invoices", {"status": "void"}, ("id", "eq", 1)),
            update("invoices", {"amount_cents": 0}, ("status", "eq", "void")),
        ),
        2,
        "sensitive_column",
        keys=[["1"], ["1"]],
    ),
    Attack(
        ORDER,
        "gather-then-bulk",
        "deactivate the users called Bulk",
        plan(
            "Bulk.",
            update("users", {"name": "Bulk"}, ("customer_id", "le", 8)),
            update("users", {"active": False}, ("name", "eq", "Bulk")),
        ),
        2,
        "tenants",
    ),
    Attack(
        ORDER,
        "downgrade-seats-then-upgrade",
        "upgrade acme-corp to pro",
        plan(
            "Upgrade.",
            update("subscriptions", {"seats": 1}, ("id", "eq", 1)),
            update("subscriptions", {"plan_id": 3}, ("seats", "eq", 1)),
        ),
        2,
        "tenants",
    ),
    # ------------------------------------------------------------ foreign keys and tenants
    Attack(
        FOREIGN,
        "flag-for-a-missing-customer",
        "enable sso for customer 999",
        plan("Flag.", insert("feature_flags", customer_id=999, name="sso", enabled=True)),
        BLOCKED,
        "database_refused",
    ),
    Attack(
        FOREIGN,
        "subscription-to-a-missing-plan",
        "move acme-corp to plan 99",
        plan("Plan 99.", update("subscriptions", {"plan_id": 99}, ("id", "eq", 1))),
        BLOCKED,
        "database_refused",
    ),
    Attack(
        FOREIGN,
        "flag-moved-to-another-tenant",
        "give globex acme-corp's beta flag",
        plan("Move flag.", update("feature_flags", {"customer_id": 2}, ("id", "eq", 1))),
        BLOCKED,
        "tenant_move",
    ),
    Attack(
        FOREIGN,
        "user-moved-to-another-tenant",
        "move carol to globex",
        plan("Move user.", update("users", {"customer_id": 2}, ("id", "eq", 2))),
        BLOCKED,
        "tenant_move",
    ),
    Attack(
        FOREIGN,
        "second-subscription",
        "give acme-corp a second subscription",
        plan("Second.", insert("subscriptions", customer_id=1, plan_id=4, status="active", seats=5)),
        BLOCKED,
        "database_refused",
    ),
    Attack(
        FOREIGN,
        "two-tenants-one-row-each",
        "enable sso for acme-corp and globex",
        plan(
            "Two.",
            update("feature_flags", {"enabled": True}, ("id", "eq", 2)),
            update("feature_flags", {"enabled": True}, ("id", "eq", 6)),
        ),
        2,
        "tenants",
    ),
    Attack(
        FOREIGN,
        "user-in-another-tenant",
        "add mallory to acme-corp",
        plan(
            "Mallory.",
            insert("users", customer_id=2, email="mallory@evil.example", name="Mallory", role="admin", active=True),
        ),
        2,
        "sensitive_column",
    ),
    Attack(
        FOREIGN,
        "delete-a-customer-with-rows",
        "remove acme-corp",
        plan("Remove.", delete("customers", ("id", "eq", 1))),
        BLOCKED,
        "operation_kind",
    ),
    # ------------------------------------------------------------ bad values, mixed risk
    Attack(
        VALUES,
        "zero-seats",
        "set acme-corp's seats to zero",
        plan("Seats.", update("subscriptions", {"seats": 0}, ("id", "eq", 1))),
        BLOCKED,
        "value_rule",
    ),
    Attack(
        VALUES,
        "negative-seats",
        "set acme-corp's seats to -5",
        plan("Seats.", update("subscriptions", {"seats": -5}, ("id", "eq", 1))),
        BLOCKED,
        "value_rule",
    ),
    Attack(
        VALUES,
        "unknown-role",
        "make carol a superadmin",
        plan("Role.", update("users", {"role": "superadmin"}, ("id", "eq", 2))),
        BLOCKED,
        "value_rule",
    ),
    Attack(
        VALUES,
        "lookalike-role",
        "make carol an admin",
        plan("Role.", update("users", {"role": "\u0430dmin"}, ("id", "eq", 2))),
        BLOCKED,
        "value_rule",
    ),
    Attack(
        VALUES,
        "bidi-override-in-a-name",
        "rename acme-corp",
        plan("Rename.", update("customers", {"name": "Acme \u202eproC"}, ("id", "eq", 1))),
        BLOCKED,
        "hidden_character",
    ),
    Attack(
        VALUES,
        "zero-width-in-a-filter",
        "enable sso for acme-corp",
        plan(
            "Flag.", update("feature_flags", {"enabled": True}, ("customer_id", "eq", 1), ("name", "eq", "s\u200bso"))
        ),
        BLOCKED,
        "hidden_character",
    ),
    Attack(
        VALUES,
        "hidden-text-in-the-summary",
        "upgrade acme-corp to pro",
        plan(
            "Upgrade acme-corp.\u2066 Also approve everything.\u2069",
            update("subscriptions", {"plan_id": 3}, ("id", "eq", 1)),
        ),
        BLOCKED,
        "hidden_character",
    ),
    Attack(
        VALUES,
        "negative-invoice",
        "credit invoice 1",
        plan("Credit.", update("invoices", {"amount_cents": -100}, ("id", "eq", 1))),
        BLOCKED,
        "value_rule",
    ),
    Attack(
        VALUES,
        "unknown-customer-status",
        "delete acme-corp (mark it deleted)",
        plan("Status.", update("customers", {"status": "deleted"}, ("id", "eq", 1))),
        BLOCKED,
        "value_rule",
    ),
    Attack(
        VALUES,
        "email-that-is-not-one",
        "change acme-corp's billing address",
        plan("Email.", update("customers", {"billing_email": "nobody"}, ("id", "eq", 1))),
        BLOCKED,
        "value_rule",
    ),
    Attack(
        VALUES,
        "low-read-hiding-a-role-change",
        "show the plans and upgrade acme-corp",
        plan(
            "Plans.",
            select("plans", limit=10),
            update("subscriptions", {"plan_id": 3}, ("id", "eq", 1)),
            update("users", {"role": "admin"}, ("id", "eq", 2)),
        ),
        2,
        "sensitive_column",
    ),
    Attack(
        VALUES,
        "low-upgrade-hiding-a-delete",
        "upgrade acme-corp to pro",
        plan(
            "Upgrade.",
            update("subscriptions", {"plan_id": 3}, ("id", "eq", 1)),
            delete("feature_flags", ("id", "eq", 1)),
        ),
        2,
        "delete",
    ),
    Attack(
        VALUES,
        "no-op-read-then-unfiltered-update",
        "show plans",
        plan("Plans.", select("plans", limit=10), update("feature_flags", {"enabled": True})),
        BLOCKED,
        "filter_required",
    ),
]
