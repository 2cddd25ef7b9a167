"""HTTP hardening shared by every route of the API: security headers and a body-size cap.

Pure ASGI middlewares (no per-request task or body copy as with ``BaseHTTPMiddleware``). CORS is
Starlette's own middleware, configured in :mod:`hub.api.app` closed by default.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Responses carry personal data: no caching, no framing, no sniffing, nothing loaded from them.
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)
STRICT_CSP = b"default-src 'none'; frame-ancestors 'none'"
# HTML pages (the dashboard): scripts only from this origin (htmx is served from /static), the
# inline <style> and style attributes the templates use, SSE and forms back to this origin.
PAGE_CSP = (b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            b"img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
            b"frame-ancestors 'none'")
# The interactive docs load Swagger UI / ReDoc from their CDN; everything else gets STRICT_CSP.
DOCS_CSP = (b"default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            b"style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            b"img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; "
            b"frame-ancestors 'none'")
DOCS_PATHS = ("/docs", "/redoc")
STATIC_PATHS = ("/static/",)
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


class SecurityHeaders:
    """Adds the security headers to every HTTP response (HSTS only when served over TLS)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        static = path.startswith(STATIC_PATHS)
        # the shipped static files may be cached; everything else may carry personal data
        base = [h for h in HEADERS if not (static and h[0] == b"cache-control")]
        if scope.get("scheme") == "https":
            base.append(HSTS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                html = any(k.lower() == b"content-type" and v.startswith(b"text/html")
                           for k, v in headers)
                csp = (DOCS_CSP if path.startswith(DOCS_PATHS)
                       else PAGE_CSP if html else STRICT_CSP)
                extra = [*base, (b"content-security-policy", csp)]
                message["headers"] = [*headers, *(h for h in extra if h[0] not in present)]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """413 before reading a body whose Content-Length exceeds ``max_bytes``, and stops reading
    a streamed (chunked) body as soon as it passes the cap: nothing large is ever buffered."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope.get("headers", []))
        if length is not None and length > self.max_bytes:
            await _too_large(send, f"body of {length} bytes exceeds {self.max_bytes}")
            return
        seen = 0
        responded = False

        async def capped_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal responded
            if message["type"] == "http.response.start":
                responded = True
            await send(message)

        try:
            await self.app(scope, capped_receive, tracking_send)
        except _BodyTooLarge:
            if not responded:
                await _too_large(send, f"body exceeds {self.max_bytes} bytes")


class _BodyTooLarge(Exception):
    pass


def _content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    for key, value in headers:
        if key.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send: Send, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *HEADERS,
                            (b"content-security-policy", STRICT_CSP)]})
    await send({"type": "http.response.body", "body": body})
