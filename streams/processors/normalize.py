"""normalize: every ``netral.raw.<agency>`` record -> one CanonicalEvent on ``netral.events``.

Thin by design: decode with the shared codec, call the pure rule, emit; a record that fails any
of that goes to ``netral.dlq.normalize`` with the reason and the stream moves on.
"""

from __future__ import annotations

import faust

from schemas.codec import AvroCodec
from schemas.errors import InvalidMessage
from schemas.topics import EVENTS

from ..config import StreamsConfig
from ..rules.normalize import normalize_record  # noqa
from ..topics import HubTopics
from .dead_letters import to_dlq

STAGE = "normalize"
CANONICAL = "id.go.netral.CanonicalEvent"


def register(app: faust.App, topics: HubTopics, codec: AvroCodec, cfg: StreamsConfig) -> None:
    @app.agent(topics.raw, name="normalize", concurrency=1)
    async def normalize(stream: faust.StreamT[bytes]) -> None:
        async for batch in stream.take_events(cfg.batch_size, within=cfg.batch_within_s):
            for event in batch:
                msg = event.message
                try:
                    decoded = codec.decode(msg.value)
                    key, canonical = normalize_record(msg.topic, msg.key, decoded)
                    value = codec.encode(CANONICAL, canonical, topic=EVENTS)
                except InvalidMessage as err:
                    await to_dlq(topics, STAGE, msg, err)
                    continue
                await topics.events.send(key=key, value=value)
