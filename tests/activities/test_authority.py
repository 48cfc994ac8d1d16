"""The executor runs a plan only on the judging worker's signed judgement and enough signed approvals.

What the workflow passes comes from activity results, and a result retried through the task queue
may come from any namespace client that polls it: a rogue `verify_decision` had unsigned approvals
counted and a high-risk change ran (red team 19). These run the real validation and execution.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import execution as execution_module
from activities.approvers import ConfiguredApprovers, LiteralApprovers
from activities.authority import ExecutionAuthority
from activities.execution import ERROR_NOT_AUTHORISED, USED_BY_A_RUN, ExecutionActivities
from activities.safety import SafetyActivities
from activities.trust import WorkerTrust
from core import database
from core.bootstrap import Databases
from core.decision_proof import sign_decision
from core.demo import customers, users
from core.judgement import approval_request_id, judgement_of, sign_judgement
from core.ledger import executions, spent_approvals
from core.models import (
    ApprovalRequest,
    Assignment,
    Decision,
    DecisionSource,
    ExecutePlanInput,
    ExecutionLookup,
    ExecutionResult,
    Filter,
    FindExecutionInput,
    Plan,
    Risk,
    SafetyReport,
    SelectOperation,
    TicketRequest,
    UpdateOperation,
    ValidatePlanInput,
)
from core.names import ERROR_APPROVED_ROWS_CHANGED
from core.policy import PolicyCache
from core.request_proof import sign_request
from core.settings import Settings
from tests.activities.conftest import plan_of
from tests.support import APPROVERS

KEY = b"the-workers-and-the-front-doors-share-this-key"
FORGED = b"a-namespace-client-guessed-this-one"
REQUESTER = "dave"
CAROL = "carol@acme-corp.example"
MAKE_CAROL_ADMIN = UpdateOperation(
    table="users",
    values=[Assignment(column="role", value="admin")],
    filters=[Filter(column="email", op="eq", value=CAROL)],
)
READ_PLANS = SelectOperation(table="plans", filters=[Filter(column="name", op="eq", value="pro")])
UPGRADE_ACME = UpdateOperation(  # one subscription to the pro plan: low risk, runs without approval
    table="subscriptions",
    values=[Assignment(column="plan_id", value=3)],
    filters=[Filter(column="id", op="eq", value=1)],
)


WORKFLOW_ID = "ticket-t1"


def authority(approvers: list[str] = APPROVERS) -> ExecutionAuthority:
    return ExecutionAuthority(WorkerTrust.of([KEY], False, ConfiguredApprovers(LiteralApprovers(), approvers)))


def in_workflow(workflow_id: str = WORKFLOW_ID) -> ActivityEnvironment:
    """Activities run for the workflow `workflow_id`, as Temporal tells them."""
    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(environment.info, workflow_id=workflow_id)
    return environment


def front_door_request(workflow_id: str = WORKFLOW_ID, requester: str = REQUESTER) -> TicketRequest:
    request = TicketRequest(text=f"make {CAROL} an admin", requester=requester)
    return sign_request(request, workflow_id, KEY, datetime.now(UTC))


async def judged(dbs: Databases, operation: Any, request: TicketRequest | None = None) -> tuple[Plan, SafetyReport]:
    plan = Plan(summary="test", operations=[operation])
    safety = SafetyActivities(dbs.app_sessions, dbs.target_engine, authority())
    asked = ValidatePlanInput(ticket_id="t1", plan=plan, request=request or front_door_request())
    report: SafetyReport = await in_workflow().run(safety.validate_plan, asked)
    return plan, report


def signed(
    report: SafetyReport,
    decider: str,
    *,
    key: bytes = KEY,
    request_id: str | None = None,
    ago: timedelta = timedelta(0),
    round_id: str = "round1",
) -> Decision:
    now = datetime.now(UTC) - ago
    asked = request_id if request_id is not None else approval_request_id(round_id, report.judgement)
    approval = ApprovalRequest(
        request_id=asked, plan_hash=report.plan_hash, requested_at=now, deadline=now + timedelta(days=1)
    )
    return sign_decision(approval.decision(decider, DecisionSource.DASHBOARD), key, now)


def execution(plan: Plan, report: SafetyReport, approvals: list[Decision], **changes: Any) -> ExecutePlanInput:
    """The input as the workflow builds it from the report and the approvals it counted."""
    input = ExecutePlanInput(
        ticket_id="t1",
        workflow_id=WORKFLOW_ID,
        plan=plan,
        plan_hash=report.plan_hash,
        approved_rows=[impact.rows_affected for impact in report.impacts],
        approved_row_keys=report.approved_row_keys,
        approved_versions=[impact.rows_version for impact in report.impacts],
        requester=REQUESTER,
        approved_by=list(dict.fromkeys(decision.decider for decision in approvals)),
        judgement=report.judgement,
        approvals=approvals,
    )
    return input.model_copy(update=changes)


async def run(
    dbs: Databases, input: ExecutePlanInput, approvers: list[str] = APPROVERS, caller: str = WORKFLOW_ID
) -> None:
    executor = ExecutionActivities(dbs.target_engine, authority(approvers), PolicyCache(dbs.app_sessions))
    await in_workflow(caller).run(executor.execute_plan, input)


async def run_for_its_result(dbs: Databases, input: ExecutePlanInput) -> ExecutionResult:
    executor = ExecutionActivities(dbs.target_engine, authority(), PolicyCache(dbs.app_sessions))
    result: ExecutionResult = await in_workflow().run(executor.execute_plan, input)
    return result


async def carols_role(dbs: Databases) -> str:
    async with dbs.target_engine.connect() as connection:
        return str(await connection.scalar(select(users.c.role).where(users.c.email == CAROL)))


async def refused(
    dbs: Databases, input: ExecutePlanInput, approvers: list[str] = APPROVERS, caller: str = WORKFLOW_ID
) -> str:
    with pytest.raises(ApplicationError) as raised:
        await run(dbs, input, approvers, caller)
    assert raised.value.type == ERROR_NOT_AUTHORISED and raised.value.non_retryable
    return raised.value.message


async def test_a_judged_plan_that_needs_no_approval_runs(dbs: Databases) -> None:
    plan, report = await judged(dbs, READ_PLANS)
    assert report.required_approvals == 0 and report.judgement is not None and report.judgement.proof
    await run(dbs, execution(plan, report, []))


@pytest.mark.parametrize(
    ("tamper", "said"),
    [
        ("none", "no judgement"),
        ("unsigned", "unsigned"),
        ("needs no approval", "signature is bad"),
        ("signed with another key", "signature is bad"),
        ("other rows", "not the ticket, the plan or the rows"),
    ],
)
async def test_without_the_judging_workers_signed_judgement_nothing_runs(
    dbs: Databases, tamper: str, said: str
) -> None:
    """A rogue `validate_plan` (its durable retry goes through the task queue) cannot say "low risk"."""
    plan, report = await judged(dbs, MAKE_CAROL_ADMIN)
    assert report.risk is Risk.HIGH and report.judgement is not None
    judgement = report.judgement
    if tamper == "none":
        judgement = None
    elif tamper == "unsigned":
        judgement = judgement.model_copy(update={"proof": ""})
    elif tamper == "needs no approval":
        judgement = judgement.model_copy(update={"risk": Risk.LOW, "required_approvals": 0})
    elif tamper == "signed with another key":
        low = report.model_copy(update={"risk": Risk.LOW, "required_approvals": 0})
        judgement = sign_judgement(judgement_of(low, WORKFLOW_ID, REQUESTER, ""), FORGED)
    input = execution(plan, report, [], judgement=judgement)
    if tamper == "other rows":
        input = input.model_copy(update={"approved_row_keys": [["users:1", "users:2"]]})

    assert said in await refused(dbs, input)
    assert await carols_role(dbs) != "admin"


@pytest.mark.parametrize(
    ("approvals", "said"),
    [
        ("unsigned", "not signed by a front door"),
        ("signed with another key", "not signed by a front door"),
        ("the same person twice", "needs 2 approval(s) and has 1"),
        ("the requester", "may not decide on this plan"),
        ("someone APPROVERS does not name", "APPROVERS does not name them now"),
        ("for another approval request", "for another plan or approval request"),
        ("a rejection", "not an approval"),
    ],
)
async def test_a_plan_needing_approval_runs_only_with_enough_signed_approvals(
    dbs: Databases, approvals: str, said: str
) -> None:
    """A rogue `verify_decision` had such decisions counted by the workflow; the executor refuses them."""
    plan, report = await judged(dbs, MAKE_CAROL_ADMIN)
    assert report.required_approvals == 2
    alice, bob = signed(report, "alice"), signed(report, "bob")
    given = {
        "unsigned": [alice.model_copy(update={"proof": ""}), bob],
        "signed with another key": [alice, signed(report, "bob", key=FORGED)],
        "the same person twice": [alice, alice],
        "the requester": [alice, signed(report, REQUESTER)],
        "someone APPROVERS does not name": [alice, signed(report, "mallory")],
        "for another approval request": [
            signed(report, "alice", request_id="r0"),
            signed(report, "bob", request_id="r0"),
        ],
        "a rejection": [alice, bob.model_copy(update={"approve": False})],
    }[approvals]

    assert said in await refused(dbs, execution(plan, report, given))
    assert await carols_role(dbs) != "admin"


async def test_an_approver_taken_off_approvers_before_the_plan_runs_no_longer_counts(dbs: Databases) -> None:
    plan, report = await judged(dbs, MAKE_CAROL_ADMIN)
    input = execution(plan, report, [signed(report, "alice"), signed(report, "bob")])

    assert "bob: APPROVERS does not name them now" in await refused(dbs, input, approvers=["alice", "carol"])
    # Refused for good, the ticket fails: those approvals run nothing later, bob named again or not.
    assert "went with a run refused before" in await asked_again(dbs, input)
    assert await carols_role(dbs) != "admin"


@pytest.mark.parametrize("replay", ["another workflow sends it", "another workflow was judged", "another requester"])
async def test_an_approved_plan_runs_only_for_the_ticket_and_requester_it_was_judged_for(
    dbs: Databases, replay: str
) -> None:
    """Red team 20 ran a workflow of its own that sent a reverted ticket's plan, judgement and approvals to the
    real executor under a new workflow id, and the change ran again; or named another requester, and the
    requester's own approval counted."""
    plan, report = await judged(dbs, MAKE_CAROL_ADMIN)
    approvals = [signed(report, "alice"), signed(report, "bob")]
    input, caller = execution(plan, report, approvals), WORKFLOW_ID
    if replay == "another workflow sends it":
        caller = "ticket-rogue1"
    elif replay == "another workflow was judged":
        # The real validation, asked by the other workflow with the ticket's signed request: not signed for it.
        safety = SafetyActivities(dbs.app_sessions, dbs.target_engine, authority())
        asked = ValidatePlanInput(ticket_id="rogue1", plan=plan, request=front_door_request())
        rejudged: SafetyReport = await in_workflow("ticket-rogue1").run(safety.validate_plan, asked)
        input = execution(plan, rejudged, approvals, workflow_id="ticket-rogue1")
        caller = "ticket-rogue1"
    else:
        input = input.model_copy(update={"requester": "nobody"})

    said = await refused(dbs, input, caller=caller)
    assert any(words in said for words in ("sent by workflow", "unsigned", "not the ticket")), said
    assert await carols_role(dbs) != "admin"


async def test_approvals_of_one_judgement_do_not_count_for_another(dbs: Databases) -> None:
    """The approval request's id is drawn from the signed judgement: the same plan judged again (its rows
    changed) or on another ticket needs approvals of its own."""
    plan, report = await judged(dbs, MAKE_CAROL_ADMIN)
    stale = [
        signed(report, "alice", request_id="0123456789abcdef"),
        signed(report, "bob", request_id="0123456789abcdef"),
    ]

    assert "for another plan or approval request" in await refused(dbs, execution(plan, report, stale))
    assert await carols_role(dbs) != "admin"


async def test_approvals_from_different_rounds_of_the_same_judgement_do_not_add_up(dbs: Databases) -> None:
    """alice approved in one round and bob in the next (the same plan planned again): they never agreed at once."""
    plan, report = await judged(dbs, MAKE_CAROL_ADMIN)
    rounds = [
        signed(report, "alice", request_id=approval_request_id("round1", report.judgement)),
        signed(report, "bob", request_id=approval_request_id("round2", report.judgement)),
    ]

    assert "different approval requests" in await refused(dbs, execution(plan, report, rounds))
    assert await carols_role(dbs) != "admin"


async def test_a_plan_needing_no_approval_that_names_approvers_is_refused(dbs: Databases) -> None:
    """Named approvers kept a run off the requester's budget and on record as approved (red team 21)."""
    plan, report = await judged(dbs, READ_PLANS)
    assert report.required_approvals == 0
    said = await refused(dbs, execution(plan, report, [], approved_by=["nobody"]))
    assert "needs none" in said


async def test_a_ticket_runs_one_plan(dbs: Databases) -> None:
    """A workflow of one's own under a done ticket's id had plans of its choosing judged and run (red team 21)."""
    plan, report = await judged(dbs, READ_PLANS)
    await run(dbs, execution(plan, report, []))
    await run(dbs, execution(plan, report, []))  # the same plan again: the ledger answers, nothing runs twice
    other = SelectOperation(table="plans", filters=[Filter(column="name", op="eq", value="basic")])
    plan, report = await judged(dbs, other)

    assert "a ticket runs one plan" in await refused(dbs, execution(plan, report, []))


def suspend(customer: int) -> UpdateOperation:
    return UpdateOperation(
        table="customers",
        values=[Assignment(column="status", value="suspended")],
        filters=[Filter(column="id", op="eq", value=customer)],
    )


async def test_plans_sent_at_once_under_one_ticket_run_one(dbs: Databases) -> None:
    """Six plans sent together under a rejected ticket's id each found the ledger empty, and five ran (red team 22)."""
    judged_plans = [await judged(dbs, suspend(customer)) for customer in (10, 11, 12)]
    assert all(report.required_approvals == 0 for _, report in judged_plans)

    outcomes = await asyncio.gather(
        *(run(dbs, execution(plan, report, [])) for plan, report in judged_plans), return_exceptions=True
    )

    refusals = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    assert len(refusals) == 2, outcomes
    assert all(isinstance(refusal, ApplicationError) and refusal.type == ERROR_NOT_AUTHORISED for refusal in refusals)
    async with dbs.target_engine.connect() as connection:
        suspended = await connection.scalar(
            select(func.count())
            .select_from(customers)
            .where(customers.c.id.in_([10, 11, 12]), customers.c.status == "suspended")
        )
        ledger = await connection.scalar(
            select(func.count()).select_from(executions).where(executions.c.workflow_id == WORKFLOW_ID)
        )
    assert (suspended, ledger) == (1, 1)


async def asked_again(dbs: Databases, input: ExecutePlanInput) -> str:
    """The executor's refusal that sends the plan back to be judged and approved again, nothing written."""
    with pytest.raises(ApplicationError) as raised:
        await run(dbs, input)
    assert raised.value.type == ERROR_APPROVED_ROWS_CHANGED and raised.value.non_retryable
    return raised.value.message


async def test_a_plan_runs_only_within_an_hour_of_the_approval_that_completed_it(dbs: Databases) -> None:
    """Red team 60: approvals are not a licence kept to run the plan whenever someone chooses."""
    plan, report = await judged(dbs, MAKE_CAROL_ADMIN)
    days_ago = signed(report, "alice", ago=timedelta(days=3))  # people approve in their own time
    stale = execution(plan, report, [days_ago, signed(report, "bob", ago=timedelta(minutes=61))])
    assert "more than 1 hour(s) ago" in await asked_again(dbs, stale)
    assert await carols_role(dbs) != "admin"

    # Asked again: a new round, approved within the hour.
    alice = signed(report, "alice", round_id="round2")
    first = await run_for_its_result(
        dbs, execution(plan, report, [alice, signed(report, "bob", round_id="round2", ago=timedelta(minutes=59))])
    )
    assert not first.replayed and await carols_role(dbs) == "admin"

    # Its result lost after the commit, a retry after the hour gets it from the ledger (red team 61).
    late = [signed(report, name, round_id="round2", ago=timedelta(minutes=61)) for name in ("alice", "bob")]
    retried = await run_for_its_result(dbs, execution(plan, report, late))
    assert retried.replayed and retried.rows_changed == first.rows_changed


async def test_approvals_that_went_with_a_run_refused_for_good_run_nothing_later(dbs: Databases) -> None:
    """Red team 60: refused because the rows changed, the ticket rejected since, the rows as judged again."""
    plan, report = await judged(dbs, MAKE_CAROL_ADMIN)
    round1 = execution(plan, report, [signed(report, "alice"), signed(report, "bob")])
    carol = users.update().where(users.c.email == CAROL)
    async with dbs.target_engine.begin() as connection:
        name = await connection.scalar(select(users.c.name).where(users.c.email == CAROL))
        await connection.execute(carol.values(name=f"{name} (on leave)"))
    assert "changed since approval" in await asked_again(dbs, round1)
    async with dbs.target_engine.begin() as connection:
        await connection.execute(carol.values(name=name))

    assert "went with a run refused before" in await asked_again(dbs, round1)
    assert await carols_role(dbs) != "admin"
    # A new round of the same judgement (the rows as judged once more) is asked and approved afresh.
    round2 = [signed(report, "alice", round_id="round2"), signed(report, "bob", round_id="round2")]
    await run(dbs, execution(plan, report, round2))
    assert await carols_role(dbs) == "admin"


async def test_a_retry_beside_an_attempt_still_running_is_not_told_the_plan_did_not_run(
    dbs: Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Red team 62: attempt 1 (a stalled worker) wrote and holds its transaction; attempt 2 runs past the hour.

    Aged approvals were refused before attempt 2 waited for anything: it said nothing was written and spent
    them, and attempt 1 then committed. Checked after the writes, attempt 2 waits for attempt 1's instead.
    """
    plan, report = await judged(dbs, MAKE_CAROL_ADMIN)
    input = execution(plan, report, [signed(report, name, ago=timedelta(minutes=58)) for name in ("alice", "bob")])
    attempt: contextvars.ContextVar[int] = contextvars.ContextVar("attempt", default=1)
    holding, release = asyncio.Event(), asyncio.Event()
    real_age, real_schema_check = execution_module.stale_approvals, execution_module._check_schema

    def aged_for_attempt_two(approvals: list[Decision], now: datetime) -> str | None:
        return real_age(approvals, now + timedelta(minutes=3) if attempt.get() == 2 else now)

    async def attempt_one_stalls(connection: Any, input: ExecutePlanInput) -> None:
        if attempt.get() == 1:
            holding.set()
            await release.wait()
        await real_schema_check(connection, input)

    monkeypatch.setattr(execution_module, "stale_approvals", aged_for_attempt_two)
    monkeypatch.setattr(execution_module, "_check_schema", attempt_one_stalls)
    first = asyncio.create_task(run_for_its_result(dbs, input))
    await holding.wait()
    attempt.set(2)
    second = asyncio.create_task(run_for_its_result(dbs, input))
    await asyncio.sleep(1)
    release.set()
    assert not (await first).replayed
    try:
        assert (await second).replayed  # it waited for attempt 1's rows, then found its ledger row
    except ApplicationError as error:  # SQLite: its snapshot is older than attempt 1's commit; retried, it replays
        assert not error.non_retryable, error
    assert await carols_role(dbs) == "admin"
    async with dbs.target_engine.connect() as connection:  # used by the run, not spent by a refusal
        assert (await connection.scalars(select(spent_approvals.c.reason))).all() == [USED_BY_A_RUN]


@dataclasses.dataclass
class StalledRun:
    """A run of approved `input` that wrote its rows and holds its transaction until `release` is set."""

    input: ExecutePlanInput
    running: asyncio.Task[ExecutionResult]
    release: asyncio.Event

    def spend(self, dbs: Databases) -> Awaitable[ExecutionLookup]:
        """The ticket's `find_execution` for the run's plan and claim (told nothing ran)."""
        return told_nothing_ran(dbs, self.input)


def told_nothing_ran(dbs: Databases, input: ExecutePlanInput) -> Awaitable[ExecutionLookup]:
    """The ticket's `find_execution` for `input`'s plan and what its run claims, as the workflow asks it."""
    executor = ExecutionActivities(dbs.target_engine, authority(), PolicyCache(dbs.app_sessions))
    claim = input.approvals[0].request_id if input.approvals else input.run_key
    asked = FindExecutionInput(plan_hash=input.plan_hash, claim=claim)
    return in_workflow().run(executor.find_execution, asked)  # type: ignore[no-any-return]


async def stalled_run(dbs: Databases, monkeypatch: pytest.MonkeyPatch, *, approved: bool = True) -> StalledRun:
    """A run of the approved `MAKE_CAROL_ADMIN`, or of `UPGRADE_ACME` with a run key, stalled before its commit."""
    if approved:
        plan, report = await judged(dbs, MAKE_CAROL_ADMIN)
        input = execution(plan, report, [signed(report, "alice"), signed(report, "bob")])
    else:
        plan, report = await judged(dbs, UPGRADE_ACME)
        assert report.required_approvals == 0
        input = execution(plan, report, [], run_key="run/first")
    holding, release = asyncio.Event(), asyncio.Event()
    real_schema_check = execution_module._check_schema

    async def stalls(connection: Any, input: ExecutePlanInput) -> None:
        holding.set()
        await release.wait()
        await real_schema_check(connection, input)

    monkeypatch.setattr(execution_module, "_check_schema", stalls)
    running = asyncio.create_task(run_for_its_result(dbs, input))
    await holding.wait()
    return StalledRun(input, running, release)


async def test_a_spend_beside_a_run_still_open_waits_for_it_and_finds_it_ran(
    dbs: Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Red team 63: told nothing ran while a stalled attempt held its transaction, the ticket spent the approvals,
    and the attempt committed all the same. A spend and a run now claim the same record: one of them wins."""
    stalled = await stalled_run(dbs, monkeypatch)
    finding = asyncio.ensure_future(stalled.spend(dbs))
    await asyncio.sleep(1)
    stalled.release.set()
    ran = await stalled.running
    lookup = await finding
    assert lookup.result is not None and lookup.result.plan_hash == ran.plan_hash
    assert await carols_role(dbs) == "admin"
    async with dbs.target_engine.connect() as connection:
        assert (await connection.scalars(select(spent_approvals.c.reason))).all() == [USED_BY_A_RUN]


async def test_a_spend_that_cannot_wait_out_a_run_says_it_cannot_tell(
    settings: Settings, databases: Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Red team 64: a spend that gave up on a stalled run's lock reported that nothing ran; the run then committed."""
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_SECONDS", 1)
    short_waits = Databases.open(settings)  # engines that wait a second for a lock
    try:
        stalled = await stalled_run(short_waits, monkeypatch)
        with pytest.raises(sa_exc.OperationalError, match="locked"):  # not "it did not run"
            await stalled.spend(short_waits)
        stalled.release.set()
        assert not (await stalled.running).replayed and await carols_role(short_waits) == "admin"
    finally:
        await short_waits.close()


async def test_told_nothing_ran_beside_an_open_run_of_a_plan_needing_no_approval_it_waits_and_finds_it(
    dbs: Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Red team 66: such a run claimed nothing, so the ledger read of a ticket told "rows changed" by a poller
    did not wait for the ticket's real run, still open: it logged "nothing written", then the run committed."""
    stalled = await stalled_run(dbs, monkeypatch, approved=False)
    finding = asyncio.ensure_future(stalled.spend(dbs))
    await asyncio.sleep(1)
    assert not finding.done()  # waiting on the run's claim
    stalled.release.set()
    ran = await stalled.running
    lookup = await finding
    assert lookup.result is not None and lookup.result.plan_hash == ran.plan_hash
    assert await plan_of(dbs, customer_id=1) == 3


async def test_a_run_key_told_it_did_not_run_runs_nothing_later(dbs: Databases) -> None:
    """Told nothing ran, the ticket judges again and runs under a new key; a late attempt of the old one stops."""
    before = await plan_of(dbs, customer_id=1)
    plan, report = await judged(dbs, UPGRADE_ACME)
    input = execution(plan, report, [], run_key="run/first")
    assert (await told_nothing_ran(dbs, input)).result is None
    assert await asked_again(dbs, input) and await plan_of(dbs, customer_id=1) == before
    assert not (await run_for_its_result(dbs, input.model_copy(update={"run_key": "run/second"}))).replayed
    assert await plan_of(dbs, customer_id=1) == 3
