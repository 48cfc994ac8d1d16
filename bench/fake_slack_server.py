"""The fake Slack Web API (tests/fakes/slack_server.py) in a process of its own, for the ack benchmark.

Run apart from the load generator so that answering the worker's and bot's Slack calls does
not share an event loop with the requests being timed. Prints its URL, then serves until killed.
"""

from __future__ import annotations

import asyncio

from tests.fakes.slack_server import FakeSlack

READY = "fake Slack at "


async def main() -> None:
    fake = await FakeSlack().start()
    print(f"{READY}{fake.url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


if __name__ == "__main__":
    asyncio.run(main())
