"""What a recipient receives: one alert or a digest, rendered for each channel (pure).

Every channel gets the same content: a subject line, a plain-text body, an HTML body (email), a
short HTML text in Telegram's subset (chat) and a JSON payload (webhook). Values are escaped in
the HTML forms. ``delivery_id`` is stable for the same (alert, recipient, channel), so a receiver
can drop the rare repeat after a crash between sending and recording.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from schemas import regions

from .masking import AlertView

NAMESPACE = uuid.UUID("5f0c8a52-7a1e-4e43-9a55-6e6574726c41")
CHAT_LIMIT = 4096  # Telegram's sendMessage text limit


def delivery_id(*parts: str) -> str:
    """uuid5 over the parts: the same delivery always has the same id."""
    return str(uuid.uuid5(NAMESPACE, "\x1f".join(parts)))


@dataclass(frozen=True)
class Message:
    """One notification to one recipient on one channel, in every form a channel needs."""

    delivery_id: str
    recipient_id: str
    kind: Literal["alert", "digest"]
    subject: str
    text: str
    html: str
    chat_text: str
    payload: dict[str, object] = field(default_factory=dict)


def _region(code: str) -> str:
    try:
        return f"{regions.name_of(code)} ({code})"
    except ValueError:
        return code


def _facts(v: AlertView) -> list[tuple[str, str]]:
    facts = [("Severity", v.severity), ("Region", _region(v.region_code)), ("Rule", v.rule),
             ("At", v.at.strftime("%Y-%m-%d %H:%M UTC"))]
    if v.case_id:
        facts.append(("Case", v.case_id))
    if v.nip:
        facts.append(("NIP", v.nip))
    if v.agency_name:
        facts.append(("Agency", v.agency_name))
    return facts


def _subject_line(v: AlertView) -> str:
    return f"[{v.severity}] {v.title}"


def alert_message(view: AlertView, *, recipient_id: str, recipient_name: str, channel: str,
                  dedupe_key: str) -> Message:
    """One alert for one recipient's channel."""
    facts = _facts(view)
    text = "\n".join([
        f"{recipient_name}: {_subject_line(view)}", "",
        *(f"{k}: {val}" for k, val in facts), "", view.detail,
    ])
    e = html.escape
    rows = "".join(f"<tr><th align='left'>{e(k)}</th><td>{e(val)}</td></tr>" for k, val in facts)
    body_html = (f"<html><body><h2>{e(_subject_line(view))}</h2><table>{rows}</table>"
                 f"<p>{e(view.detail)}</p><p><small>netral hub, for {e(recipient_name)}"
                 f"</small></p></body></html>")
    chat = (f"<b>{e(_subject_line(view))}</b>\n"
            + "\n".join(f"{e(k)}: {e(val)}" for k, val in facts) + f"\n\n{e(view.detail)}")
    return Message(
        delivery_id=delivery_id(dedupe_key, recipient_id, channel), recipient_id=recipient_id,
        kind="alert", subject=f"netral {_subject_line(view)}"[:300], text=text, html=body_html,
        chat_text=chat[:CHAT_LIMIT],
        payload={"type": "netral.alert", "alert": view.to_json()},
    )


def digest_message(views: Sequence[AlertView], *, recipient_id: str, recipient_name: str,
                   channel: str, window_end: datetime, keys: Sequence[str]) -> Message:
    """Several alerts of one burst in one notification."""
    n = len(views)
    worst = max((v.severity for v in views), key=["INFO", "WARNING", "CRITICAL"].index)
    subject = f"netral [{worst}] digest: {n} more alerts until {window_end:%H:%M} UTC"
    lines = [f"- [{v.severity}] {v.title} ({_region(v.region_code)}"
             + (f", case {v.case_id}" if v.case_id else "") + ")" for v in views]
    text = "\n".join([f"{recipient_name}: {n} alerts grouped into one digest "
                      f"(burst until {window_end.isoformat()}).", "", *lines])
    e = html.escape
    items = "".join(f"<li><b>[{e(v.severity)}]</b> {e(v.title)} ({e(_region(v.region_code))}"
                    + (f", case {e(v.case_id)}" if v.case_id else "") + ")</li>" for v in views)
    body_html = (f"<html><body><h2>{e(subject)}</h2><ul>{items}</ul><p><small>netral hub, for "
                 f"{e(recipient_name)}</small></p></body></html>")
    chat = f"<b>{e(subject)}</b>\n" + "\n".join(e(line) for line in lines)
    if len(chat) > CHAT_LIMIT:
        chat = chat[:CHAT_LIMIT - 2] + "\n…"
    return Message(
        delivery_id=delivery_id("digest", recipient_id, channel, window_end.isoformat(),
                                *sorted(keys)),
        recipient_id=recipient_id, kind="digest", subject=subject[:300], text=text,
        html=body_html, chat_text=chat,
        payload={"type": "netral.alert.digest", "window_end": window_end.isoformat(),
                 "count": n, "alerts": [v.to_json() for v in views]},
    )
