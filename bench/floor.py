"""The floor's worker process: `python -m bench.floor --address A --queue Q`, polling Q and Q-llm.

Built as `agent-ticket worker` builds its workers (pydantic data converter, the product's sandbox
runner, payload passes, workflow cache and sticky time-out from `worker/build.py`, one worker per queue, 100 activity
slots, start-up objects frozen out of the garbage collector's sight), so the process differs from the
product's worker only in the work it is given. Prints "Worker polling" once both poll, then runs until
SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from bench.floor_workflow import FloorWorkflow, noop
from worker import build as product_build

READY = "Worker polling"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--queue", required=True)
    options = parser.parse_args()
    client = await Client.connect(options.address, data_converter=pydantic_data_converter)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    install_product_payload_passes()
    async with (
        Worker(
            client, task_queue=options.queue, workflows=[FloorWorkflow], activities=[noop], **product_workflow_options()
        ),
        Worker(client, task_queue=f"{options.queue}-llm", activities=[noop]),
    ):
        print(f"{READY} on {options.queue}", flush=True)
        gc.collect()
        gc.freeze()  # as `agent-ticket worker` does once polling (cli/running.py)
        await stop.wait()


def install_product_payload_passes() -> None:
    """The SDK's payload passes as the product's worker runs them (trees before item 36 have no `install`)."""
    install = getattr(getattr(product_build, "payload_passes", None), "install", None)
    if install is not None:
        install()


def product_workflow_options() -> dict[str, Any]:
    """The workflow worker's settings from the product tree in use (`bench-compare` runs older ones too)."""
    options: dict[str, Any] = {}
    for setting, name in (
        ("workflow_runner", "WORKFLOW_RUNNER"),
        ("max_cached_workflows", "MAX_CACHED_WORKFLOWS"),
        ("sticky_queue_schedule_to_start_timeout", "STICKY_QUEUE_TIMEOUT"),
    ):
        if hasattr(product_build, name):
            options[setting] = getattr(product_build, name)
    return options


if __name__ == "__main__":
    asyncio.run(main())
