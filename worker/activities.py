"""Building the real activities from settings: the one place that wires dependencies."""

from __future__ import annotations

from activities.approvers import ApproverActivities, ApproverResolver, ConfiguredApprovers, LiteralApprovers
from activities.audit import AuditActivities
from activities.authority import ExecutionAuthority
from activities.context import ContextActivities
from activities.execution import ExecutionActivities
from activities.notify import LogNotifier, Notifier, NotifyActivities
from activities.planning import PlanningActivities, build_planner
from activities.proofs import ProofActivities
from activities.revert import RevertActivities
from activities.safety import SafetyActivities
from activities.trust import WorkerTrust
from core.agents import agent_requester
from core.bootstrap import Databases
from core.policy import PolicyCache
from core.settings import Settings
from worker.build import ActivitySet


def slack_dependencies(settings: Settings, databases: Databases) -> tuple[Notifier, ApproverResolver]:
    """The Slack notifier and group resolver when Slack is configured, else log-only ones."""
    if not settings.slack_enabled:
        return LogNotifier(), LiteralApprovers()
    from activities.slack_notify import SlackApproverResolver, SlackNotifier, activity_web_client

    # Temporal owns retries: the activities' Web API client has slack_sdk's own retries off.
    return (
        SlackNotifier.from_settings(settings, databases.app_sessions),
        SlackApproverResolver(activity_web_client(settings)),
    )


def build_activity_set(settings: Settings, databases: Databases) -> ActivitySet:
    notifier, resolver = slack_dependencies(settings, databases)
    audit = AuditActivities(databases.app_transactions)
    context = ContextActivities(databases.app_sessions, databases.app_reads, databases.target_reads)
    window = settings.revert_window
    approvers = ConfiguredApprovers(resolver, settings.approvers)
    agents = [agent_requester(agent.name) for agent in settings.mcp_agents]
    trust = WorkerTrust.of(settings.decision_keys, settings.allow_unsigned_decisions, approvers, agents)
    authority = ExecutionAuthority(trust)
    safety = SafetyActivities(databases.app_sessions, databases.target_engine, authority, revert_window=window)
    policy = PolicyCache(databases.app_sessions)
    execution = ExecutionActivities(databases.target_engine, authority, policy, revert_window=window)
    revert = RevertActivities(databases.target_engine, PolicyCache(databases.app_sessions), revert_window=window)
    planning = PlanningActivities(build_planner(settings))
    proofs = ProofActivities(trust)
    return ActivitySet(
        workflow_queue=[
            audit.record_events,
            context.gather_context,
            safety.validate_plan,
            execution.execute_plan,
            execution.find_execution,
            revert.plan_revert,
            NotifyActivities(notifier).notify_ticket,
            ApproverActivities(approvers).resolve_approvers,
            proofs.verify_request,
            proofs.verify_decision,
        ],
        llm_queue=[planning.plan_ticket],
        cleanups=[planning.planner.close],
    )
