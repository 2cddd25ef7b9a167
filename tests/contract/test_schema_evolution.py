"""Schema evolution guard: every current record schema reads every released version (BACKWARD)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import avro.schema
import fastavro
import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from fastavro.schema import load_schema

from schemas.models import TOPIC_MODELS
from tests.unit.test_schemas_models import SAMPLES

pytestmark = pytest.mark.contract
AVRO = Path(__file__).resolve().parents[2] / "schemas" / "avro"
RELEASES = sorted(p for p in (AVRO / "history").iterdir() if p.is_dir())


def _records(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in folder.glob("*.avsc")
            if json.loads(p.read_text()).get("type") == "record"}


def _expanded(path: Path) -> dict:
    return load_schema(str(path), _write_hint=False)  # type: ignore[return-value]


def compatible(reader: Path, writer: Path) -> tuple[bool, str]:
    """Apache avro's own checker on the expanded schemas (named types inlined)."""
    r = avro.schema.parse(json.dumps(_expanded(reader)))
    w = avro.schema.parse(json.dumps(_expanded(writer)))
    result = ReaderWriterCompatibilityChecker().get_compatibility(r, w)
    ok = result.compatibility is SchemaCompatibilityType.compatible
    return ok, "; ".join(str(m) for m in result.messages)


def test_there_is_a_release() -> None:
    assert RELEASES, "schemas/avro/history must hold at least one released version"


@pytest.mark.parametrize("release", RELEASES, ids=lambda p: p.name)
def test_current_schemas_read_every_release(release: Path) -> None:
    current = _records(AVRO)
    for name, old in _records(release).items():
        assert name in current, f"{name} was released in {release.name} and must not disappear"
        ok, why = compatible(current[name], old)
        assert ok, f"{name}: current schema cannot read {release.name} data: {why}"


@pytest.mark.parametrize("release", RELEASES, ids=lambda p: p.name)
def test_old_data_decodes_with_the_current_schema(release: Path) -> None:
    """Not only the checker: write real samples with the old schema, read with the new."""
    topical = {m.avro_name for m in TOPIC_MODELS.values()}
    for sample in SAMPLES:
        if sample.avro_name not in topical:
            continue
        old = fastavro.parse_schema(_expanded(release / f"{sample.avro_name}.avsc"))
        new = fastavro.parse_schema(_expanded(AVRO / f"{sample.avro_name}.avsc"))
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, old, sample.to_avro())
        buf.seek(0)
        assert type(sample).from_avro(fastavro.schemaless_reader(buf, old, new)) == sample


def _copy_with(tmp_path: Path, name: str, change: object) -> Path:
    folder = tmp_path / "changed"
    shutil.copytree(AVRO, folder, ignore=shutil.ignore_patterns("history"))
    path = folder / f"{name}.avsc"
    schema = json.loads(path.read_text())
    change(schema)  # type: ignore[operator]
    path.write_text(json.dumps(schema))
    return path


def test_guard_rejects_a_new_required_field(tmp_path: Path) -> None:
    name = "id.go.netral.BawasluReport"
    changed = _copy_with(tmp_path, name, lambda s: s["fields"].append(
        {"name": "kecamatan", "type": "string", "doc": "added without a default"}))
    ok, why = compatible(changed, AVRO / f"{name}.avsc")
    assert not ok
    assert "kecamatan" in why


def test_guard_accepts_a_new_field_with_a_default(tmp_path: Path) -> None:
    name = "id.go.netral.BawasluReport"
    changed = _copy_with(tmp_path, name, lambda s: s["fields"].append(
        {"name": "kecamatan", "type": ["null", "string"], "default": None, "doc": "optional"}))
    assert compatible(changed, AVRO / f"{name}.avsc")[0]


def test_guard_rejects_a_removed_enum_symbol(tmp_path: Path) -> None:
    name = "id.go.netral.ReportKind"
    changed = _copy_with(tmp_path, name, lambda s: s["symbols"].remove("TEMUAN"))
    reader = changed.parent / "id.go.netral.BawasluReport.avsc"
    ok, _ = compatible(reader, AVRO / "id.go.netral.BawasluReport.avsc")
    assert not ok
