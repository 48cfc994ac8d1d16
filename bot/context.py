"""What every part of the bot's ASGI app shares: settings, the ticket service, the databases."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from core.bootstrap import Databases
from core.settings import Settings
from service.tickets import TicketService


@dataclass
class BotContext:
    settings: Settings
    service: TicketService
    databases: Databases
    # Set when the bot begins to stop, so long-lived responses (the dashboard's event streams)
    # end at once instead of holding the server's shutdown open.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
