"""Schema evolution guard: every current record schema reads every released version (BACKWARD).

Released versions live in ``schemas/avro/history/<version>/`` (see the README there). The check is
Apache Avro's own ``ReaderWriterCompatibilityChecker`` on the expanded schemas (fastavro's
``load_schema`` inlines named types from sibling files), plus a real write-old/read-new round trip
with fastavro for every record that has a sample. The negative tests change a copy of the schemas
in a temp dir and prove the same guard reports them.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import avro.schema
import fastavro
import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from fastavro.schema import load_schema

from schemas.codec import SOE_MARKER, AvroCodec, SchemaStore
from schemas.models import AvroRecord, ReportKind
from tests.unit.test_schemas_models import SAMPLES

pytestmark = pytest.mark.contract
AVRO = Path(__file__).resolve().parents[2] / "schemas" / "avro"
RELEASES = sorted(p for p in (AVRO / "history").iterdir() if p.is_dir())
REPORT = "id.go.netral.BawasluReport"


def _records(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.glob("*.avsc"))
            if json.loads(p.read_text()).get("type") == "record"}


def _expanded(path: Path) -> dict[str, Any]:
    return dict(load_schema(str(path), _write_hint=False))  # type: ignore[arg-type]


def compatible(reader: Path, writer: Path) -> tuple[bool, str]:
    """Apache avro's checker: can ``reader`` read data written with ``writer``?"""
    r = avro.schema.parse(json.dumps(_expanded(reader)))
    w = avro.schema.parse(json.dumps(_expanded(writer)))
    result = ReaderWriterCompatibilityChecker().get_compatibility(r, w)
    ok = result.compatibility is SchemaCompatibilityType.compatible
    return ok, "; ".join(str(m) for m in result.messages)


def incompatibilities(avro_dir: Path) -> list[str]:
    """The guard: every problem of the current schemas in ``avro_dir`` with its released history."""
    current = _records(avro_dir)
    problems = []
    for release in sorted(p for p in (avro_dir / "history").iterdir() if p.is_dir()):
        for name, old in _records(release).items():
            if name not in current:
                problems.append(f"{name} (released in {release.name}) was removed")
                continue
            ok, why = compatible(current[name], old)
            if not ok:
                problems.append(f"{name} cannot read {release.name} data: {why}")
    return problems


def test_there_is_a_release() -> None:
    assert RELEASES, "schemas/avro/history must hold at least one released version"
    assert (AVRO / "history" / "README.md").exists()
    for release in RELEASES:
        assert REPORT in _records(release), f"{release.name} is not a full snapshot"


def test_current_schemas_read_every_release() -> None:
    assert incompatibilities(AVRO) == []


def _round_trip(sample: AvroRecord, writer: Path, reader: Path) -> dict[str, Any]:
    """Write ``sample`` with ``writer``'s schema, read it back with ``reader``'s (fastavro)."""
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(_expanded(writer)), sample.to_avro())
    buf.seek(0)
    value = fastavro.schemaless_reader(buf, fastavro.parse_schema(_expanded(writer)),
                                       fastavro.parse_schema(_expanded(reader)))
    assert isinstance(value, dict)
    return value


@pytest.mark.parametrize("release", RELEASES, ids=lambda p: p.name)
def test_old_data_decodes_with_the_current_schema(release: Path) -> None:
    """Not only the checker: write every sample with the old schema, read with the new one."""
    released = _records(release)
    checked = 0
    for sample in SAMPLES:
        if sample.avro_name not in released:
            continue  # a record added after this release
        value = _round_trip(sample, released[sample.avro_name], AVRO / f"{sample.avro_name}.avsc")
        assert type(sample).from_avro(value) == sample
        checked += 1
    assert checked >= 10, f"only {checked} samples exercised {release.name}"


# -- the guard bites -------------------------------------------------------------------------------
def _changed_tree(tmp_path: Path, name: str, change: Callable[[dict[str, Any]], object]) -> Path:
    """A copy of schemas/avro (history included) with one current schema changed."""
    root = tmp_path / "avro"
    shutil.copytree(AVRO, root)
    path = root / f"{name}.avsc"
    schema = json.loads(path.read_text())
    change(schema)
    path.write_text(json.dumps(schema))
    return root


def _field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in schema["fields"] if f["name"] == name)


def test_guard_reports_a_new_required_field(tmp_path: Path) -> None:
    root = _changed_tree(tmp_path, REPORT, lambda s: s["fields"].append(
        {"name": "kecamatan", "type": "string", "doc": "added without a default"}))
    problems = incompatibilities(root)
    assert len(problems) == 1
    assert REPORT in problems[0]
    assert "kecamatan" in problems[0]
    # and it is real: old data no longer reads
    sample = next(s for s in SAMPLES if s.avro_name == REPORT)
    with pytest.raises(fastavro.read.SchemaResolutionError):
        _round_trip(sample, RELEASES[-1] / f"{REPORT}.avsc", root / f"{REPORT}.avsc")


def test_guard_accepts_a_new_field_with_a_default(tmp_path: Path) -> None:
    root = _changed_tree(tmp_path, REPORT, lambda s: s["fields"].append(
        {"name": "kecamatan", "type": ["null", "string"], "default": None, "doc": "optional"}))
    assert incompatibilities(root) == []


def test_guard_reports_a_removed_enum_symbol(tmp_path: Path) -> None:
    """ReportKind has no enum default: a reader without TEMUAN cannot read old TEMUAN data."""
    root = _changed_tree(tmp_path, "id.go.netral.ReportKind",
                         lambda s: s["symbols"].remove("TEMUAN"))
    problems = incompatibilities(root)
    assert any(REPORT in p and "TEMUAN" in p for p in problems), problems
    sample = next(s for s in SAMPLES if s.avro_name == REPORT)
    sample = sample.model_copy(update={"report_kind": ReportKind.TEMUAN})
    with pytest.raises(fastavro.read.SchemaResolutionError):
        _round_trip(sample, RELEASES[-1] / f"{REPORT}.avsc", root / f"{REPORT}.avsc")


def test_guard_reports_a_changed_field_type(tmp_path: Path) -> None:
    root = _changed_tree(tmp_path, REPORT,
                         lambda s: _field(s, "description").update(type="int"))
    assert any(REPORT in p for p in incompatibilities(root))


def test_guard_reports_a_rename_without_alias(tmp_path: Path) -> None:
    root = _changed_tree(tmp_path, REPORT,
                         lambda s: _field(s, "incident_place").update(name="incident_location"))
    assert any("incident_location" in p for p in incompatibilities(root))


def test_guard_reports_a_removed_record(tmp_path: Path) -> None:
    root = tmp_path / "avro"
    shutil.copytree(AVRO, root)
    (root / f"{REPORT}.avsc").unlink()
    assert f"{REPORT} (released in {RELEASES[-1].name}) was removed" in incompatibilities(root)


def test_codec_resolves_a_released_writer_to_an_evolved_reader(tmp_path: Path) -> None:
    """After a compatible change, bytes with a released fingerprint decode to the new schema."""
    root = _changed_tree(tmp_path, REPORT, lambda s: s["fields"].append(
        {"name": "kecamatan", "type": ["null", "string"], "default": None, "doc": "optional"}))
    store = SchemaStore(root)
    new = store.current[REPORT]
    released = next(e for e in store.by_fingerprint.values()
                    if e.name == REPORT and e.version != "current")
    assert released.fingerprint != new.fingerprint
    sample = next(s for s in SAMPLES if s.avro_name == REPORT)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, released.parsed, sample.to_avro())
    decoded = AvroCodec(store).decode(SOE_MARKER + released.fingerprint + buf.getvalue())
    assert decoded.value["kecamatan"] is None
    assert type(sample).from_avro({k: v for k, v in decoded.value.items()
                                   if k != "kecamatan"}) == sample
