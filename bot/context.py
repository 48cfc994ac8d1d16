"""What every part of the bot's ASGI app shares: settings, the ticket service, the databases."""

from __future__ import annotations

from dataclasses import dataclass

from core.bootstrap import Databases
from core.settings import Settings
from core.tickets import TicketService


@dataclass
class BotContext:
    settings: Settings
    service: TicketService
    databases: Databases
