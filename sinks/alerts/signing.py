"""Webhook signatures: ``X-Netral-Signature: sha256=<hex HMAC-SHA256 of the body>``.

The body itself carries ``sent_at`` (also sent as ``X-Netral-Timestamp``), so the signature covers
the time and a receiver can refuse old replays: :func:`verify` checks the header matches the
signed time and lies within a tolerance. The comparison is constant-time (``hmac.compare_digest``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime

SIGNATURE_HEADER = "X-Netral-Signature"
TIMESTAMP_HEADER = "X-Netral-Timestamp"
DELIVERY_HEADER = "X-Netral-Delivery"
RECIPIENT_HEADER = "X-Netral-Recipient"
SCHEME = "sha256="


def signature(secret: bytes, body: bytes) -> str:
    """The header value for ``body`` under ``secret``."""
    return SCHEME + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str | None, timestamp: str | None, *,
           now: datetime, tolerance_s: float) -> str | None:
    """None if ``body`` is authentic and fresh, else why not (for the 401 answer)."""
    if not header or not header.startswith(SCHEME):
        return f"missing or malformed {SIGNATURE_HEADER}"
    if not hmac.compare_digest(signature(secret, body), header):
        return "signature does not match the body"
    if timestamp is None:
        return f"missing {TIMESTAMP_HEADER}"
    try:
        signed = json.loads(body).get("sent_at")
        sent = datetime.fromisoformat(str(signed))
    except (ValueError, AttributeError):
        return "body has no valid sent_at"
    if str(int(sent.timestamp())) != timestamp.strip():
        return f"{TIMESTAMP_HEADER} does not match the signed sent_at"
    if abs((now - sent).total_seconds()) > tolerance_s:
        return f"sent_at is more than {tolerance_s:.0f}s from now (a replay?)"
    return None
