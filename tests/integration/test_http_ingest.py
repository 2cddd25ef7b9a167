"""HTTP ingest on a real uvicorn server on loopback and a real broker: every status, the
cross-agency key misuse, and a schemathesis run that must find no 500."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from connectors.ingest import IngestLimits
from connectors.keys import KeyStore, add_key
from hub.api.app import create_app
from schemas.kafka import KafkaConnection
from schemas.topics import Agency
from tests.fixtures.kafka_tools import consume_until
from tests.fixtures.threaded_server import serving
from tests.unit.test_connectors_native import BAWASLU

if TYPE_CHECKING:
    from requests.structures import CaseInsensitiveDict
    from schemathesis.core.result import Ok
    from schemathesis.schemas import APIOperation

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Server:
    url: str
    keys: dict[Agency, str]


@pytest.fixture(scope="module")
def server(topics: KafkaConnection, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _serve(topics, tmp_path_factory.mktemp("api"), IngestLimits(rate="1000/minute"))


def _serve(kafka: KafkaConnection, home: Path, limits: IngestLimits) -> Iterator[Server]:
    keyfile = home / "api-keys.yaml"
    keys = {Agency.BAWASLU: add_key(keyfile, Agency.BAWASLU),
            Agency.BKN: add_key(keyfile, Agency.BKN)}
    with serving(create_app(kafka, KeyStore.load(keyfile), limits)) as url:
        yield Server(url, keys)


def _report(sid: str, **changes: Any) -> dict[str, Any]:
    return {**BAWASLU, "id_laporan": sid, **changes}


def _post(server: Server, agency: str, body: Any, key: str | None = None,
          raw: bytes | None = None) -> httpx.Response:
    headers = {"X-API-Key": key} if key else {}
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(f"{server.url}/v1/ingest/{agency}", content=content, headers=headers,
                      timeout=30)


def test_accepted_records_are_on_the_topic_when_answered(server: Server, unique: str,
                                                          topics: KafkaConnection) -> None:
    sids = [f"http-{unique}-{i}" for i in range(3)]
    resp = _post(server, "bawaslu", [_report(s) for s in sids], server.keys[Agency.BAWASLU])
    assert resp.status_code == 202, resp.text
    assert resp.json() == {"accepted": sids, "rejected": []}
    wanted = {s.encode() for s in sids}
    asyncio.run(consume_until(topics, ["netral.raw.bawaslu"],
                              lambda rs: wanted <= {r.key for r in rs}, timeout_s=30))


def test_mixed_batch_is_207_with_field_errors(server: Server, unique: str) -> None:
    good = _report(f"http-{unique}-ok")
    bad = _report(f"http-{unique}-bad", kode_wilayah="99.99")
    resp = _post(server, "bawaslu", {"records": [good, bad]}, server.keys[Agency.BAWASLU])
    assert resp.status_code == 207, resp.text
    body = resp.json()
    assert body["accepted"] == [good["id_laporan"]]
    assert body["rejected"][0]["index"] == 1
    assert body["rejected"][0]["source_id"] == bad["id_laporan"]
    assert "kode_wilayah" in body["rejected"][0]["error"]
    only_bad = _post(server, "bawaslu", [bad], server.keys[Agency.BAWASLU])
    assert only_bad.status_code == 422


@pytest.mark.parametrize(("agency", "key", "raw", "status", "phrase"), [
    ("bawaslu", None, b"[]", 401, "missing X-API-Key"),
    ("bawaslu", "ntrl_not-a-key", b"[]", 401, "unknown API key"),
    ("bkn", "BAWASLU", b"[]", 403, "belongs to bawaslu"),
    ("kpu", "BAWASLU", b"[]", 404, "unknown agency"),
    ("bawaslu", "BAWASLU", b"{not json", 400, "not valid JSON"),
    ("bawaslu", "BAWASLU", b'{"a": 1}', 400, "expected a JSON array"),
    ("bawaslu", "BAWASLU", b"[" + b"{}," * 500 + b"{}]", 413, "exceeds 500"),
    ("bawaslu", "BAWASLU", b'["' + b"x" * (1024 * 1024) + b'"]', 413, "exceeds"),
])
def test_error_statuses_have_messages(server: Server, agency: str, key: str | None, raw: bytes,
                                      status: int, phrase: str) -> None:
    real_key = server.keys[Agency(key.lower())] if key in ("BAWASLU", "BKN") else key
    resp = _post(server, agency, None, real_key, raw=raw)
    assert resp.status_code == status, resp.text
    assert phrase in resp.json()["detail"]


def test_rate_limit_per_key(topics: KafkaConnection, tmp_path: Path, unique: str) -> None:
    for srv in _serve(topics, tmp_path, IngestLimits(rate="2/minute")):
        key = srv.keys[Agency.BAWASLU]
        codes = [_post(srv, "bawaslu", [_report(f"rl-{unique}-{i}")], key).status_code
                 for i in range(3)]
        assert codes == [202, 202, 429]
        # another agency's key has its own budget
        assert _post(srv, "bkn", [{"id_keputusan": "x"}], srv.keys[Agency.BKN]).status_code \
            == 422


def test_no_input_gets_a_500(server: Server) -> None:
    """schemathesis generates requests from the OpenAPI document (pytest-9-safe API, no plugin)."""
    api = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [cast("Ok[APIOperation]", result).ok() for result in api.get_all_operations()]
    assert operations, "the OpenAPI document lists no operation"
    failures: list[str] = []

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: schemathesis.Case) -> None:
            # generated keys (usually invalid) stay: they must get a 401, never a 500
            headers: Mapping[str, Any] = case.headers or {}
            if not headers.get("X-API-Key"):
                # a plain dict, as before: Case.headers is typed as requests' CaseInsensitiveDict
                case.headers = cast("CaseInsensitiveDict[Any]",
                                    {**headers, "X-API-Key": server.keys[Agency.BAWASLU]})
            response = case.call()
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code} "
                                f"{response.text[:200]}")

        run()
    assert not failures, failures[:5]
