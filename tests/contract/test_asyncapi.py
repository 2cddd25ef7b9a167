"""docs/asyncapi.yaml is current, covers every topic, and is valid AsyncAPI 3.0.0.

Validity is checked against the official JSON Schema of the AsyncAPI specification (the npm
package @asyncapi/specs, fetched once with npm into the repo's cache): no PyPI package ships a
maintained copy of it. That schema does not follow ``$ref``s inside the document, so a test here
resolves every one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import fastavro
import jsonschema
import pytest
import yaml
from fastavro.schema import fingerprint, to_parsing_canonical_form

from hub.asyncapi import build_asyncapi
from hub.commands.asyncapi import render
from schemas.codec import default_store, expanded_schema
from schemas.dlq import DeadLetter
from schemas.models import TOPIC_MODELS
from schemas.topics import catalogue, raw_topic
from tests.helpers import REPO, netral

pytestmark = pytest.mark.contract
SPECS_VERSION = "6.11.1"
CACHE = REPO / ".netral" / "dist" / "asyncapi-specs"


@pytest.fixture(scope="module")
def official_schema() -> dict:
    tgz = CACHE / f"asyncapi-specs-{SPECS_VERSION}.tgz"
    if not tgz.exists():
        npm = shutil.which("npm")
        assert npm, "npm is needed to fetch the AsyncAPI specification's JSON Schema"
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([npm, "pack", f"@asyncapi/specs@{SPECS_VERSION}", "--silent"],
                       cwd=CACHE, check=True, timeout=300, capture_output=True)
    with tarfile.open(tgz) as tar:
        member = tar.extractfile("package/schemas/3.0.0-without-$id.json")
        assert member is not None
        return json.load(member)


def test_committed_document_is_current() -> None:
    committed = (REPO / "docs" / "asyncapi.yaml").read_text(encoding="utf-8")
    assert committed == render(), "docs/asyncapi.yaml is stale: run `netral asyncapi`"
    assert "&id0" not in committed, "shared objects: YAML anchors confuse readers and some tools"


def test_valid_against_the_official_asyncapi_3_schema(official_schema: dict) -> None:
    doc = yaml.safe_load(render())
    errors = list(jsonschema.Draft7Validator(official_schema).iter_errors(doc))
    assert not errors, [e.message[:200] for e in errors[:3]]


def test_every_topic_has_a_channel_and_a_send_operation() -> None:
    doc = build_asyncapi()
    addresses = {c["address"]: cid for cid, c in doc["channels"].items()}
    for spec in catalogue():
        cid = addresses[spec.name]
        assert f"send-{cid}" in doc["operations"]
        config = doc["channels"][cid]["bindings"]["kafka"]["topicConfiguration"]
        assert config["cleanup.policy"] == [spec.cleanup]


def test_message_schemas_are_the_shipped_schemas() -> None:
    doc = build_asyncapi()
    store = default_store()
    for topic, model in TOPIC_MODELS.items():
        channel = next(c for c in doc["channels"].values() if c["address"] == topic)
        (message,) = channel["messages"].values()
        schema = message["payload"]["schema"]
        canonical = to_parsing_canonical_form(fastavro.parse_schema(schema))
        shipped = store.get(model.avro_name).fingerprint
        assert bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")) == shipped, topic


def test_check_flag(tmp_path: Path) -> None:
    assert netral("asyncapi", "--check").returncode == 0
    stale = tmp_path / "asyncapi.yaml"
    stale.write_text("asyncapi: 3.0.0\n")
    proc = netral("asyncapi", "--check", "--output", str(stale))
    assert proc.returncode == 1
    assert "out of date" in proc.stderr and proc.stderr.count("\n") == 1


def _fullnames(schema: Any) -> Any:
    """Undo the document's namespace + name split, giving back expanded_schema()'s spelling."""
    if isinstance(schema, list):
        return [_fullnames(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _fullnames(v) for k, v in schema.items()}
    if "namespace" in out:
        out["name"] = f"{out.pop('namespace')}.{out['name']}"
    return out


def test_message_schemas_equal_expanded_schema() -> None:
    doc = build_asyncapi()
    for spec in catalogue():
        channel = next(c for c in doc["channels"].values() if c["address"] == spec.name)
        (message,) = channel["messages"].values()
        if spec.name.startswith("netral.dlq."):
            assert message["payload"]["format"] == "binary"
            continue
        payload = message["payload"]
        assert payload["schemaFormat"] == "application/vnd.apache.avro+json;version=1.9.0"
        fastavro.parse_schema(payload["schema"])
        assert _fullnames(payload["schema"]) == expanded_schema(
            TOPIC_MODELS[spec.name].avro_name), spec.name


def test_dlq_headers_are_the_ones_written() -> None:
    letter = DeadLetter.of(ValueError("x"), stage="normalize", topic="t", partition=0, offset=1)
    written = [k for k, _ in letter.headers()]
    doc = build_asyncapi()
    (message,) = doc["channels"]["dlq-normalize"]["messages"].values()
    assert sorted(message["headers"]["properties"]) == sorted(written)
    assert sorted(message["headers"]["required"]) == sorted(written)


def test_every_ref_resolves_and_raw_topics_are_read_by_normalize() -> None:
    doc = build_asyncapi()

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return own + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    found = refs(doc)
    assert found
    for ref in found:
        target: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        assert isinstance(target, dict), ref
    for spec in catalogue():
        if spec.name.startswith("netral.raw."):
            cid = next(k for k, c in doc["channels"].items() if c["address"] == spec.name)
            assert f"receive-{cid}-normalize-stage" in doc["operations"]
    assert raw_topic("bkn") in {c["address"] for c in doc["channels"].values()}
