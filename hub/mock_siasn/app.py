"""The mock SIASN as a FastAPI app: token endpoints, personnel data, block/unblock/status per NIP.

SIASN's real API is not public; third-party clients show the base path ``/apisiasn/1.0`` and two
tokens on each call: a gateway OAuth2 token (``Authorization: Bearer``) and an SSO token (``Auth:
bearer``). There is no public blocking endpoint, so the write endpoints here are ours, shaped like
the rest. What the adapter's guarantees rest on is modelled exactly:

- every write needs an ``Idempotency-Key``; a replayed key answers the stored first response and
  has no second effect, and a key reused for another request is refused (422);
- blocking a blocked NIP (or unblocking an unblocked one) answers 200 with ``alreadyInEffect``;
- faults are injected before any effect (``error_rate``, outages), except ``lost_reply_rate``,
  which applies the effect and then answers 500, as when a reply is lost on the way back;
- ``/_test/*`` exposes the log of effective state changes, which is what the tests count.

Single event loop, and no ``await`` between reading and changing state, so no locks are needed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse

from schemas.nip import Gender, parse_nip

API_BASE = "/apisiasn/1.0"
GATEWAY_TOKEN_PATH = "/oauth2/token"
SSO_TOKEN_PATH = "/sso/token"

Action = Literal["BLOCK", "UNBLOCK"]
TokenKind = Literal["gateway", "sso", "all"]
IdemKey = Annotated[str | None, Header(alias="Idempotency-Key")]


@dataclass(frozen=True)
class MockConfig:
    """Credentials the mock accepts, token lifetimes, and the faults it injects."""

    client_id: str = "netral-dev"
    client_secret: str = "netral-dev-secret"
    username: str = "netral-operator"
    password: str = "netral-dev-password"
    gateway_token_ttl_s: int = 3600
    sso_token_ttl_s: int = 1800
    error_rate: float = 0.0
    lost_reply_rate: float = 0.0
    latency_ms: int = 0
    outage_seconds: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("error_rate", "lost_reply_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        if self.gateway_token_ttl_s < 1 or self.sso_token_ttl_s < 1:
            raise ValueError("token lifetimes must be at least 1 second")
        if self.latency_ms < 0 or self.outage_seconds < 0:
            raise ValueError("latency_ms and outage_seconds must not be negative")


@dataclass(frozen=True)
class Effect:
    """One effective state change of one NIP: what the tests count to prove exactly-once."""

    seq: int
    nip: str
    action: Action
    idempotency_key: str
    scope: str
    at: str  # ISO-8601 UTC


@dataclass(frozen=True)
class _Block:
    scope: str
    since: str
    idempotency_key: str


@dataclass(frozen=True)
class _Stored:
    fingerprint: tuple[str, str]  # (action, nip): a key must never be reused for another request
    status: int
    body: dict[str, Any]


@dataclass
class Stats:
    """Counters the tests read to prove that a fault or a refresh actually happened."""

    calls: int = 0
    injected_errors: int = 0
    outage_rejections: int = 0
    unauthorized: int = 0
    gateway_tokens_issued: int = 0
    sso_tokens_issued: int = 0
    replays: int = 0
    lost_replies: int = 0
    writes_refused: int = 0


class MockError(Exception):
    """An error answer, rendered as SIASN-style JSON by the app's exception handler."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass
class MockState:
    """Everything the mock remembers; ``reset`` brings it back to a fresh start."""

    config: MockConfig
    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(init=False)
    gateway_tokens: dict[str, float] = field(init=False)
    sso_tokens: dict[str, float] = field(init=False)
    blocks: dict[str, _Block] = field(init=False)
    idempotency: dict[str, _Stored] = field(init=False)
    effects: list[Effect] = field(init=False)
    failing_writes: set[str] = field(init=False)
    outage_until: float = field(init=False)
    stats: Stats = field(init=False)

    def __post_init__(self) -> None:
        self.reset()
        self.outage_until = self.clock() + self.config.outage_seconds

    def reset(self) -> None:
        self.rng = random.Random(self.config.seed)
        self.gateway_tokens, self.sso_tokens = {}, {}
        self.blocks, self.idempotency, self.effects = {}, {}, []
        self.failing_writes = set()
        self.outage_until = 0.0
        self.stats = Stats()

    # -- tokens ----------------------------------------------------------------------------------
    def issue(self, kind: Literal["gateway", "sso"]) -> tuple[str, int]:
        token = secrets.token_urlsafe(24)
        if kind == "gateway":
            ttl = self.config.gateway_token_ttl_s
            self.gateway_tokens[token] = self.clock() + ttl
            self.stats.gateway_tokens_issued += 1
        else:
            ttl = self.config.sso_token_ttl_s
            self.sso_tokens[token] = self.clock() + ttl
            self.stats.sso_tokens_issued += 1
        return token, ttl

    def revoke(self, kind: TokenKind) -> None:
        if kind in ("gateway", "all"):
            self.gateway_tokens.clear()
        if kind in ("sso", "all"):
            self.sso_tokens.clear()

    def check_tokens(self, authorization: str | None, auth: str | None) -> None:
        for name, header, store in (("gateway", authorization, self.gateway_tokens),
                                    ("SSO", auth, self.sso_tokens)):
            scheme, _, token = (header or "").partition(" ")
            if scheme.lower() != "bearer" or not token:
                self.stats.unauthorized += 1
                header_name = "Authorization" if name == "gateway" else "Auth"
                raise MockError(401, f"Invalid Credentials: missing {name} token "
                                     f"(header {header_name}: Bearer <token>)")
            expiry = store.get(token.strip())
            if expiry is None or expiry <= self.clock():
                self.stats.unauthorized += 1
                why = "unknown" if expiry is None else "expired"
                raise MockError(401, f"Invalid Credentials: {name} token {why}")

    # -- faults ----------------------------------------------------------------------------------
    async def faults(self) -> None:
        """Latency, then outage, then random errors: all before auth and before any effect."""
        self.stats.calls += 1
        if self.config.latency_ms:
            await asyncio.sleep(self.config.latency_ms / 1000)
        remaining = self.outage_until - self.clock()
        if remaining > 0:
            self.stats.outage_rejections += 1
            raise MockError(503, "Service Unavailable: SIASN is under maintenance",
                            {"Retry-After": str(max(1, round(remaining)))})
        if self.config.error_rate and self.rng.random() < self.config.error_rate:
            self.stats.injected_errors += 1
            status = self.rng.choice((500, 503))
            raise MockError(status, "Internal Server Error" if status == 500
                            else "Service Unavailable")

    # -- writes ----------------------------------------------------------------------------------
    def write(self, action: Action, nip: str, key: str | None,
              body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Apply one block or unblock at most once per idempotency key; return (status, body)."""
        if not key:
            raise MockError(400, "header Idempotency-Key is required for every write")
        _check_nip(nip)
        if nip in self.failing_writes:
            self.stats.writes_refused += 1
            raise MockError(500, "Internal Server Error: record cannot be updated")
        stored = self.idempotency.get(key)
        if stored is not None:
            if stored.fingerprint != (action, nip):
                raise MockError(422, f"Idempotency-Key {key!r} was already used for another "
                                     f"request ({stored.fingerprint[0]} {stored.fingerprint[1]})")
            self.stats.replays += 1
            return self._maybe_lose(stored.status, stored.body)
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        current = self.blocks.get(nip)
        scope = str(body.get("lingkup") or "ALL_SERVICES")
        already = current is not None if action == "BLOCK" else current is None
        if not already:
            if action == "BLOCK":
                self.blocks[nip] = _Block(scope=scope, since=now, idempotency_key=key)
            else:
                self.blocks.pop(nip)
            self.effects.append(Effect(seq=len(self.effects) + 1, nip=nip, action=action,
                                       idempotency_key=key, scope=scope, at=now))
        verb = "diblokir" if action == "BLOCK" else "dibuka blokirnya"
        payload = {
            "code": 1,
            "message": f"NIP {'sudah' if already else 'berhasil'} {verb}",
            "data": {**self.status_of(nip), "action": action, "alreadyInEffect": already,
                     "idempotencyKey": key, "processedAt": now},
        }
        self.idempotency[key] = _Stored(fingerprint=(action, nip), status=200, body=payload)
        return self._maybe_lose(200, payload)

    def _maybe_lose(self, status: int, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.config.lost_reply_rate and self.rng.random() < self.config.lost_reply_rate:
            self.stats.lost_replies += 1
            raise MockError(500, "Internal Server Error")
        return status, body

    def status_of(self, nip: str) -> dict[str, Any]:
        block = self.blocks.get(nip)
        return {"nip": nip, "blokir": block is not None,
                "lingkup": block.scope if block else None,
                "sejak": block.since if block else None}


def _check_nip(nip: str) -> None:
    try:
        parse_nip(nip, date.today())
    except ValueError:
        raise MockError(404, "Data tidak ditemukan: NIP tidak dikenal") from None


_GIVEN = ("Agus", "Budi", "Dewi", "Eko", "Fitri", "Hendra", "Indah", "Joko", "Kartika", "Lestari",
          "Made", "Nur", "Putu", "Rina", "Sri", "Teguh", "Wahyu", "Yuliana")
_FAMILY = ("Santoso", "Wijaya", "Saputra", "Siregar", "Nasution", "Hidayat", "Pratama",
           "Kurniawan", "Lubis", "Setiawan", "Wibowo", "Simanjuntak", "Rahmawati", "Utami")
_AGENCIES = ("Pemerintah Kota Bandung", "Pemerintah Kabupaten Sleman", "Kementerian Dalam Negeri",
             "Pemerintah Provinsi Jawa Timur", "Badan Kepegawaian Negara",
             "Pemerintah Kabupaten Gowa", "Pemerintah Kota Medan")
_POSITIONS = ("Analis Kebijakan", "Pranata Komputer", "Guru Ahli Pertama", "Kepala Seksi",
              "Penyuluh Pertanian", "Auditor Muda", "Perencana Ahli Muda")
_GRADES = ("II/c", "III/a", "III/b", "III/c", "III/d", "IV/a")


def _data_utama(nip: str) -> dict[str, Any]:
    """Fake but deterministic personnel data: the same NIP always gives the same person."""
    info = parse_nip(nip, date.today())
    h = hashlib.sha256(nip.encode()).digest()
    return {
        "id": str(uuid.UUID(bytes=h[:16])),
        "nipBaru": nip,
        "nipLama": str(int.from_bytes(h[16:20], "big") % 10**9).zfill(9),
        "nama": f"{_GIVEN[h[0] % len(_GIVEN)]} {_FAMILY[h[1] % len(_FAMILY)]}",
        "tglLahir": info.birth_date.strftime("%d-%m-%Y"),
        "jenisKelamin": "Pria" if info.gender is Gender.MALE else "Wanita",
        "tmtCpns": f"01-{info.cpns_start[1]:02d}-{info.cpns_start[0]}",
        "statusPegawai": "PNS",
        "kedudukanPnsNama": "Aktif",
        "instansiIndukNama": _AGENCIES[h[2] % len(_AGENCIES)],
        "jabatanNama": _POSITIONS[h[3] % len(_POSITIONS)],
        "golRuangAkhir": _GRADES[h[4] % len(_GRADES)],
    }


def _form(raw: bytes) -> dict[str, str]:
    """application/x-www-form-urlencoded, parsed without python-multipart (one dep less)."""
    return {k: v[0] for k, v in parse_qs(raw.decode("latin-1")).items()}


def _basic(authorization: str | None) -> tuple[str, str] | None:
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(value).decode().partition(":")
    except ValueError:
        return None
    return user, password


def create_app(config: MockConfig | None = None) -> FastAPI:
    """A fresh mock SIASN; all its state lives in ``app.state.siasn`` (no module globals)."""
    state = MockState(config or MockConfig())
    app = FastAPI(title="mock SIASN", version="1.0", docs_url="/_docs", redoc_url=None)
    app.state.siasn = state

    @app.exception_handler(MockError)
    async def _mock_error(_: Request, err: MockError) -> JSONResponse:
        return JSONResponse({"code": 0, "message": err.message}, status_code=err.status,
                            headers=err.headers)

    # -- token endpoints (outside the API base path, as on the real gateway and SSO) -------------
    @app.post(GATEWAY_TOKEN_PATH)
    async def gateway_token(request: Request) -> JSONResponse:
        """OAuth2 client credentials; the client may authenticate by Basic auth or form fields."""
        form = _form(await request.body())
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        creds = _basic(request.headers.get("authorization")) or (
            form.get("client_id", ""), form.get("client_secret", ""))
        if creds != (state.config.client_id, state.config.client_secret):
            return JSONResponse({"error": "invalid_client",
                                 "error_description": "client authentication failed"},
                                status_code=401)
        token, ttl = state.issue("gateway")
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": ttl,
                             "scope": "default"})

    @app.post(SSO_TOKEN_PATH)
    async def sso_token(request: Request) -> JSONResponse:
        """Resource-owner password grant, as SIASN's SSO issues its user tokens."""
        form = _form(await request.body())
        if form.get("grant_type", "password") != "password":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if (form.get("username"), form.get("password")) != (state.config.username,
                                                            state.config.password):
            return JSONResponse({"error": "invalid_grant",
                                 "error_description": "Invalid user credentials"},
                                status_code=401)
        token, ttl = state.issue("sso")
        return JSONResponse({"access_token": token, "token_type": "bearer", "expires_in": ttl})

    # -- the API ---------------------------------------------------------------------------------
    async def gate(authorization: Annotated[str | None, Header()] = None,
                   auth: Annotated[str | None, Header()] = None) -> None:
        await state.faults()
        state.check_tokens(authorization, auth)

    api = APIRouter(prefix=API_BASE, dependencies=[Depends(gate)], tags=["pns"])

    async def _body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if not raw:
            return {}
        try:
            data = await request.json()
        except ValueError:
            raise MockError(400, "body must be JSON") from None
        if not isinstance(data, dict):
            raise MockError(400, "body must be a JSON object")
        return data

    @api.get("/pns/data-utama/{nip}")
    async def data_utama(nip: str) -> dict[str, Any]:
        _check_nip(nip)
        return {"code": 1, "data": _data_utama(nip)}

    @api.get("/pns/status-blokir/{nip}")
    async def status_blokir(nip: str) -> dict[str, Any]:
        _check_nip(nip)
        return {"code": 1, "data": state.status_of(nip)}

    @api.post("/pns/blokir/{nip}")
    async def blokir(nip: str, request: Request, key: IdemKey = None) -> JSONResponse:
        status, body = state.write("BLOCK", nip, key, await _body(request))
        return JSONResponse(body, status_code=status)

    @api.post("/pns/buka-blokir/{nip}")
    async def buka_blokir(nip: str, request: Request, key: IdemKey = None) -> JSONResponse:
        status, body = state.write("UNBLOCK", nip, key, await _body(request))
        return JSONResponse(body, status_code=status)

    app.include_router(api)

    # -- test controls (no auth: the mock runs on loopback only) --------------------------------
    test = APIRouter(prefix="/_test", tags=["test"])

    @test.get("/effects")
    async def effects() -> dict[str, Any]:
        return {"count": len(state.effects), "effects": [asdict(e) for e in state.effects]}

    @test.get("/stats")
    async def stats() -> dict[str, Any]:
        return asdict(state.stats)

    @test.post("/reset")
    async def reset() -> dict[str, Any]:
        state.reset()
        return {"reset": True}

    @test.post("/outage")
    async def outage(seconds: Annotated[float, Query(ge=0, le=86400)]) -> dict[str, Any]:
        state.outage_until = state.clock() + seconds
        return {"outage_seconds": seconds}

    @test.post("/revoke-tokens")
    async def revoke(kind: TokenKind = "all") -> dict[str, Any]:
        state.revoke(kind)
        return {"revoked": kind}

    @test.post("/fail-writes")
    async def fail_writes(nip: str) -> dict[str, Any]:
        state.failing_writes.add(nip)
        return {"failing": sorted(state.failing_writes)}

    app.include_router(test)
    return app
