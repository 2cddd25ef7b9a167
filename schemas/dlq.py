"""The dead-letter envelope: the original key and bytes, with the reason in headers.

Every stage that rejects a record publishes it to ``netral.dlq.<stage>`` with these headers, so an
operator (``netral dlq show``) sees what failed, where it came from, and why, and can replay it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

H_ERROR_CLASS = "netral.error.class"
H_ERROR_MESSAGE = "netral.error.message"
H_STAGE = "netral.stage"
H_TOPIC = "netral.source.topic"
H_PARTITION = "netral.source.partition"
H_OFFSET = "netral.source.offset"
H_FAILED_AT = "netral.failed.at"
H_REPLAYED_FROM = "netral.replayed.from"

MAX_REASON_CHARS = 2000


class DeadLetter(BaseModel):
    """Why one record was rejected, and where it came from."""

    model_config = ConfigDict(frozen=True)

    stage: str
    error_class: str
    reason: str
    source_topic: str
    source_partition: int
    source_offset: int
    failed_at: datetime

    @classmethod
    def of(
        cls, err: BaseException, *, stage: str, topic: str, partition: int, offset: int,
        now: datetime | None = None,
    ) -> DeadLetter:
        return cls(
            stage=stage,
            error_class=type(err).__name__,
            reason=str(err)[:MAX_REASON_CHARS] or type(err).__name__,
            source_topic=topic,
            source_partition=partition,
            source_offset=offset,
            failed_at=now or datetime.now(UTC),
        )

    def headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers, in a stable order."""
        return [
            (H_ERROR_CLASS, self.error_class.encode()),
            (H_ERROR_MESSAGE, self.reason.encode()),
            (H_STAGE, self.stage.encode()),
            (H_TOPIC, self.source_topic.encode()),
            (H_PARTITION, str(self.source_partition).encode()),
            (H_OFFSET, str(self.source_offset).encode()),
            (H_FAILED_AT, self.failed_at.isoformat().encode()),
        ]

    @classmethod
    def from_headers(cls, headers: Iterable[tuple[str, bytes]]) -> DeadLetter:
        h = {k: v.decode(errors="replace") for k, v in headers}
        return cls(
            stage=h.get(H_STAGE, "?"),
            error_class=h.get(H_ERROR_CLASS, "?"),
            reason=h.get(H_ERROR_MESSAGE, ""),
            source_topic=h.get(H_TOPIC, "?"),
            source_partition=int(h.get(H_PARTITION, "-1")),
            source_offset=int(h.get(H_OFFSET, "-1")),
            failed_at=datetime.fromisoformat(h[H_FAILED_AT]) if H_FAILED_AT in h
            else datetime.fromtimestamp(0, UTC),
        )
