"""The base of every record model: frozen, strict about unknown fields, and Avro-convertible.

A model's class name is its Avro record's name in ``id.go.netral``. ``to_avro`` gives what
fastavro's writers accept; ``from_avro`` takes what fastavro's readers return. The one thing
fastavro cannot infer is which branch of a union of records a value is, so a field whose type is a
union of two or more records is written in fastavro's tuple notation ``(full name, dict)``;
``from_avro`` accepts that notation, a dict with a ``-type`` key, or a plain dict (matched on its
fields, since our union branches have disjoint required fields).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from enum import Enum
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict

NAMESPACE = "id.go.netral"

_REGISTRY: dict[str, type[AvroRecord]] = {}


class FrozenModel(BaseModel):
    """A frozen pydantic model that refuses unknown fields: every record, and the rules' own
    values (known persons, policies, early-warning state)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def model_post_init(self, context: Any, /) -> None:
        _share_fields_set(self)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copied = super().model_copy(update=update, deep=deep)
        _share_fields_set(copied)
        return copied


class AvroRecord(FrozenModel):
    """A pydantic model that mirrors one Avro record of ``schemas/avro``."""

    avro_name: ClassVar[str]
    """Full Avro name, e.g. ``id.go.netral.BawasluReport``."""
    _tagged_fields: ClassVar[frozenset[str]] = frozenset()
    _plain_dump: ClassVar[bool | None] = None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.__dict__.get("__avro_abstract__", False):
            return  # a shared base of several records, not a record itself
        cls.avro_name = f"{NAMESPACE}.{cls.__name__}"
        cls._tagged_fields = frozenset(
            name for name, field in cls.model_fields.items() if _is_record_union(field.annotation)
        )
        _REGISTRY[cls.avro_name] = cls

    def to_avro(self) -> dict[str, Any]:
        """This record as plain data for any Avro writer (enums as symbols, arrays as lists)."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = _to_avro(getattr(self, name))
            if name in self._tagged_fields and isinstance(value, dict):
                value = (getattr(self, name).avro_name, value)
            out[name] = value
        return out

    def avro_dump(self) -> dict[str, Any]:
        """This record for fastavro's writers (what :class:`~schemas.codec.AvroCodec` uses).

        Without a union of records anywhere inside, pydantic-core's own dump is what fastavro
        writes byte for byte (a StrEnum member is its symbol, a tuple an array), about 20x
        faster than :meth:`to_avro`'s walk in Python: the hub encodes every record it publishes.
        """
        return self.model_dump() if self._plain() else self.to_avro()

    @classmethod
    def from_avro(cls, data: Mapping[str, Any]) -> Self:
        """Validate what a fastavro reader returned (any union notation) into this model."""
        return cls.model_validate(_from_avro(dict(data)))

    @classmethod
    def from_fastavro(cls, data: Mapping[str, Any]) -> Self:
        """Validate what fastavro's default reader returned (AvroCodec.decode): records in
        unions come back as plain dicts, so without a union of two or more records inside
        there is nothing to unwrap and pydantic-core validates the data as it is."""
        if cls._plain():
            return cls.model_validate(data)
        return cls.from_avro(data)

    @classmethod
    def _plain(cls) -> bool:
        """No union of records anywhere inside (computed once per class)."""
        plain = cls.__dict__.get("_plain_dump")
        if plain is None:
            plain = not _has_record_union(cls, set())
            cls._plain_dump = plain
        return plain


_FIELD_SETS: dict[frozenset[str], set[str]] = {}


def _share_fields_set(model: BaseModel) -> None:
    """Give ``model`` the one shared set of its given fields' names.

    pydantic keeps, per instance, the set of fields given at construction: about 700 bytes of
    a set per record, a third of what a case costs in the book (a dozen records a case).
    Only a handful of distinct sets exist (a record decoded from Avro gives every field), and
    sharing one is safe: a frozen model never adds to its set, and ``model_copy`` copies the
    set before it adds the updated names (then this shares the copy's). Costs about 0.6 µs
    per record built.
    """
    given = model.__pydantic_fields_set__
    shared = _FIELD_SETS.get(frozenset(given))
    if shared is None:
        _FIELD_SETS[frozenset(given)] = given
    elif shared is not given:
        object.__setattr__(model, "__pydantic_fields_set__", shared)


def registry() -> Mapping[str, type[AvroRecord]]:
    """Every record model defined so far, by Avro full name."""
    return _REGISTRY


def _is_record_union(annotation: Any) -> bool:
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return False
    members = [a for a in typing.get_args(annotation) if isinstance(a, type)]
    return sum(issubclass(m, AvroRecord) for m in members) >= 2


def _has_record_union(model: type[AvroRecord], seen: set[type[AvroRecord]]) -> bool:
    """Whether ``model`` or a record type nested in it has a field that is a union of records."""
    if model in seen:
        return False
    seen.add(model)
    if model._tagged_fields:
        return True
    return any(_has_record_union(nested, seen)
               for field in model.model_fields.values()
               for nested in _record_types(field.annotation))


def _record_types(annotation: Any) -> list[type[AvroRecord]]:
    if isinstance(annotation, type) and issubclass(annotation, AvroRecord):
        return [annotation]
    return [r for arg in typing.get_args(annotation) for r in _record_types(arg)]


def _to_avro(value: Any) -> Any:
    if isinstance(value, AvroRecord):
        return value.to_avro()
    if isinstance(value, tuple | list):
        return [_to_avro(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    return value


def _from_avro(value: Any) -> Any:
    if isinstance(value, tuple) and len(value) == 2 and value[0] in _REGISTRY:
        return _REGISTRY[value[0]].from_avro(value[1])
    if isinstance(value, dict):
        if "-type" in value:
            rest = {k: v for k, v in value.items() if k != "-type"}
            model = _REGISTRY.get(value["-type"])
            return model.from_avro(rest) if model else rest
        return {k: _from_avro(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_avro(v) for v in value]
    return value
