"""The plan activity: turn a ticket and its context into a `Plan` of typed operations.

The activity owns what every planner needs from Temporal (heartbeats while it
waits, logging with the ticket id); the planner behind it is injected, so the
worker picks OpenAI or the offline planner once, from the settings, and tests
hand in whichever they need. A ticket that carries an agent's own plan (the MCP
door's `propose_plan`) skips the planner: that plan goes on to the same safety
check and approvals as any other.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import HEARTBEAT_INTERVAL_SECONDS, heartbeating
from activities.offline_planner import OfflinePlanner
from core.models import Plan, PlanTicketInput
from core.names import ACTIVITY_PLAN_TICKET, short_id_from, ticket_label
from core.settings import Settings

if TYPE_CHECKING:
    from openai import AsyncOpenAI

logger = logging.getLogger(__name__)

ERROR_PROPOSED_PLAN_FIXED = "ProposedPlanFixed"
ERROR_PLAN_TOO_LARGE = "PlanTooLarge"

# Far below Temporal's 2 MB payload limit, past which the result would be refused and planning
# asked for again and again; far above any plan a person could review.
MAX_PLAN_BYTES = 256 * 1024

__all__ = ["OfflinePlanner", "Planner", "PlanningActivities", "build_openai_client", "build_planner"]


class Planner(Protocol):
    """Anything that can plan a ticket. `name` is what `Plan.planner` says, e.g. "openai:gpt-4o-mini"."""

    @property
    def name(self) -> str: ...

    async def plan(self, input: PlanTicketInput) -> Plan: ...

    async def close(self) -> None: ...


class PlanningActivities:
    """Activities of the planning concern; register `plan_ticket` on the LLM task queue."""

    def __init__(self, planner: Planner, *, heartbeat_interval: float = HEARTBEAT_INTERVAL_SECONDS) -> None:
        self.planner = planner
        self._heartbeat_interval = heartbeat_interval

    @activity.defn(name=ACTIVITY_PLAN_TICKET)
    async def plan_ticket(self, input: PlanTicketInput) -> Plan:
        label = ticket_label(short_id_from(input.ticket_id))
        if input.request.proposed_plan is not None:
            return within_size(label, proposed_plan(input))
        attempt = activity.info().attempt
        logger.info("%s: planning with %s (attempt %d)", label, self.planner.name, attempt)
        async with heartbeating(f"planning with {self.planner.name}", interval=self._heartbeat_interval):
            plan = await self.planner.plan(input)
        logger.info(
            "%s: plan by %s has %d operation(s): %s",
            label,
            plan.planner,
            len(plan.operations),
            plan.summary,
        )
        return within_size(label, plan)


def within_size(label: str, plan: Plan) -> Plan:
    """`plan`, or a non-retryable error when its JSON passes `MAX_PLAN_BYTES`: planning again gives the same."""
    size = len(plan.model_dump_json().encode())
    if size > MAX_PLAN_BYTES:
        logger.warning("%s: plan by %s is %d bytes, over %d", label, plan.planner, size, MAX_PLAN_BYTES)
        raise ApplicationError(
            f"the plan is {size // 1024} KB, more than the {MAX_PLAN_BYTES // 1024} KB a plan may be; "
            "no one could review it",
            type=ERROR_PLAN_TOO_LARGE,
            non_retryable=True,
        )
    return plan


def proposed_plan(input: PlanTicketInput) -> Plan:
    """The plan the requester proposed, named after them ("agent:<name>"); it cannot be planned again.

    A reviewer's "ask for a new plan" reaches a planner that has nothing new to offer: the ticket
    ends failed with a reason saying so, and the agent can propose a revised plan as a new ticket.
    """
    label = ticket_label(short_id_from(input.ticket_id))
    if input.feedback:
        raise ApplicationError(
            f"the plan was proposed by {input.request.requester} and cannot be planned again here; "
            "reject it and let the agent propose a new one",
            type=ERROR_PROPOSED_PLAN_FIXED,
            non_retryable=True,
        )
    assert input.request.proposed_plan is not None
    plan = input.request.proposed_plan.model_copy(update={"planner": input.request.requester})
    logger.info("%s: plan proposed by %s has %d operation(s)", label, plan.planner, len(plan.operations))
    return plan


def build_openai_client(settings: Settings) -> AsyncOpenAI:
    """An `AsyncOpenAI` for the worker: retries off (Temporal owns them) and a bounded time-out."""
    from openai import AsyncOpenAI  # about a second of imports, paid only by workers that use OpenAI

    api_key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    return AsyncOpenAI(
        api_key=api_key,
        base_url=settings.openai_base_url,
        timeout=settings.openai_timeout_seconds,
        max_retries=0,
    )


def build_planner(settings: Settings) -> Planner:
    """OpenAI (or a compatible server via OPENAI_BASE_URL) when a key is configured, else the offline planner."""
    if settings.llm_enabled:
        from activities.openai_planner import OpenAIPlanner

        return OpenAIPlanner(build_openai_client(settings), settings.openai_model)
    return OfflinePlanner()
