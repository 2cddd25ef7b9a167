"""HTTP ingest for agencies without a Kafka client: ``POST /v1/ingest/{agency}``.

A JSON batch (array, or ``{"records": [...]}``) of the agency's native records. Each record is
validated on its own; the valid ones are published to ``netral.raw.<agency>`` and the answer comes
only after the broker acknowledged them (acks=all). Status: 202 all accepted, 207 some rejected,
422 none accepted; 400 bad JSON, 401 missing or unknown key, 403 another agency's key, 404
unknown agency, 413 too large, 429 over the rate limit, 503 broker unavailable. Every error has
a message.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Path, Request
from fastapi.responses import JSONResponse
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import BaseModel

from schemas.errors import InvalidMessage, RetriableError
from schemas.models.raw import RawRecord
from schemas.topics import Agency

from .agencies import PARSERS
from .keys import KeyStore, hash_key

Publish = Callable[[Sequence[RawRecord]], Awaitable[None]]


class Rejected(BaseModel):
    index: int
    source_id: str | None
    error: str


class IngestResult(BaseModel):
    accepted: list[str]
    rejected: list[Rejected]


class Problem(BaseModel):
    detail: str


@dataclass(frozen=True)
class IngestLimits:
    max_records: int = 500
    max_bytes: int = 1024 * 1024
    rate: str = "120/minute"


def ingest_router(keys: KeyStore, publish: Publish, limits: IngestLimits) -> APIRouter:
    router = APIRouter(prefix="/v1/ingest", tags=["ingest"])
    limiter = MovingWindowRateLimiter(MemoryStorage())
    rate: RateLimitItem = parse(limits.rate)
    errors: dict[int | str, dict[str, Any]] = {
        code: {"model": Problem} for code in (400, 401, 403, 404, 413, 422, 429, 503)}
    errors[207] = {"model": IngestResult, "description": "Some records rejected"}

    @router.post("/{agency}", status_code=202, response_model=IngestResult, responses=errors)
    async def ingest(
        request: Request,
        agency: Annotated[str, Path(description="bawaslu, bkn, kemendagri, kemenpanrb or ppk")],
        x_api_key: Annotated[str | None, Header(description="The agency's API key")] = None,
    ) -> JSONResponse:
        """Publish a batch of the agency's native records to its raw topic."""
        try:
            owner_of_path = Agency(agency)
        except ValueError:
            raise HTTPException(404, f"unknown agency {agency!r}; one of: "
                                f"{', '.join(a.value for a in Agency)}") from None
        if not x_api_key:
            raise HTTPException(401, "missing X-API-Key header")
        owner = keys.agency_of(x_api_key)
        if owner is None:
            raise HTTPException(401, "unknown API key")
        if owner is not owner_of_path:
            raise HTTPException(403, f"this key belongs to {owner.value}; it cannot publish as "
                                f"{owner_of_path.value}")
        if not limiter.hit(rate, hash_key(x_api_key)):
            raise HTTPException(429, f"rate limit {limits.rate} per key exceeded; retry later",
                                headers={"Retry-After": "60"})
        body = await request.body()
        if len(body) > limits.max_bytes:
            raise HTTPException(413, f"body of {len(body)} bytes exceeds {limits.max_bytes}")
        rows = _rows(body, limits.max_records)
        accepted: list[RawRecord] = []
        rejected: list[Rejected] = []
        for i, row in enumerate(rows):
            sid = next((v for k, v in row.items() if k.startswith("id_")), None) \
                if isinstance(row, dict) else None
            try:
                if not isinstance(row, dict):
                    raise InvalidMessage("a record must be a JSON object")
                accepted.append(PARSERS[owner](row))
            except InvalidMessage as err:
                rejected.append(Rejected(index=i, source_id=str(sid) if sid else None,
                                         error=str(err)))
        if accepted:
            try:
                await publish(accepted)
            except RetriableError as err:
                raise HTTPException(503, f"broker unavailable, nothing was accepted: {err}",
                                    headers={"Retry-After": "5"}) from None
        result = IngestResult(accepted=[r.source_id for r in accepted], rejected=rejected)
        status = 202 if not rejected else 207 if accepted else 422
        return JSONResponse(result.model_dump(), status_code=status)

    return router


def _rows(body: bytes, max_records: int) -> list[Any]:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise HTTPException(400, f"body is not valid JSON: {err}") from None
    if isinstance(data, dict) and isinstance(data.get("records"), list):
        data = data["records"]
    if not isinstance(data, list):
        raise HTTPException(400, 'expected a JSON array of records or {"records": [...]}')
    if len(data) > max_records:
        raise HTTPException(413, f"batch of {len(data)} records exceeds {max_records}")
    if not data:
        raise HTTPException(400, "empty batch")
    return data
