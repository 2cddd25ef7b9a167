"""Talking to SIASN: the port the adapter needs, and its HTTP implementation.

``SiasnPort`` is all the adapter knows, so a real endpoint (or another transport) can replace the
mock without touching the adapter. ``HttpSiasnClient`` speaks SIASN's auth shape: a gateway OAuth2
client-credentials token in ``Authorization`` and an SSO token in ``Auth`` on every call, both
refreshed before they expire and once more on a 401.

Failure policy, and why:
- Every write carries the order id as ``Idempotency-Key``, so any retry (ours, or a redelivery
  after a crash) has at most one effect; that is what makes retrying a timed-out write safe.
- 5xx, 429, timeouts and connection errors are transient: retried with exponential backoff and
  full jitter (tenacity), at most ``max_attempts`` times per order.
- A circuit breaker (purgatory) opens after ``breaker_threshold`` consecutive transient failures.
  While it is open the order is *held*, not failed: an outage is SIASN's state, not the order's, so
  waiting costs no attempt. After ``breaker_reset_s`` one read-only probe (the order's status)
  tests SIASN; only success lets writes through again. ``max_attempts`` must exceed the threshold,
  so the order in flight when an outage starts reaches the breaker before its budget runs out.
  ``max_hold_s`` bounds the hold, so an order cannot wait forever on a SIASN that never recovers.
- 4xx other than 401/403 reject this order for good (``SiasnRejected``); credentials the token
  endpoints refuse are a ``ConfigError`` and tokens the API refuses right after a refresh a
  ``FatalError``: both stop the adapter rather than fail every order in the topic.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, Self

import httpx
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from schemas.errors import ConfigError, FatalError, HubError, InvalidMessage, RetriableError
from schemas.models.enums import OrderAction
from schemas.models.hub import SiasnOrder
from schemas.nip import mask_nip

log = logging.getLogger(__name__)

BREAKER = "siasn"
Method = Literal["GET", "POST"]


class SiasnConfig(BaseModel):
    """Where SIASN is, the credentials, and the retry/breaker policy (see the module docstring)."""

    model_config = ConfigDict(frozen=True)

    base_url: str = Field(description="Scheme and host, e.g. https://apimws.bkn.go.id:8243")
    api_path: str = "/apisiasn/1.0"
    gateway_token_url: str | None = Field(None, description="Default: base_url + /oauth2/token")
    sso_token_url: str | None = Field(None, description="Default: base_url + /sso/token")
    client_id: str
    client_secret: SecretStr
    username: str
    password: SecretStr
    sso_client_id: str | None = Field(None, description="Sent with the password grant if set")
    timeout_s: float = Field(10.0, gt=0)
    max_attempts: int = Field(8, ge=1, le=100)
    backoff_initial_s: float = Field(0.5, gt=0)
    backoff_max_s: float = Field(30.0, gt=0)
    breaker_threshold: int = Field(5, ge=1)
    breaker_reset_s: float = Field(30.0, gt=0)
    max_hold_s: float = Field(1800.0, gt=0)
    token_refresh_margin_s: float = Field(60.0, ge=0)

    @model_validator(mode="after")
    def _attempts_outlast_breaker(self) -> SiasnConfig:
        if self.max_attempts <= self.breaker_threshold:
            raise ValueError(
                f"max_attempts ({self.max_attempts}) must exceed breaker_threshold "
                f"({self.breaker_threshold}), or an outage fails orders before the breaker opens"
            )
        return self

    def api_url(self, path: str) -> str:
        return f"{self.base_url.rstrip('/')}{self.api_path}{path}"

    def gateway_url(self) -> str:
        return self.gateway_token_url or f"{self.base_url.rstrip('/')}/oauth2/token"

    def sso_url(self) -> str:
        return self.sso_token_url or f"{self.base_url.rstrip('/')}/sso/token"


# -- errors -------------------------------------------------------------------------------------
class SiasnUnavailable(RetriableError):
    """One call failed transiently (5xx, 429, timeout, connection): worth another attempt."""


class SiasnGaveUp(RetriableError):
    """The order's retry budget (or hold time) is spent; SIASN may still accept it later."""

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class SiasnRejected(InvalidMessage):
    """SIASN refused this order for good (4xx): retrying the same request cannot help."""

    def __init__(self, message: str, attempts: int = 1) -> None:
        super().__init__(message)
        self.attempts = attempts


class SiasnAuthError(FatalError):
    """The API refuses tokens that were just issued (401/403): a credentials or rights problem."""


# -- the port -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SiasnReply:
    """SIASN's answer to one order, after however many attempts it took."""

    nip: str
    action: OrderAction
    already_in_effect: bool
    attempts: int
    detail: str


@dataclass(frozen=True)
class BlockStatus:
    """Whether a NIP is blocked in SIASN now."""

    nip: str
    blocked: bool
    scope: str | None
    since: str | None


class SiasnPort(Protocol):
    """What the adapter needs from SIASN; each write is idempotent by ``order.order_id``.

    ``block``/``unblock`` return a reply or raise ``SiasnGaveUp`` / ``SiasnRejected`` (the order
    failed) or ``ConfigError`` / ``FatalError`` (the adapter must stop).
    """

    async def block(self, order: SiasnOrder) -> SiasnReply: ...

    async def unblock(self, order: SiasnOrder) -> SiasnReply: ...

    async def status(self, nip: str) -> BlockStatus: ...


# -- HTTP implementation ------------------------------------------------------------------------
@dataclass
class ClientStats:
    """What the client did, for logs, tests and the benchmark."""

    requests: int = 0
    retries: int = 0
    gateway_tokens: int = 0
    sso_tokens: int = 0
    refreshed_on_401: int = 0
    breaker_opened: int = 0
    probes: int = 0


@dataclass(frozen=True)
class _Token:
    value: str
    refresh_at: float  # on the client's monotonic clock


def _excluded(err: BaseException) -> bool:
    """Errors that say nothing about SIASN's health do not count against the breaker."""
    return not isinstance(err, RetriableError)


class HttpSiasnClient:
    """``SiasnPort`` over HTTP with httpx; use as ``async with HttpSiasnClient(config) as c``."""

    def __init__(self, config: SiasnConfig, *, http: httpx.AsyncClient | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.stats = ClientStats()
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(config.timeout_s))
        self._owns_http = http is None
        self._clock = clock
        self._gateway: _Token | None = None
        self._sso: _Token | None = None
        self._generation = 0  # bumped on each refresh, so concurrent 401s refresh only once
        self._token_lock = asyncio.Lock()
        self._probe_lock = asyncio.Lock()
        self._breakers = AsyncCircuitBreakerFactory(
            default_threshold=config.breaker_threshold, default_ttl=config.breaker_reset_s,
            exclude=[(HubError, _excluded), (asyncio.CancelledError, lambda _: True)],
        )
        self._breakers.add_listener(self._on_breaker_event)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # -- the port ------------------------------------------------------------------------------
    async def block(self, order: SiasnOrder) -> SiasnReply:
        return await self._write(OrderAction.BLOCK, order)

    async def unblock(self, order: SiasnOrder) -> SiasnReply:
        return await self._write(OrderAction.UNBLOCK, order)

    async def status(self, nip: str) -> BlockStatus:
        attempts = 0
        try:
            async for attempt in self._retrying(nip):
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    data = await self._guarded("GET", f"/pns/status-blokir/{nip}", nip=nip)
        except SiasnUnavailable as err:
            raise SiasnGaveUp(f"status of {mask_nip(nip)} unavailable after {attempts} "
                              f"attempts: {err}", attempts) from err
        return _status(nip, data)

    # -- writes --------------------------------------------------------------------------------
    async def _write(self, action: OrderAction, order: SiasnOrder) -> SiasnReply:
        path = (f"/pns/blokir/{order.nip}" if action is OrderAction.BLOCK
                else f"/pns/buka-blokir/{order.nip}")
        body = {"lingkup": order.scope.value, "alasan": order.reason,
                "dasarHukum": order.legal_basis, "nomorKasus": order.case_id,
                "nomorPerintah": order.order_id}
        attempts = 0
        try:
            async for attempt in self._retrying(order.nip):
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    reply = await self._guarded(
                        "POST", path, nip=order.nip, json=body,
                        headers={"Idempotency-Key": order.order_id})
        except SiasnUnavailable as err:
            raise SiasnGaveUp(f"{action} {mask_nip(order.nip)} failed after {attempts} "
                              f"attempts: {err}", attempts) from err
        except SiasnGaveUp as err:
            raise SiasnGaveUp(str(err), max(attempts, 1)) from err
        except SiasnRejected as err:
            raise SiasnRejected(str(err), max(attempts, 1)) from err
        raw = reply.get("data")
        data: dict[str, Any] = raw if isinstance(raw, dict) else {}
        already = bool(data.get("alreadyInEffect", False))
        message = str(reply.get("message") or ("already in effect" if already else "done"))
        return SiasnReply(nip=order.nip, action=action, already_in_effect=already,
                          attempts=attempts, detail=message)

    def _retrying(self, nip: str) -> AsyncRetrying:
        cfg = self.config

        def before_sleep(state: RetryCallState) -> None:
            self.stats.retries += 1
            err = state.outcome.exception() if state.outcome else None
            log.info("SIASN call for %s failed (attempt %d/%d): %s; retrying in %.2fs",
                     mask_nip(nip), state.attempt_number, cfg.max_attempts, err,
                     state.next_action.sleep if state.next_action else 0.0)

        return AsyncRetrying(
            stop=stop_after_attempt(cfg.max_attempts),
            wait=wait_random_exponential(multiplier=cfg.backoff_initial_s, max=cfg.backoff_max_s),
            retry=retry_if_exception_type(SiasnUnavailable),
            before_sleep=before_sleep,
            reraise=True,
        )

    # -- breaker -------------------------------------------------------------------------------
    async def _guarded(self, method: Method, path: str, *, nip: str,
                       json: dict[str, Any] | None = None,
                       headers: dict[str, str] | None = None) -> dict[str, Any]:
        """One attempt, through the breaker; waiting while it is open costs no attempt."""
        while True:
            await self._await_closed(nip)
            breaker = await self._breakers.get_breaker(BREAKER)
            try:
                async with breaker:
                    return await self._request(method, path, json=json, headers=headers)
            except OpenedState:
                continue  # another call opened it between our check and our call

    async def _await_closed(self, nip: str) -> None:
        """Return once the breaker is closed; probe SIASN read-only when a reset is due."""
        held_since: float | None = None
        while True:
            breaker = await self._breakers.get_breaker(BREAKER)
            ctx = breaker.context
            if ctx.state == "closed":
                if held_since is not None:
                    log.warning("SIASN reachable again after %.1fs; resuming",
                                self._clock() - held_since)
                return
            if held_since is None:
                held_since = self._clock()
            held = self._clock() - held_since
            if held > self.config.max_hold_s:
                raise SiasnGaveUp(f"SIASN unavailable: circuit open for {held:.0f}s "
                                  f"(limit {self.config.max_hold_s:.0f}s)", 0)
            if ctx.state != "opened":  # half-open: a trial call is in flight; await its verdict
                await asyncio.sleep(0.05)
                continue
            due = self._reset_due(ctx.opened_at)
            if due > 0:
                await asyncio.sleep(min(due, self.config.max_hold_s - held) + 0.01)
                continue
            async with self._probe_lock:  # one probe at a time; the others wait for its verdict
                breaker = await self._breakers.get_breaker(BREAKER)
                if breaker.context.state != "opened" or self._reset_due(
                        breaker.context.opened_at) > 0:
                    continue  # another probe decided meanwhile
                self.stats.probes += 1
                try:
                    async with breaker:
                        await self._request("GET", f"/pns/status-blokir/{nip}")
                except (OpenedState, SiasnUnavailable) as err:
                    log.info("SIASN probe failed: %s", err)
                except SiasnRejected:
                    pass  # SIASN answered: healthy enough, and the breaker counted a success

    def _reset_due(self, opened_at: float | None) -> float:
        """Seconds until an open breaker lets a trial call through (purgatory uses wall time)."""
        return (opened_at or 0.0) + self.config.breaker_reset_s - time.time()

    def _on_breaker_event(self, name: str, event: str, payload: object) -> None:
        if event == "state_changed":
            state = getattr(payload, "state", "?")
            if state == "opened":
                self.stats.breaker_opened += 1
                log.warning("circuit %s opened after %d consecutive failures: holding orders "
                            "for %.1fs, then probing", name, self.config.breaker_threshold,
                            self.config.breaker_reset_s)
            else:
                log.info("circuit %s %s", name, state)

    # -- one request with both tokens ---------------------------------------------------------
    async def _request(self, method: Method, path: str, *, json: dict[str, Any] | None = None,
                       headers: dict[str, str] | None = None) -> dict[str, Any]:
        generation, gateway, sso = await self._tokens()
        response = await self._send(method, path, gateway, sso, json, headers)
        if response.status_code == 401:
            self.stats.refreshed_on_401 += 1
            log.info("SIASN answered 401 (%s); refreshing both tokens once",
                     _message(response))
            await self._invalidate(generation)
            _, gateway, sso = await self._tokens()
            response = await self._send(method, path, gateway, sso, json, headers)
            if response.status_code == 401:
                raise SiasnAuthError(f"SIASN refuses freshly issued tokens (401: "
                                     f"{_message(response)}): check the client's API rights")
        return _parse(response)

    async def _send(self, method: Method, path: str, gateway: str, sso: str,
                    json: dict[str, Any] | None,
                    headers: dict[str, str] | None) -> httpx.Response:
        self.stats.requests += 1
        all_headers = {"Authorization": f"Bearer {gateway}", "Auth": f"bearer {sso}",
                       "Accept": "application/json", **(headers or {})}
        try:
            return await self._http.request(method, self.config.api_url(path), json=json,
                                            headers=all_headers)
        except httpx.TimeoutException as err:
            raise SiasnUnavailable(f"SIASN timed out ({type(err).__name__})") from err
        except httpx.TransportError as err:
            raise SiasnUnavailable(f"SIASN unreachable: {type(err).__name__}: {err}") from err

    # -- tokens --------------------------------------------------------------------------------
    async def _tokens(self) -> tuple[int, str, str]:
        async with self._token_lock:
            now = self._clock()
            if self._gateway is None or now >= self._gateway.refresh_at:
                self._gateway = await self._fetch_token("gateway")
                self._generation += 1
            if self._sso is None or now >= self._sso.refresh_at:
                self._sso = await self._fetch_token("sso")
                self._generation += 1
            return self._generation, self._gateway.value, self._sso.value

    async def _invalidate(self, generation: int) -> None:
        async with self._token_lock:
            if generation == self._generation:  # nobody refreshed since our call was sent
                self._gateway = self._sso = None

    async def _fetch_token(self, kind: Literal["gateway", "sso"]) -> _Token:
        cfg = self.config
        if kind == "gateway":
            url = cfg.gateway_url()
            form = {"grant_type": "client_credentials"}
            extra: dict[str, Any] = {
                "auth": httpx.BasicAuth(cfg.client_id, cfg.client_secret.get_secret_value())}
            fix = "check the SIASN gateway client id and secret (NETRAL_SIASN_CLIENT_ID/_SECRET)"
        else:
            url = cfg.sso_url()
            form = {"grant_type": "password", "username": cfg.username,
                    "password": cfg.password.get_secret_value()}
            if cfg.sso_client_id:
                form["client_id"] = cfg.sso_client_id
            extra = {}
            fix = "check the SIASN SSO user and password (NETRAL_SIASN_USERNAME/_PASSWORD)"
        try:
            response = await self._http.post(url, data=form, **extra)
        except httpx.TimeoutException as err:
            raise SiasnUnavailable(f"SIASN {kind} token endpoint timed out") from err
        except httpx.TransportError as err:
            raise SiasnUnavailable(f"SIASN {kind} token endpoint unreachable: {err}") from err
        if response.status_code in (400, 401, 403):
            raise ConfigError(f"SIASN {kind} token endpoint refused the credentials "
                              f"({response.status_code} {_message(response)}): {fix}")
        if response.status_code >= 300:
            raise SiasnUnavailable(f"SIASN {kind} token endpoint answered "
                                   f"{response.status_code}")
        try:
            body = response.json()
            value = str(body["access_token"])
            expires_in = float(body.get("expires_in", 300))
        except (ValueError, KeyError, TypeError) as err:
            raise SiasnUnavailable(f"SIASN {kind} token reply unreadable: {err}") from err
        margin = min(cfg.token_refresh_margin_s, expires_in * 0.2)
        if kind == "gateway":
            self.stats.gateway_tokens += 1
        else:
            self.stats.sso_tokens += 1
        return _Token(value=value, refresh_at=self._clock() + expires_in - margin)


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error_description") or body.get("error")
                   or body)[:200]
    return str(body)[:200]


def _parse(response: httpx.Response) -> dict[str, Any]:
    """Map an API answer to data or to the error hierarchy (401 is handled by the caller)."""
    code = response.status_code
    if 200 <= code < 300:
        try:
            body = response.json()
        except ValueError as err:
            raise SiasnUnavailable(f"SIASN answered {code} with unreadable JSON") from err
        if not isinstance(body, dict):
            raise SiasnUnavailable(f"SIASN answered {code} with a non-object body")
        return body
    if code == 403:
        raise SiasnAuthError(f"SIASN forbids this call (403: {_message(response)}): "
                             f"the client lacks the rights for it")
    if code in (408, 425, 429) or code >= 500:
        raise SiasnUnavailable(f"SIASN answered {code}: {_message(response)}")
    raise SiasnRejected(f"SIASN refused the request ({code}: {_message(response)})")


def _status(nip: str, body: dict[str, Any]) -> BlockStatus:
    data = body.get("data")
    if not isinstance(data, dict):
        raise SiasnUnavailable("SIASN status reply has no data object")
    return BlockStatus(nip=nip, blocked=bool(data.get("blokir")),
                       scope=data.get("lingkup"), since=data.get("sejak"))
