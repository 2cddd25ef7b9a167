"""The monitoring half of the app: routers, sessions, ``/health``, ``/metrics`` and the lag
refresher that feeds both the Prometheus gauges and the dashboard's pipeline panel."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from importlib import resources

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from sqlalchemy.exc import SQLAlchemyError
from starlette.middleware.sessions import SessionMiddleware

from schemas.errors import RetriableError
from schemas.kafka import KafkaConnection
from schemas.models import Alert, Severity
from sinks.sql import queries

from ..kafka_admin import cluster_size
from ..lag import LagEpisode, LagWatch, read_lag, watch
from . import audit, dashboard
from .deps import Monitor
from .routes import cases, stats

log = logging.getLogger(__name__)
HEALTH_TIMEOUT_S = 5.0


async def refresh_lag(kafka: KafkaConnection, monitor: Monitor,
                      alert: Callable[[LagEpisode], Awaitable[None]] | None = None) -> None:
    """Keep ``monitor.lag`` current until cancelled; a failed read is kept as the error. A group
    whose lag stays above the threshold long enough gets one alert on netral.alerts."""
    state = LagWatch(monitor.lag_alert_threshold, monitor.lag_alert_after_s)
    while True:
        try:
            snapshot = await read_lag(kafka, groups=monitor.lag_groups,
                                      timeout_s=monitor.lag_timeout_s)
            monitor.lag.snapshot, monitor.lag.error = snapshot, None
            state, due = watch(state, snapshot)
            if alert is not None:
                for episode in due:
                    await alert(episode)
        except RetriableError as err:
            monitor.lag.error = str(err)
            log.warning("lag refresh failed: %s", err)
        await asyncio.sleep(monitor.lag_refresh_s)


def lag_alert(episode: LagEpisode, monitor: Monitor) -> Alert:
    """The ops alert for a group that stays behind (to the national Satgas' region)."""
    region = monitor.lag_alert_region
    return Alert(
        alert_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"netral:ops.lag:{episode.group}:"
                                f"{episode.since.isoformat()}")),
        rule="ops.consumer-lag", severity=Severity.WARNING, region_code=region,
        province_code=region[:2],
        title=f"Consumer group {episode.group} behind"[:120],
        detail=(f"{episode.group} has {episode.lag} messages not yet committed, above "
                f"{monitor.lag_alert_threshold} since {episode.since:%Y-%m-%d %H:%M:%S} UTC "
                f"(alert after {monitor.lag_alert_after_s:.0f} s)"),
        at=monitor.clock(), dedupe_key=f"ops.lag:{episode.group}:{episode.since.isoformat()}")


def install_monitoring(app: FastAPI, kafka: KafkaConnection, monitor: Monitor, *,
                       session_secret: str | None, session_max_age_s: int) -> None:
    registry = CollectorRegistry()
    registry.register(monitor.lag)
    requests = Counter("netral_api_requests", "HTTP requests answered",
                       ["method", "route", "status"], registry=registry)
    latency = Histogram("netral_api_request_seconds", "Time to answer an HTTP request",
                        ["method", "route"], registry=registry)

    @app.middleware("http")
    async def _measure(request: Request,
                       call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        if not name.startswith("/dashboard/stream"):
            latency.labels(request.method, name).observe(time.perf_counter() - start)
        requests.labels(request.method, name, str(response.status_code)).inc()
        return response

    # the secret signs the cookie that holds a key's hash; in dev a random one per process
    app.add_middleware(SessionMiddleware, secret_key=session_secret or secrets.token_urlsafe(32),
                       session_cookie="netral_session", max_age=session_max_age_s,
                       same_site="strict", https_only=False)
    app.include_router(cases.router())
    app.include_router(audit.router())
    app.include_router(stats.router())
    app.include_router(dashboard.router())
    static = resources.files("hub.api").joinpath("static")
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/health", tags=["ops"], responses={503: {"description": "a dependency is down"}})
    async def health() -> JSONResponse:
        """Reachability of the database and the broker (200 only when both answer)."""
        checks: dict[str, str] = {}
        try:
            await asyncio.to_thread(_ping, monitor)
            checks["database"] = "ok"
        except SQLAlchemyError as err:
            checks["database"] = f"unreachable: {type(err).__name__}"
        try:
            brokers = await asyncio.wait_for(cluster_size(kafka), HEALTH_TIMEOUT_S)
            checks["broker"] = f"ok ({brokers} broker{'s' if brokers != 1 else ''})"
        except (RetriableError, TimeoutError) as err:
            checks["broker"] = f"unreachable: {err or 'timed out'}"
        ok = all(v.startswith("ok") for v in checks.values())
        body = {"status": "ok" if ok else "degraded", **checks}
        if not ok:
            body["detail"] = "; ".join(f"{k} {v}" for k, v in checks.items() if v != "ok")
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["ops"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus text format: request counts and latency, consumer lag, DLQ depth."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def _ping(monitor: Monitor) -> None:
    with monitor.engine.connect() as conn:
        queries.ping(conn)
