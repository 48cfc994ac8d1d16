"""Building the real activities from settings: the one place that wires dependencies."""

from __future__ import annotations

from activities.approvers import ApproverActivities, ApproverResolver, LiteralApprovers
from activities.audit import AuditActivities
from activities.context import ContextActivities
from activities.execution import ExecutionActivities
from activities.notify import LogNotifier, Notifier, NotifyActivities
from activities.planning import PlanningActivities, build_planner
from activities.safety import SafetyActivities
from core.bootstrap import Databases
from core.settings import Settings
from worker.build import ActivitySet


def slack_dependencies(settings: Settings, databases: Databases) -> tuple[Notifier, ApproverResolver]:
    """The Slack notifier and group resolver when Slack is configured, else log-only ones."""
    if not settings.slack_enabled or settings.slack_bot_token is None:
        return LogNotifier(), LiteralApprovers()
    from slack_sdk.web.async_client import AsyncWebClient

    from activities.slack_notify import SlackApproverResolver, SlackNotifier

    # Temporal owns retries: the client's own retry handlers stay off.
    web_client = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url, retry_handlers=[]
    )
    return SlackNotifier(web_client, databases.app_sessions), SlackApproverResolver(web_client)


def build_activity_set(settings: Settings, databases: Databases) -> ActivitySet:
    notifier, resolver = slack_dependencies(settings, databases)
    audit = AuditActivities(databases.app_sessions)
    context = ContextActivities(databases.app_sessions, databases.target_engine)
    safety = SafetyActivities(databases.app_sessions, databases.target_engine)
    execution = ExecutionActivities(databases.target_engine)
    planning = PlanningActivities(build_planner(settings))
    return ActivitySet(
        workflow_queue=[
            audit.record_event,
            context.gather_context,
            safety.validate_plan,
            execution.execute_plan,
            NotifyActivities(notifier).notify_ticket,
            ApproverActivities(resolver).resolve_approvers,
        ],
        llm_queue=[planning.plan_ticket],
        cleanups=[planning.planner.close],
    )
