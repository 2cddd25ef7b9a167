"""Assembly of the HTTP app. The Kafka producer lives in the app's lifespan (started on startup,
flushed and stopped on shutdown); routers get it through a publish function.

Without a :class:`~hub.api.deps.Monitor` the app is the ingest alone; with one it also serves the
monitoring API (``/v1/cases`` ...), the dashboard (``/dashboard``), ``/metrics`` and a
``/health`` that checks the database and the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from connectors.ingest import IngestLimits, ingest_router
from connectors.keys import KeyStore
from schemas.codec import AvroCodec
from schemas.errors import RetriableError
from schemas.kafka import KafkaConnection, kafka_failure
from schemas.models.raw import RawRecord
from schemas.topics import ALERTS, raw_topic

from ..audit_relay import AuditRelay, relay_forever
from ..lag import LagEpisode
from .deps import Monitor
from .ops import install_monitoring, lag_alert, refresh_lag
from .security import BodyLimit, SecurityHeaders

log = logging.getLogger(__name__)


def _report_crash(task: asyncio.Task[None]) -> None:
    """A background task that ended by itself is a bug: say so at once, not at shutdown."""
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped: %r", task.get_name(), task.exception())


def create_app(kafka: KafkaConnection, keys: KeyStore, limits: IngestLimits,
               codec: AvroCodec | None = None, *, monitor: Monitor | None = None,
               session_secret: str | None = None, session_max_age_s: int = 8 * 3600,
               cors_origins: Sequence[str] = (), max_body_bytes: int | None = None
               ) -> FastAPI:
    """The API app. CORS is closed unless ``cors_origins`` lists origins; every body is capped
    at ``max_body_bytes`` (default: the ingest limit); security headers on every answer."""
    codec = codec or AvroCodec()
    state: dict[str, AIOKafkaProducer] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        producer = AIOKafkaProducer(**kafka.aiokafka_kwargs(), acks="all",
                                    enable_idempotence=True, linger_ms=2,
                                    max_request_size=limits.max_bytes * 4)
        await producer.start()
        state["producer"] = producer
        tasks = []
        if monitor is not None:
            tasks.append(asyncio.create_task(refresh_lag(kafka, monitor, alert_lag),
                                             name="lag-refresh"))
            if monitor.audit_relay_s > 0:
                relay = AuditRelay(monitor.engine, kafka, codec)
                task = asyncio.create_task(relay_forever(relay, monitor.audit_relay_s),
                                           name="audit-relay")
                task.add_done_callback(_report_crash)
                tasks.append(task)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await producer.stop()

    async def send(topic: str, key: bytes, value: bytes) -> tuple[int, int]:
        try:
            meta = await (await state["producer"].send(topic, value=value, key=key))
        except KafkaError as err:
            raise RetriableError(str(err)) from err
        return meta.partition, meta.offset

    async def alert_lag(episode: LagEpisode) -> None:
        assert monitor is not None
        record = lag_alert(episode, monitor)
        await send(ALERTS, record.region_code.encode(),
                   codec.encode_record(record, topic=ALERTS))
        log.warning("consumer group %s behind: alert %s", episode.group, record.alert_id)

    async def publish(records: Sequence[RawRecord]) -> None:
        producer = state["producer"]
        try:
            futures = []
            for r in records:
                topic = raw_topic(r.agency)
                value = codec.encode_record(r, topic=topic)
                futures.append(await producer.send(topic, value=value, key=r.source_id.encode()))
            await asyncio.gather(*futures)
        except KafkaError as err:
            failure = kafka_failure(err, kafka, "publish the ingest batch")
            if isinstance(failure, RetriableError):
                raise failure from err
            # a missing ACL or bad credentials is the operator's to fix, not the agency's to retry
            log.error("ingest: %s", failure)
            raise RetriableError(str(failure)) from None

    app = FastAPI(title="netral hub API", version="0.1.0", lifespan=lifespan,
                  description="Ingest for agencies without a Kafka client. Authenticate with "
                              "the X-API-Key header issued by `netral api-key add`.")
    app.state.codec = codec
    app.state.send = send
    app.include_router(ingest_router(keys, publish, limits))
    # Outermost last: the size cap runs before anything reads the body, headers on every answer.
    app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET",
                       "POST"], allow_headers=["X-API-Key", "Content-Type", "Authorization"],
                       allow_credentials=False, max_age=600)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes or limits.max_bytes)
    app.add_middleware(SecurityHeaders)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"detail": f"{where}: {first.get('msg')}"}, status_code=422)

    if monitor is None:
        @app.get("/health", tags=["ops"])
        async def health() -> dict[str, str]:
            return {"status": "ok"}
        return app

    app.state.monitor = monitor
    install_monitoring(app, kafka, monitor, session_secret=session_secret,
                       session_max_age_s=session_max_age_s)

    @app.exception_handler(SQLAlchemyError)
    async def _database_down(_: Request, err: SQLAlchemyError) -> JSONResponse:
        log.warning("database error: %s", type(err).__name__)
        return JSONResponse({"detail": "the national record's database is unavailable; "
                                       "retry later"}, status_code=503,
                            headers={"Retry-After": "5"})

    return app
