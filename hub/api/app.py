"""Assembly of the HTTP app. The Kafka producer lives in the app's lifespan (started on startup,
flushed and stopped on shutdown); routers get it through a publish function."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from connectors.ingest import IngestLimits, ingest_router
from connectors.keys import KeyStore
from schemas.codec import AvroCodec
from schemas.errors import RetriableError
from schemas.kafka import KafkaConnection, kafka_failure
from schemas.models.raw import RawRecord
from schemas.topics import raw_topic

from .security import BodyLimit, SecurityHeaders

log = logging.getLogger(__name__)


def create_app(kafka: KafkaConnection, keys: KeyStore, limits: IngestLimits,
               codec: AvroCodec | None = None, *, cors_origins: Sequence[str] = (),
               max_body_bytes: int | None = None) -> FastAPI:
    """The API app. CORS is closed unless ``cors_origins`` lists origins; every body is capped
    at ``max_body_bytes`` (default: the ingest limit)."""
    codec = codec or AvroCodec()
    state: dict[str, AIOKafkaProducer] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        producer = AIOKafkaProducer(**kafka.aiokafka_kwargs(), acks="all",
                                    enable_idempotence=True, linger_ms=2,
                                    max_request_size=limits.max_bytes * 4)
        await producer.start()
        state["producer"] = producer
        try:
            yield
        finally:
            await producer.stop()

    async def publish(records: Sequence[RawRecord]) -> None:
        producer = state["producer"]
        try:
            futures = []
            for r in records:
                topic = raw_topic(r.agency)
                value = codec.encode(r.avro_name, r.to_avro(), topic=topic)
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

    @app.get("/health", tags=["ops"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
