"""User-facing latency: what a person in Slack waits for, measured from outside the product.

Two waits, one ticket at a time, with the offline planner and the fake Slack (in this process, so
the time each Slack call arrives is read off the same clock as the request that caused it):

- slash command → the ticket's first message in the channel (a top-level `chat.postMessage`
  naming the ticket): how long until the channel sees the ticket exists;
- the last approval click → the ticket's message saying it is done (a `chat.postMessage` or
  `chat.update` whose text is "T-… done…"): how long the approver waits to see the change made.

The worker and bot are `agent-ticket worker` and `agent-ticket bot`, as an operator runs them.
Nothing inside the product is timed, so the figures hold whatever the workflow does between.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from bench.harness import (
    BenchResult,
    Stats,
    approval_text,
    auto_approved_text,
    log,
    run_benchmark,
    scaled,
    summarize,
    unpaid_invoice_ids,
    workdir,
)
from bench.slack_stack import APPROVE_ACTION_ID, APPROVER, CHANNEL, BotStack, bot_stack
from tests.fakes.slack_server import FakeSlack, SlackCall

TARGET_P50_MS = 150.0
WAIT_SECONDS = 30.0
MESSAGE_METHODS = ("chat.postMessage", "chat.update")


async def first_call(fake: FakeSlack, after: float, matches: Callable[[SlackCall], bool]) -> SlackCall:
    """The first successful Slack call made since `after` (monotonic) that `matches`."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        found = next((call for call in fake.calls if call.at >= after and call.ok and matches(call)), None)
        if found is not None:
            return found
        await asyncio.sleep(0.01)
    raise TimeoutError(f"no matching Slack call within {WAIT_SECONDS:.0f} s; calls: {[c.method for c in fake.calls]}")


def top_level_post(call: SlackCall) -> bool:
    return call.method == "chat.postMessage" and in_channel(call) and not call.args.get("thread_ts")


def in_channel(call: SlackCall) -> bool:
    return call.method in MESSAGE_METHODS and call.args.get("channel") == CHANNEL


async def to_first_message(stack: BotStack, fake: FakeSlack, index: int) -> tuple[float, float]:
    """Seconds from the slash command to the ticket's first top-level message; and to its ack."""
    sent = await stack.user.command(auto_approved_text(index))
    if not sent.acknowledged:
        raise RuntimeError(f"the bot did not acknowledge: {sent.answer}")
    label = f"T-{sent.short_id}"
    call = await first_call(fake, sent.sent_at, lambda c: top_level_post(c) and label in _text(c))
    await stack.client.get_workflow_handle(sent.workflow_id).result()  # one ticket at a time
    return call.at - sent.sent_at, sent.ack_seconds


async def click_to_done(stack: BotStack, fake: FakeSlack, index: int, invoices: list[int]) -> float:
    """Seconds from the (only, so last) approval click to the message saying the ticket is done."""
    sent = await stack.user.command(approval_text(index, invoices))
    if not sent.acknowledged:
        raise RuntimeError(f"the bot did not acknowledge: {sent.answer}")
    label = f"T-{sent.short_id}"
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        message = next((m for m in fake.top_level(CHANNEL) if label in m.text and m.has_buttons), None)
        if message is not None:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{label}: no approval buttons within {WAIT_SECONDS:.0f} s")
        await asyncio.sleep(0.02)
    value = next(
        element["value"]
        for block in message.blocks
        if block.get("type") == "actions"
        for element in block.get("elements", [])
        if element.get("action_id") == APPROVE_ACTION_ID
    )
    await asyncio.sleep(0.2)  # as a person would: the message is read before the click
    clicked_at = await stack.user.click(APPROVE_ACTION_ID, value, APPROVER, message.ts)
    call = await first_call(fake, clicked_at, lambda c: in_channel(c) and f"{label} done" in _text(c))
    await stack.client.get_workflow_handle(sent.workflow_id).result()
    return call.at - clicked_at


def _text(call: SlackCall) -> str:
    return str(call.args.get("text") or "")


async def main() -> None:
    count = scaled(40, 8)
    invoices = unpaid_invoice_ids()
    approvals = min(count, len(invoices))  # each marks a different unpaid invoice paid
    with workdir("user-latency") as directory:
        async with bot_stack(directory, slack_in_process=True, approvers=[APPROVER, "UBOB00001"]) as stack:
            fake = stack.fake
            assert fake is not None
            for index in range(3):  # warm-up: imports, connections, caches
                await to_first_message(stack, fake, index)
            log(f"{count} slash commands → first message, one at a time")
            first: list[float] = []
            acks: list[float] = []
            for index in range(count):
                seconds, ack = await to_first_message(stack, fake, index)
                first.append(seconds)
                acks.append(ack)
            log(f"{approvals} approval clicks → done message, one at a time")
            done = [await click_to_done(stack, fake, index, invoices) for index in range(approvals)]

    first_stats, done_stats, ack_stats = summarize(first), summarize(done), summarize(acks)
    met = first_stats.p50 <= TARGET_P50_MS and done_stats.p50 <= TARGET_P50_MS

    def brief(stats: Stats) -> str:
        return f"p50 {stats.p50:.0f} ms, p90 {stats.p90:.0f} ms, max {stats.max:.0f} ms"

    BenchResult(
        key="user_latency",
        title="User-facing latency",
        how=(
            "Measured from outside, one ticket at a time, offline planner, fake Slack in the benchmark's process "
            "(Slack calls timed on arrival, same clock as the requests), `agent-ticket worker` and "
            "`agent-ticket bot`. (1) signed `/agent-ticket show invoices for <customer>` → the first top-level "
            "`chat.postMessage` naming the ticket; (2) `/agent-ticket mark invoice <n> as paid` (one approver), "
            "once its message shows the buttons: a signed Approve click → the first `chat.postMessage` or "
            "`chat.update` in the channel saying `T-… done`."
        ),
        result=f"command → first message {brief(first_stats)}; last approval click → done message {brief(done_stats)}",
        target=f"both p50 ≤ {TARGET_P50_MS:.0f} ms",
        met=met,
        samples=f"{first_stats.n} commands, {done_stats.n} approval clicks",
        notes=f"The same commands' acks: {ack_stats.brief()}.",
        figures={
            "command_to_first_message_ms": first_stats.figures(),
            "approval_click_to_done_message_ms": done_stats.figures(),
            "command_ack_ms": ack_stats.figures(),
        },
    ).save()


if __name__ == "__main__":
    run_benchmark(main)
