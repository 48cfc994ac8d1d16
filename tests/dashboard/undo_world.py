"""The dashboard on the real pipeline, for undo: real planner, safety check, execution and before-images.

Reverting needs what the scripted dashboard world fakes (rows really changed, their images in
the target DB's ledger), so these tests run every real activity on a queue of their own.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from starlette.applications import Starlette
from temporalio.client import Client

from bot.app import create_app
from bot.context import BotContext
from core.demo import invoices
from core.models import OutcomeStatus, Stage, TicketStatus
from tests.dashboard.harness import dashboard_settings
from tests.pipeline import Pipeline, running_pipeline

REVERT_KEY = re.compile(r'name="revert_key" value="([^"]+)"')


def revert_key_from(html: str) -> str:
    match = REVERT_KEY.search(html)
    assert match, "the page offers no Revert form"
    return match.group(1)


@dataclass
class UndoWorld:
    pipeline: Pipeline
    app: Starlette

    async def paid_invoice_ticket(self, requester: str = "dave", approver: str = "alice") -> tuple[str, int]:
        """A done ticket that marked an unpaid invoice paid (one approval): its short id and the invoice id."""
        invoice = await self.unpaid_invoice()
        started = await self.pipeline.service.start(self.pipeline.request(f"mark invoice {invoice} as paid", requester))
        await self.pipeline.approve(started.short_id, approver)
        outcome = await self.pipeline.service.result(started.short_id)
        assert outcome.status is OutcomeStatus.DONE, outcome.reason
        return started.short_id, invoice

    async def unpaid_invoice(self) -> int:
        """An invoice no earlier test of the module has marked paid."""
        async with self.pipeline.databases.target_sessions() as session:
            ids = (await session.scalars(select(invoices.c.id).where(invoices.c.status != "paid"))).all()
        assert ids, "the demo data has run out of unpaid invoices"
        return min(ids)

    async def invoice(self, invoice_id: int) -> dict[str, Any]:
        async with self.pipeline.databases.target_sessions() as session:
            row = (await session.execute(select(invoices).where(invoices.c.id == invoice_id))).mappings().one()
        return dict(row)

    async def change_invoice(self, invoice_id: int, **values: object) -> None:
        """Someone else's write, straight to the target DB."""
        async with self.pipeline.databases.target_sessions() as session, session.begin():
            await session.execute(update(invoices).where(invoices.c.id == invoice_id).values(**values))

    async def status(self, short_id: str) -> TicketStatus:
        return await self.pipeline.service.status(short_id)

    async def wait_until_settled(self, short_id: str) -> TicketStatus:
        """Waiting for approval or finished, whichever comes first."""
        for _ in range(300):
            status = await self.status(short_id)
            if status.outcome is not None or status.stage is Stage.AWAITING_APPROVAL:
                return status
            await asyncio.sleep(0.05)
        raise AssertionError(f"{short_id} never settled; it is {status.status_label}")


@asynccontextmanager
async def undo_world(client: Client, data_dir: Path, **overrides: object) -> AsyncIterator[UndoWorld]:
    settings = dashboard_settings(data_dir, f"dash-undo-{uuid.uuid4().hex[:8]}", **overrides)
    async with running_pipeline(client, settings) as pipeline:
        yield UndoWorld(pipeline, create_app(BotContext(settings, pipeline.service, pipeline.databases)))
