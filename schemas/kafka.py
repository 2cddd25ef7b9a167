"""How every client in the hub connects to Kafka.

Kept in the contract layer because the streams, connectors, sinks and the shell all need the
same connection settings; building them in one place keeps security settings consistent.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, SecretStr

from .errors import AuthorizationError, ConfigError, HubError, RetriableError


class KafkaConnection(BaseModel):
    """Bootstrap servers and security for one Kafka cluster."""

    model_config = ConfigDict(frozen=True)

    bootstrap: str
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    username: str | None = None
    password: SecretStr | None = None
    ca_file: str | None = None
    client_id: str = "netral"

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """Keyword arguments shared by aiokafka producers, consumers and admin clients."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.security_protocol,
            "client_id": self.client_id,
        }
        if self.sasl_mechanism:
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.username
            kwargs["sasl_plain_password"] = (
                self.password.get_secret_value() if self.password else None
            )
        if self.security_protocol in ("SSL", "SASL_SSL"):
            from aiokafka.helpers import create_ssl_context

            kwargs["ssl_context"] = create_ssl_context(cafile=self.ca_file)
        return kwargs

    def confluent_config(self) -> dict[str, str | int | float | bool]:
        """The same settings for confluent-kafka (librdkafka) clients, e.g. the ACL admin."""
        config: dict[str, str | int | float | bool] = {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": self.security_protocol,
            "client.id": self.client_id,
        }
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
            config["sasl.username"] = self.username or ""
            config["sasl.password"] = self.password.get_secret_value() if self.password else ""
        if self.security_protocol in ("SSL", "SASL_SSL") and self.ca_file:
            config["ssl.ca.location"] = self.ca_file
        return config

    def principal(self) -> str:
        """Who the broker sees this client as (for error messages)."""
        return f"User:{self.username}" if self.username else "User:ANONYMOUS"


# aiokafka's error classes by name: the contract layer maps them without importing aiokafka at
# module import (it stays importable where only the models are needed).
_AUTHZ = {
    "TopicAuthorizationFailedError": "topic",
    "GroupAuthorizationFailedError": "consumer group",
    "TransactionalIdAuthorizationFailed": "transactional id",
    "ClusterAuthorizationFailedError": "cluster",
}
_AUTHN = ("SaslAuthenticationFailed", "AuthenticationFailedError", "IllegalSaslStateError")


def kafka_failure(err: BaseException, conn: KafkaConnection, action: str) -> HubError:
    """One clear line for a Kafka client error: missing ACL, bad credentials, or transient.

    ``action`` says what was attempted, e.g. "produce to netral.raw.bkn".
    """
    name = type(err).__name__
    if name in _AUTHZ:
        return AuthorizationError(
            f"Kafka refused to {action}: principal {conn.principal()} is not authorized for "
            f"that {_AUTHZ[name]} (ask the hub operator for the right ACL: "
            f"`netral principals add`)")
    if name in _AUTHN or "authentication" in str(err).lower():
        return ConfigError(
            f"Kafka at {conn.bootstrap} rejected the credentials of {conn.principal()} "
            f"({conn.sasl_mechanism or 'no SASL'}): check NETRAL_KAFKA_USERNAME / "
            f"NETRAL_KAFKA_PASSWORD")
    if name == "KafkaConnectionError":
        return RetriableError(
            f"could not {action}: no Kafka session with {conn.bootstrap} as {conn.principal()} "
            f"over {conn.security_protocol} ({err}); check the address and NETRAL_KAFKA_* "
            f"(credentials, security protocol, CA file)")
    return RetriableError(f"Kafka at {conn.bootstrap} failed to {action}: {name}: {err}")
