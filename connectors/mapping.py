"""Mapping an agency's native export (JSON object or CSV row) to its raw Avro record.

Each agency module declares a field map (native path -> record path, dotted for nesting; CSV
columns use the same dotted names) and value maps for the Indonesian labels agencies use. Errors
name the agency's own field, so the agency's integrator can fix their export.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from schemas.errors import InvalidMessage
from schemas.models.raw import RawRecord

Convert = Callable[[Any], Any]


@dataclass(frozen=True)
class NativeMapping:
    """How one agency's export maps onto its raw record."""

    model: type[RawRecord]
    fields: Mapping[str, str]  # native dotted path -> record dotted path
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # native path -> labels
    convert: Mapping[str, Convert] = field(default_factory=dict)  # native path -> converter
    defaults: Mapping[str, Any] = field(default_factory=dict)  # record path -> value

    def to_record(self, row: Mapping[str, Any]) -> RawRecord:
        """Validate one native row into the raw record, or raise InvalidMessage naming fields."""
        flat = _flatten(row)
        unknown = sorted(k for k in flat if k not in self.fields and not _is_list_item(k, self))
        if unknown:
            raise InvalidMessage(f"unknown field(s) {', '.join(unknown[:5])}")
        out: dict[str, Any] = {}
        for path, value in self.defaults.items():
            _put(out, path, value)
        for native, target in self.fields.items():
            value = _get(row, native)
            if value is None or value == "":
                continue
            try:
                if native in self.values:
                    labels = self.values[native]
                    key = str(value).strip().lower()
                    if key not in labels:
                        allowed = ", ".join(sorted(labels))
                        raise ValueError(f"{value!r} is not one of: {allowed}")
                    value = labels[key]
                if native in self.convert:
                    value = self.convert[native](value)
            except (ValueError, TypeError) as err:
                raise InvalidMessage(f"{native}: {err}") from None
            _put(out, target, value)
        try:
            return self.model.model_validate(out)
        except ValidationError as err:
            reverse = {v: k for k, v in self.fields.items()}
            parts = []
            for e in err.errors()[:5]:
                where = ".".join(str(p) for p in e["loc"])
                native = next((n for r, n in reverse.items() if where.startswith(r)), where)
                parts.append(f"{native}: {e['msg']}")
            raise InvalidMessage("; ".join(parts)) from None


def _is_list_item(key: str, mapping: NativeMapping) -> bool:
    return any(key.startswith(n + ".") or key == n for n in mapping.fields)


def _flatten(row: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        path = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, path + "."))
        else:
            out[path] = v
    return out


def _get(row: Mapping[str, Any], path: str) -> Any:
    if path in row:  # a flat CSV row with dotted column names
        return row[path]
    current: Any = row
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def _put(out: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    target = out
    for p in parents:
        target = target.setdefault(p, {})
    target[leaf] = value
