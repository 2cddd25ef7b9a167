"""``python -m tests.integration.hole_worker TOPIC OUT FIRST LAST MODE``: a Faust worker on
the hub's :class:`~streams.rebalance.RebalanceSafeConsumer`. Its agent copies every value of
TOPIC to OUT. MODE ``silent`` and ``noted``: its consumer hands offsets FIRST..LAST of partition
0 to no stream the first time they come, as Faust did across a rebalance; ``silent``: nothing
tells the consumer, and its watchdog must find the partition stuck behind its committed offset;
``noted``: the drop is reported as the consumer's own drops are, and it must seek back at once.
``stuck``: nothing is dropped, but the agent never finishes offset FIRST, and the watchdog must
report the partition as waiting on records in flight. The watch interval
(NETRAL_WORKER_HOLE_CHECK_S), the bootstrap and the app id come from the environment."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import faust
from faust.types import Message

from hub.logs import configure
from streams.rebalance import RebalanceSafeConsumer, use_rebalance_safe_consumer


def main() -> None:
    topic, out, first, last, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(
        sys.argv[4]), sys.argv[5]
    configure("INFO", "console")
    app = faust.App(os.environ["NETRAL_WORKER_APP_ID"],
                    broker=f"kafka://{os.environ['NETRAL_KAFKA_BOOTSTRAP']}",
                    web_enabled=False, autodiscover=False, store="memory://",
                    datadir=os.environ["NETRAL_HOME"], broker_commit_interval=0.5,
                    consumer_auto_offset_reset="earliest", topic_partitions=1)
    use_rebalance_safe_consumer(app, float(os.environ["NETRAL_WORKER_HOLE_CHECK_S"]))
    source = app.topic(topic, value_serializer="raw", partitions=1)
    sink = app.topic(out, value_serializer="raw", partitions=1)
    consumer = app.consumer
    assert isinstance(consumer, RebalanceSafeConsumer)
    deliver = consumer.callback
    lost: set[int] = set()

    async def callback(message: Message) -> Any:
        if mode != "stuck" and message.tp.partition == 0 and first <= message.offset <= last \
                and message.offset not in lost:
            lost.add(message.offset)  # handed to no stream, its read offset still moves on
            if mode == "noted":
                consumer.handed_to_no_stream(message)
            return None
        return await deliver(message)

    consumer.callback = callback

    @app.agent(source)
    async def copy(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            if mode == "stuck" and event.message.offset == first:
                await asyncio.Event().wait()  # a send that never completes: held for ever
            await sink.send(value=event.value)

    faust.Worker(app, loglevel="INFO", override_logging=False, redirect_stdouts=False,
                 quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
