"""Schema registry access for the Confluent wire format, through Confluent's maintained client.

Only two calls are needed (register a subject's schema, look a schema up by id); the codec caches
both, so the registry is asked once per subject and once per unknown id.
"""

from __future__ import annotations

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from schemas.errors import RetriableError


class RegistryClient:
    """Adapter from the codec's ``SchemaRegistry`` protocol to a Confluent-compatible registry."""

    def __init__(self, url: str) -> None:
        self._client = SchemaRegistryClient({"url": url})

    def register(self, subject: str, schema: str) -> int:
        try:
            return int(self._client.register_schema(subject, Schema(schema, "AVRO")))
        except SchemaRegistryError as err:
            raise RetriableError(f"schema registry refused {subject}: {err}") from err

    def schema_by_id(self, schema_id: int) -> str:
        try:
            return str(self._client.get_schema(schema_id).schema_str)
        except SchemaRegistryError as err:
            if err.http_status_code == 404:
                raise LookupError(schema_id) from err
            raise RetriableError(f"schema registry lookup of id {schema_id}: {err}") from err
