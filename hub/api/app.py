"""Assembly of the HTTP app. The Kafka producer lives in the app's lifespan (started on startup,
flushed and stopped on shutdown); routers get it through a publish function."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from connectors.ingest import IngestLimits, ingest_router
from connectors.keys import KeyStore
from schemas.codec import AvroCodec
from schemas.errors import RetriableError
from schemas.kafka import KafkaConnection
from schemas.models.raw import RawRecord
from schemas.topics import raw_topic


def create_app(kafka: KafkaConnection, keys: KeyStore, limits: IngestLimits,
               codec: AvroCodec | None = None) -> FastAPI:
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
            raise RetriableError(str(err)) from err

    app = FastAPI(title="netral hub API", version="0.1.0", lifespan=lifespan,
                  description="Ingest for agencies without a Kafka client. Authenticate with "
                              "the X-API-Key header issued by `netral api-key add`.")
    app.include_router(ingest_router(keys, publish, limits))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"detail": f"{where}: {first.get('msg')}"}, status_code=422)

    @app.get("/health", tags=["ops"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
