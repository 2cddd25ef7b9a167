"""A small local webhook receiver for the demo and the tests: the Satgas's end of the wire.

``POST /webhook/{recipient}`` verifies ``X-Netral-Signature`` (HMAC-SHA256 of the body) under
that recipient's secret and the signed timestamp, answering 401 with the reason otherwise;
``POST /bot{token}/sendMessage`` stands in for a Telegram-style chat bot. Both append what they
accept as one JSON line to the output file; ``GET /_received`` returns those lines (tests read
it). ``fail_first`` answers 503 to the first N deliveries, to show retries.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from sinks.alerts.routes import Routes, WebhookChannel
from sinks.alerts.signing import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify,
)


@dataclass(frozen=True)
class ReceiverConfig:
    """Secrets per recipient id, where to append, and the faults to inject."""

    secrets: Mapping[str, tuple[bytes, ...]]
    out_file: Path
    tolerance_s: float = 300.0
    fail_first: int = 0
    fail_status: int = 503


def secrets_of(routes: Routes) -> dict[str, tuple[bytes, ...]]:
    """Each recipient's webhook secrets, from the same routes file the sender uses."""
    return {r.id: tuple(c.secret.get_secret_value().encode() for c in r.channels
                        if isinstance(c, WebhookChannel))
            for r in routes.recipients}


def create_receiver_app(config: ReceiverConfig,
                        clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> FastAPI:
    app = FastAPI(title="netral alert receiver (local)", docs_url=None, redoc_url=None)
    lock = threading.Lock()
    state = {"requests": 0, "refused": 0}
    config.out_file.parent.mkdir(parents=True, exist_ok=True)

    def append(entry: dict[str, Any]) -> None:
        with lock, config.out_file.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def fault() -> JSONResponse | None:
        with lock:
            state["requests"] += 1
            if state["requests"] <= config.fail_first:
                return JSONResponse({"error": "injected failure"},
                                    status_code=config.fail_status)
        return None

    @app.post("/webhook/{recipient}")
    async def webhook(recipient: str, request: Request) -> JSONResponse:
        if (failure := fault()) is not None:
            return failure
        body = await request.body()
        secrets = config.secrets.get(recipient, ())
        why = "unknown recipient" if not secrets else "no secret matched"
        for secret in secrets:
            why = verify(secret, body, request.headers.get(SIGNATURE_HEADER),
                         request.headers.get(TIMESTAMP_HEADER), now=clock(),
                         tolerance_s=config.tolerance_s) or ""
            if not why:
                break
        if why:
            with lock:
                state["refused"] += 1
            return JSONResponse({"error": why}, status_code=401)
        append({"kind": "webhook", "recipient": recipient, "verified": True,
                "delivery_id": request.headers.get(DELIVERY_HEADER),
                "received_at": clock().isoformat(), "body": json.loads(body)})
        return JSONResponse({"ok": True})

    @app.post("/bot{token}/sendMessage")
    async def chat(token: str, request: Request) -> JSONResponse:
        if (failure := fault()) is not None:
            return failure
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"ok": False, "description": "body is no JSON"}, status_code=400)
        if not isinstance(body, dict) or "chat_id" not in body or not body.get("text"):
            return JSONResponse({"ok": False, "description": "chat_id and text are required"},
                                status_code=400)
        append({"kind": "chat", "bot": token[:4] + "...", "received_at": clock().isoformat(),
                "body": body})
        with lock:
            message_id = state["requests"]
        return JSONResponse({"ok": True, "result": {"message_id": message_id,
                                                    "chat": {"id": body["chat_id"]},
                                                    "text": body["text"]}})

    @app.get("/_received")
    async def received() -> JSONResponse:
        lines = []
        if config.out_file.exists():
            with lock:
                text = config.out_file.read_text(encoding="utf-8")
            lines = [json.loads(line) for line in text.splitlines() if line.strip()]
        return JSONResponse({"received": lines, "requests": state["requests"],
                             "refused": state["refused"]})

    return app
