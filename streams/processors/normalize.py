"""normalize: every ``netral.raw.<agency>`` record -> one CanonicalEvent on ``netral.events``.

Thin by design: decode with the shared codec, call the pure rule, emit. A record that fails any of
that goes to ``netral.dlq.normalize`` with the reason and the stream moves on; an unexpected error
in the rule (a bug) goes there too, logged with its traceback, rather than stopping the stream.
"""

from __future__ import annotations

import asyncio
import logging

import faust

from schemas.codec import AvroCodec
from schemas.models import CanonicalEvent
from schemas.topics import EVENTS

from ..config import StreamsConfig
from ..rules.normalize import normalize_record
from ..topics import HubTopics
from .dead_letters import reject

STAGE = "normalize"
log = logging.getLogger(__name__)


def register(app: faust.App, topics: HubTopics, codec: AvroCodec, cfg: StreamsConfig) -> None:
    @app.agent(topics.raw, name="normalize", concurrency=1)
    async def normalize(stream: faust.StreamT[bytes]) -> None:
        batches = stream.take_events(cfg.batch_size, within=cfg.batch_within_s)  # type: ignore[attr-defined]
        async for batch in batches:
            pending = []
            for event in batch:
                msg = event.message
                try:
                    key, canonical = normalize_record(msg.topic, msg.key, codec.decode(msg.value))
                    value = codec.encode(CanonicalEvent.avro_name, canonical, topic=EVENTS)
                except Exception as err:  # noqa: BLE001 - reject() logs bugs
                    await reject(topics, STAGE, msg, err)
                    continue
                # Straight to the producer (flushed before each offset commit): Faust's
                # Topic.send builds a FutureMessage per record, a cost the batch does not need.
                pending.append(await app.producer.send(EVENTS, key, value, None, None, None))
            await asyncio.gather(*pending)
