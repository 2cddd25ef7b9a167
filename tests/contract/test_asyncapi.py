"""docs/asyncapi.yaml is current, covers every topic, and is valid AsyncAPI 3.0.0.

Validity is checked against the official JSON Schema of the AsyncAPI specification (the npm
package @asyncapi/specs, fetched once with npm into the repo's cache).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import fastavro
import jsonschema
import pytest
import yaml
from fastavro.schema import fingerprint, to_parsing_canonical_form

from hub.asyncapi import build_asyncapi
from hub.commands.asyncapi import render
from schemas.codec import default_store
from schemas.models import TOPIC_MODELS
from schemas.topics import catalogue
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
