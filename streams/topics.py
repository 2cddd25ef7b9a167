"""Faust handles on the hub's topics. All carry raw bytes: our codec decodes inside the agent,
so a bad record reaches the DLQ with a reason instead of crashing Faust's deserializer."""

from __future__ import annotations

from dataclasses import dataclass

import faust

from schemas import topics as t


@dataclass(frozen=True)
class HubTopics:
    raw: faust.TopicT  # every netral.raw.<agency>, consumed together by normalize
    events: faust.TopicT
    cases: faust.TopicT
    case_inputs: faust.TopicT  # events, commands, SIASN results, deadline ticks, purges: cases
    dlq: dict[str, faust.TopicT]


def _bytes_topic(app: faust.App, *names: str) -> faust.TopicT:
    return app.topic(*names, key_type=bytes, value_type=bytes,
                     key_serializer="raw", value_serializer="raw")


def declare_topics(app: faust.App) -> HubTopics:
    return HubTopics(
        raw=_bytes_topic(app, *(t.raw_topic(a) for a in t.Agency)),
        events=_bytes_topic(app, t.EVENTS),
        cases=_bytes_topic(app, t.CASES),
        case_inputs=_bytes_topic(app, t.EVENTS, t.COMMANDS, t.ORDERS_SIASN_RESULTS,
                                 t.DEADLINE_TICKS, t.PURGE_COMMANDS),
        dlq={s.value: _bytes_topic(app, t.dlq_topic(s)) for s in t.DlqStage},
    )
