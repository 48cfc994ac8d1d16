"""The demo target database: a small SaaS business for the agent to work on.

Seeded deterministically (a fixed random seed) so the offline planner, the tests
and the README examples can name real customers such as `acme-corp`.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

demo_metadata = MetaData()

plans = Table(
    "plans",
    demo_metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(40), nullable=False, unique=True),
    Column("price_cents", Integer, nullable=False),
    Column("max_seats", Integer, nullable=False),
)

customers = Table(
    "customers",
    demo_metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(120), nullable=False),
    Column("slug", String(120), nullable=False, unique=True),
    Column("billing_email", String(200), nullable=False),
    Column("status", String(20), nullable=False, default="active"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

users = Table(
    "users",
    demo_metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", ForeignKey("customers.id"), nullable=False),
    Column("email", String(200), nullable=False, unique=True),
    Column("name", String(120), nullable=False),
    Column("role", String(20), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

subscriptions = Table(
    "subscriptions",
    demo_metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", ForeignKey("customers.id"), nullable=False, unique=True),
    Column("plan_id", ForeignKey("plans.id"), nullable=False),
    Column("status", String(20), nullable=False),
    Column("seats", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

invoices = Table(
    "invoices",
    demo_metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", ForeignKey("customers.id"), nullable=False),
    Column("amount_cents", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
)

feature_flags = Table(
    "feature_flags",
    demo_metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", ForeignKey("customers.id"), nullable=False),
    Column("name", String(60), nullable=False),
    Column("enabled", Boolean, nullable=False, default=False),
)

PLAN_ROWS = [
    {"id": 1, "name": "free", "price_cents": 0, "max_seats": 3},
    {"id": 2, "name": "starter", "price_cents": 2900, "max_seats": 10},
    {"id": 3, "name": "pro", "price_cents": 9900, "max_seats": 50},
    {"id": 4, "name": "enterprise", "price_cents": 49900, "max_seats": 1000},
]

CUSTOMER_NAMES = [
    "Acme Corp",
    "Globex",
    "Initech",
    "Umbrella Labs",
    "Hooli",
    "Stark Industries",
    "Wayne Enterprises",
    "Wonka Foods",
    "Cyberdyne",
    "Soylent",
    "Tyrell",
    "Aperture Science",
    "Black Mesa",
    "Vandelay Industries",
    "Dunder Mifflin",
    "Pied Piper",
    "Massive Dynamic",
    "Oscorp",
    "Gringotts",
    "Monsters Inc",
    "Bluth Company",
    "Prestige Worldwide",
    "Sterling Cooper",
    "Los Pollos",
    "Duff Brewing",
    "Nakatomi",
    "Virtucon",
    "Gekko & Co",
    "Kramerica",
    "Paper Street",
    "Bubba Gump",
    "Ollivanders",
    "Krusty Krab",
    "Planet Express",
    "Rekall",
    "Spacely Sprockets",
    "Cogswell Cogs",
    "Weyland Yutani",
    "InGen",
    "Octan",
]
FIRST_NAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
FLAG_NAMES = ["beta_dashboard", "sso", "audit_export", "ai_assist"]


def slugify(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")


def demo_rows() -> dict[str, list[dict[str, object]]]:
    """Every seeded row, table by table (deterministic)."""
    rng = random.Random(42)
    epoch = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
    rows: dict[str, list[dict[str, object]]] = {name: [] for name in demo_metadata.tables}
    rows["plans"] = list(PLAN_ROWS)
    user_id = invoice_id = flag_id = 0
    for customer_id, name in enumerate(CUSTOMER_NAMES, start=1):
        slug = slugify(name)
        created = epoch + timedelta(days=customer_id * 3)
        rows["customers"].append(
            {
                "id": customer_id,
                "name": name,
                "slug": slug,
                "billing_email": f"billing@{slug}.example",
                "status": "active",
                "created_at": created,
            }
        )
        plan_id = 2 if customer_id == 1 else rng.choice([1, 2, 2, 3, 3, 4])
        seats = rng.randint(1, PLAN_ROWS[plan_id - 1]["max_seats"])  # type: ignore[arg-type]
        rows["subscriptions"].append(
            {
                "id": customer_id,
                "customer_id": customer_id,
                "plan_id": plan_id,
                "status": "active",
                "seats": seats,
                "created_at": created,
            }
        )
        for index in range(rng.randint(2, 5)):
            user_id += 1
            first = FIRST_NAMES[(customer_id + index) % len(FIRST_NAMES)]
            rows["users"].append(
                {
                    "id": user_id,
                    "customer_id": customer_id,
                    "email": f"{first}@{slug}.example",
                    "name": first.title(),
                    "role": "admin" if index == 0 else rng.choice(["member", "viewer"]),
                    "active": True,
                    "created_at": created,
                }
            )
        for month in range(rng.randint(2, 4)):
            invoice_id += 1
            issued = created + timedelta(days=30 * month)
            rows["invoices"].append(
                {
                    "id": invoice_id,
                    "customer_id": customer_id,
                    "amount_cents": PLAN_ROWS[plan_id - 1]["price_cents"],
                    "status": "paid" if month < 2 else rng.choice(["open", "overdue"]),
                    "issued_at": issued,
                    "due_at": issued + timedelta(days=14),
                }
            )
        for flag in FLAG_NAMES:
            flag_id += 1
            rows["feature_flags"].append(
                {"id": flag_id, "customer_id": customer_id, "name": flag, "enabled": rng.random() < 0.3}
            )
    return rows


async def create_demo_target(engine: AsyncEngine) -> bool:
    """Create the demo tables and seed them if they are empty; True when it seeded."""
    async with engine.begin() as connection:
        return await _create_and_seed(connection)


async def _create_and_seed(connection: AsyncConnection) -> bool:
    await connection.run_sync(demo_metadata.create_all)
    if await connection.scalar(select(func.count()).select_from(customers)):
        return False
    for table in demo_metadata.sorted_tables:
        await connection.execute(insert(table), demo_rows()[table.name])
    if connection.dialect.name == "postgresql":
        # Seeding gives explicit ids, which leaves the SERIAL sequences at 1: move them past the
        # seeded rows, or the first insert on PostgreSQL collides with row 1.
        for table in demo_metadata.sorted_tables:
            sequence = func.pg_get_serial_sequence(table.name, "id")
            await connection.execute(select(func.setval(sequence, select(func.max(table.c.id)).scalar_subquery())))
    return True


async def reset_demo_target(engine: AsyncEngine) -> None:
    """Put the demo tables back to their seeded rows, so the README's demo tickets plan the same again.

    Deletes every row of the demo tables (children first) and seeds them afresh in one transaction.
    """
    async with engine.begin() as connection:
        await connection.run_sync(demo_metadata.create_all)
        for table in reversed(demo_metadata.sorted_tables):
            await connection.execute(delete(table))
        await _create_and_seed(connection)
