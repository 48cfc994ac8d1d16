"""Pydantic models shared by the workflow, activities, bot, dashboard and CLI."""

from core.models.plan import *  # noqa: F403
