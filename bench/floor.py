"""The floor's worker process: `python -m bench.floor --address A --queue Q`, polling Q and Q-llm.

Built as `agent-ticket worker` builds its workers (pydantic data converter, the default sandbox,
one worker per queue, 100 activity slots), so the process differs from the product's worker only
in the work it is given. Prints "Worker polling" once both poll, then runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from bench.floor_workflow import FloorWorkflow, noop

READY = "Worker polling"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--queue", required=True)
    options = parser.parse_args()
    client = await Client.connect(options.address, data_converter=pydantic_data_converter)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with (
        Worker(client, task_queue=options.queue, workflows=[FloorWorkflow], activities=[noop]),
        Worker(client, task_queue=f"{options.queue}-llm", activities=[noop]),
    ):
        print(f"{READY} on {options.queue}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
