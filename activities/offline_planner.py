"""The offline planner: a few documented intents over the demo schema, no LLM needed.

Used when no OPENAI_API_KEY is configured, so `agent-ticket dev` works out of the
box. The whole ticket text must match one of a fixed list of sentence shapes
(see docs/offline-planner.md); every name in it (customer, plan, user, invoice)
is resolved against the rows the context activity found for the ticket
(`TicketContext.named_rows`). It never guesses: text it does not understand, or
a name it cannot find in the context, gives an empty plan that says why.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from core.demo import slugify
from core.models import (
    Assignment,
    DeleteOperation,
    Filter,
    FilterOperator,
    InsertOperation,
    Operation,
    Plan,
    PlanTicketInput,
    Scalar,
    SelectOperation,
    TicketContext,
    UpdateOperation,
)
from core.names import short_id_from, ticket_label

logger = logging.getLogger(__name__)

PLANNER_NAME = "offline"
Row = dict[str, Scalar]

_CUSTOMER = r"(?P<customer>[\w&'. -]+?)"
_EMAIL = r"(?P<email>[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,})"
_FLAG = r"(?P<flag>[a-z][a-z0-9_]{0,59})"
INVOICE_COLUMNS = ["id", "amount_cents", "status", "issued_at", "due_at"]
INVOICE_STATUS_WORDS: dict[str, list[Scalar]] = {
    "open": ["open"],
    "overdue": ["overdue"],
    "paid": ["paid"],
    "unpaid": ["open", "overdue"],
}


class Unresolved(Exception):
    """A name in the ticket is not among the context's rows, or the change is already in place."""


class ContextRows:
    """The context's named rows, de-duplicated per table, with lookups by the names people use."""

    def __init__(self, context: TicketContext) -> None:
        self._tables: dict[str, dict[object, Row]] = {}
        for named in context.named_rows:
            table = self._tables.setdefault(named.table, {})
            for row in named.rows:
                table[row.get("id", len(table))] = row

    def rows(self, table: str) -> list[Row]:
        return list(self._tables.get(table, {}).values())

    def customer(self, phrase: str) -> Row:
        wanted = _clean_name(phrase)
        found = [
            row
            for row in self.rows("customers")
            if wanted.casefold() in (str(row.get("slug", "")).casefold(), str(row.get("name", "")).casefold())
            or slugify(wanted) == row.get("slug")
        ]
        if not found:
            raise Unresolved(f"customer {_quote(wanted)} is not among the rows found for this ticket")
        if len(found) > 1:
            names = ", ".join(str(row.get("slug")) for row in found[:5])
            raise Unresolved(f"customer {_quote(wanted)} is ambiguous ({names})")
        return found[0]

    def plan(self, name: str) -> Row:
        found = [row for row in self.rows("plans") if str(row.get("name", "")).casefold() == name.casefold()]
        if not found:
            raise Unresolved(f"plan {_quote(name)} is not among the rows found for this ticket")
        return found[0]

    def user(self, email: str) -> Row | None:
        return next((r for r in self.rows("users") if str(r.get("email", "")).casefold() == email.casefold()), None)

    def invoice(self, invoice_id: int) -> Row | None:
        return next((row for row in self.rows("invoices") if row.get("id") == invoice_id), None)

    def subscription_of(self, customer_id: Scalar) -> Row | None:
        return next((row for row in self.rows("subscriptions") if row.get("customer_id") == customer_id), None)

    def flag_of(self, customer_id: Scalar, name: str) -> Row | None:
        rows = self.rows("feature_flags")
        return next((r for r in rows if r.get("customer_id") == customer_id and r.get("name") == name), None)


@dataclass(frozen=True)
class Intent:
    """One sentence shape the offline planner understands, and how it becomes a plan."""

    shape: str
    example: str
    pattern: re.Pattern[str]
    build: Callable[[re.Match[str], ContextRows], Plan]


# ---------------------------------------------------------------- intent builders


def _change_plan(match: re.Match[str], rows: ContextRows) -> Plan:
    customer = rows.customer(match["customer"])
    plan = rows.plan(match["plan"])
    subscription = rows.subscription_of(customer["id"])
    if subscription is not None and subscription.get("plan_id") == plan["id"]:
        raise Unresolved(f"{customer['slug']} is already on the {plan['name']} plan")
    where = [_eq("id", subscription["id"])] if subscription else [_eq("customer_id", customer["id"])]
    return _plan(
        f"Move {customer['slug']} to the {plan['name']} plan.",
        f"Sets subscriptions.plan_id to {plan['id']} ({plan['name']}) for customer {customer['id']} "
        f"({customer['slug']}).",
        UpdateOperation(table="subscriptions", values=[_set("plan_id", plan["id"])], filters=where),
    )


def _toggle_flag(match: re.Match[str], rows: ContextRows) -> Plan:
    customer = rows.customer(match["customer"])
    flag, enable = match["flag"].lower(), match["verb"].lower() in ("enable", "turn on")
    row = rows.flag_of(customer["id"], flag)
    if row is not None and row.get("enabled") is not None and bool(row["enabled"]) == enable:
        raise Unresolved(f"flag {flag} is already {'enabled' if enable else 'disabled'} for {customer['slug']}")
    verb = "Enable" if enable else "Disable"
    return _plan(
        f"{verb} the {flag} flag for {customer['slug']}.",
        f"Sets feature_flags.enabled to {str(enable).lower()} for flag {flag} of customer {customer['id']}.",
        UpdateOperation(
            table="feature_flags", values=[_set("enabled", enable)], filters=_flag_filters(row, customer, flag)
        ),
    )


def _delete_flag(match: re.Match[str], rows: ContextRows) -> Plan:
    customer = rows.customer(match["customer"])
    flag = match["flag"].lower()
    row = rows.flag_of(customer["id"], flag)
    return _plan(
        f"Delete the {flag} flag of {customer['slug']}.",
        f"Deletes the feature_flags row {flag} of customer {customer['id']} ({customer['slug']}).",
        DeleteOperation(table="feature_flags", filters=_flag_filters(row, customer, flag)),
    )


def _add_user(match: re.Match[str], rows: ContextRows) -> Plan:
    customer = rows.customer(match["customer"])
    email, role = match["email"].lower(), match["role"].lower()
    if rows.user(email) is not None:
        raise Unresolved(f"a user with email {_quote(email)} already exists")
    name = " ".join(part.capitalize() for part in re.split(r"[._+-]+", email.split("@", 1)[0]) if part) or email
    return _plan(
        f"Add {email} to {customer['slug']} as {role}.",
        f"Inserts a users row for customer {customer['id']} ({customer['slug']}) with role {role}.",
        InsertOperation(
            table="users",
            values=[
                _set("customer_id", customer["id"]),
                _set("email", email),
                _set("name", name),
                _set("role", role),
                _set("active", True),
            ],
        ),
    )


def _list_invoices(match: re.Match[str], rows: ContextRows) -> Plan:
    customer = rows.customer(match["customer"])
    status = (match["status"] or "").lower()
    filters = [_eq("customer_id", customer["id"])]
    if status:
        statuses = INVOICE_STATUS_WORDS[status]
        filters.append(
            _eq("status", statuses[0])
            if len(statuses) == 1
            else Filter(column="status", op=FilterOperator.IN, value=statuses)
        )
    label = f"{status} invoices" if status else "invoices"
    return _plan(
        f"Show the {label} of {customer['slug']}.",
        f"Reads the {label} of customer {customer['id']} ({customer['slug']}); changes nothing.",
        SelectOperation(table="invoices", columns=list(INVOICE_COLUMNS), filters=filters, limit=50),
    )


def _mark_invoice_paid(match: re.Match[str], rows: ContextRows) -> Plan:
    invoice_id = int(match["invoice"])
    invoice = rows.invoice(invoice_id)
    if invoice is None:
        raise Unresolved(f"invoice {invoice_id} is not among the rows found for this ticket")
    if invoice.get("status") == "paid":
        raise Unresolved(f"invoice {invoice_id} is already paid")
    return _plan(
        f"Mark invoice {invoice_id} as paid.",
        f"Sets invoices.status from {invoice.get('status')} to paid for invoice {invoice_id} "
        f"(customer {invoice.get('customer_id')}).",
        UpdateOperation(table="invoices", values=[_set("status", "paid")], filters=[_eq("id", invoice_id)]),
    )


def _make_admin(match: re.Match[str], rows: ContextRows) -> Plan:
    email = match["email"].lower()
    user = rows.user(email)
    if user is None:
        raise Unresolved(f"user {_quote(email)} is not among the rows found for this ticket")
    if user.get("role") == "admin":
        raise Unresolved(f"{email} is already an admin")
    return _plan(
        f"Make {email} an admin.",
        f"Sets users.role from {user.get('role')} to admin for user {user['id']} (customer {user.get('customer_id')}).",
        UpdateOperation(table="users", values=[_set("role", "admin")], filters=[_eq("id", user["id"])]),
    )


def _intent(shape: str, example: str, pattern: str, build: Callable[[re.Match[str], ContextRows], Plan]) -> Intent:
    return Intent(shape, example, re.compile(pattern, re.IGNORECASE), build)


INTENTS: tuple[Intent, ...] = (
    _intent(
        "upgrade/downgrade/move <customer> to the <plan> plan",
        "upgrade acme-corp to the pro plan",
        rf"(?P<verb>upgrade|downgrade|move|switch) {_CUSTOMER} (?:to|onto) (?:the )?(?P<plan>[a-z][\w-]*)(?: plan)?",
        _change_plan,
    ),
    _intent(
        "enable/disable <flag> for <customer>",
        "enable sso for acme-corp",
        rf"(?P<verb>enable|disable|turn on|turn off) (?:the )?{_FLAG}(?: flag| feature)? for {_CUSTOMER}",
        _toggle_flag,
    ),
    _intent(
        "add user <email> to <customer> as <role>",
        "add user dana@acme-corp.example to acme-corp as member",
        rf"add (?:user )?{_EMAIL} to {_CUSTOMER} as (?:an? )?(?P<role>admin|member|viewer)",
        _add_user,
    ),
    _intent(
        "show/list [<status>] invoices for <customer>",
        "show overdue invoices for stark-industries",
        r"(?:show|list)(?: me)?(?: all)?(?: the)?(?: (?P<status>open|overdue|paid|unpaid))?"
        rf" invoices (?:for|of) {_CUSTOMER}",
        _list_invoices,
    ),
    _intent(
        "mark invoice <id> as paid",
        "mark invoice 14 as paid",
        r"mark invoice #?(?P<invoice>\d{1,18}) as paid",
        _mark_invoice_paid,
    ),
    _intent("make <email> an admin", "make carol@acme-corp.example an admin", rf"make {_EMAIL} an? admin", _make_admin),
    _intent(
        "delete/remove the <flag> flag for <customer>",
        "delete the beta_dashboard flag for hooli",
        rf"(?:delete|remove) (?:the )?{_FLAG} (?:feature )?flag (?:for|from) {_CUSTOMER}",
        _delete_flag,
    ),
)


class OfflinePlanner:
    """Deterministic planner for the demo schema; `planner="offline"` on every plan."""

    name = PLANNER_NAME

    async def plan(self, input: PlanTicketInput) -> Plan:
        return plan_offline(input)

    async def close(self) -> None:
        return None


def plan_offline(input: PlanTicketInput) -> Plan:
    label = ticket_label(short_id_from(input.ticket_id))
    text = _normalise(input.request.text)
    rows = ContextRows(input.context)
    for intent in INTENTS:
        match = intent.pattern.fullmatch(text)
        if match is None:
            continue
        try:
            plan = intent.build(match, rows)
        except Unresolved as reason:
            logger.info("%s: offline intent %r matched but %s", label, intent.shape, reason)
            return _plan(
                f"Offline planner: nothing to do, {reason}.",
                f"The request matched '{intent.shape}', but {reason}. No operation is proposed.",
            )
        logger.info("%s: offline intent %r -> %d operation(s)", label, intent.shape, len(plan.operations))
        return plan
    logger.info("%s: offline planner did not understand the request", label)
    return not_understood()


def not_understood() -> Plan:
    shapes = "; ".join(intent.shape for intent in INTENTS)
    examples = "\n".join(f"- {intent.example}" for intent in INTENTS)
    return _plan(
        f"The offline planner did not understand this request and proposes nothing. It understands: {shapes}.",
        "The offline planner (used because no OPENAI_API_KEY is configured) only knows a few sentence shapes "
        f"over the demo schema, for example:\n{examples}\nSet OPENAI_API_KEY to plan free-form requests with an LLM.",
    )


# ---------------------------------------------------------------- small helpers


def _plan(summary: str, rationale: str, *operations: Operation) -> Plan:
    return Plan(summary=summary[:500], rationale=rationale[:2000], operations=list(operations), planner=PLANNER_NAME)


def _eq(column: str, value: Scalar) -> Filter:
    return Filter(column=column, op=FilterOperator.EQ, value=value)


def _set(column: str, value: Scalar) -> Assignment:
    return Assignment(column=column, value=value)


def _flag_filters(row: Row | None, customer: Row, flag: str) -> list[Filter]:
    """By primary key when the context has the flag's row, else by its (customer, name) pair."""
    if row is not None:
        return [_eq("id", row["id"])]
    return [_eq("customer_id", customer["id"]), _eq("name", flag)]


def _normalise(text: str) -> str:
    return " ".join(text.split()).rstrip(".!").strip()


def _clean_name(phrase: str) -> str:
    name = phrase.strip().strip("'\"`")
    return name[4:] if name.lower().startswith("the ") else name


def _quote(value: str, limit: int = 60) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")
