"""Sending rejected records to their stage's DLQ, from inside a Faust agent."""

from __future__ import annotations

import logging
from typing import Any

import faust

from schemas.dlq import DeadLetter
from schemas.errors import InvalidMessage

from ..topics import HubTopics

log = logging.getLogger(__name__)


async def to_dlq(topics: HubTopics, stage: str, message: faust.types.Message,
                 err: BaseException) -> None:
    """Publish the original key, bytes and headers plus the reason; log where, never the payload."""
    letter = DeadLetter.of(err, stage=stage, topic=message.topic,
                           partition=message.partition, offset=message.offset)
    log.warning("dlq %s: %s[%d]@%d %s: %s", stage, message.topic, message.partition,
                message.offset, letter.error_class, letter.reason[:300])
    original: Any = message.headers or []
    items = original.items() if isinstance(original, dict) else original
    kept: list[tuple[str, bytes]] = [(str(k), bytes(v)) for k, v in items]
    await topics.dlq[stage].send(key=message.key, value=message.value or b"",
                                 headers=kept + letter.headers())


async def reject(topics: HubTopics, stage: str, message: faust.types.Message,
                 err: Exception) -> None:
    """A record the stage could not take goes to its DLQ; an error that is not an
    InvalidMessage is a bug, logged with its traceback first (the stream still goes on)."""
    if not isinstance(err, InvalidMessage):
        log.error("unexpected error in %s at %s[%d]@%d", stage, message.topic,
                  message.partition, message.offset, exc_info=err)
    await to_dlq(topics, stage, message, err)
