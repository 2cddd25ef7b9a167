"""The test suite runs against an external (secure) cluster: the session ``kafka`` fixture and
every ``netral`` child it starts take the same NETRAL_KAFKA_* security settings as the hub."""

from __future__ import annotations

import certifi
import pytest

from tests.conftest import external_kafka
from tests.helpers import child_env

pytestmark = pytest.mark.unit
SECURE = {"NETRAL_KAFKA_BOOTSTRAP": "kafka-1:9093",
          "NETRAL_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
          "NETRAL_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
          "NETRAL_KAFKA_USERNAME": "svc-tests", "NETRAL_KAFKA_PASSWORD": "s3cret-s3cret-s3cret",
          "NETRAL_KAFKA_CA_FILE": certifi.where(), "NETRAL_HOME": "/elsewhere",
          "PATH": "/usr/bin"}


def test_the_session_fixture_takes_the_security_settings() -> None:
    conn = external_kafka(SECURE)
    assert conn is not None and conn.bootstrap == "kafka-1:9093"
    kwargs = conn.aiokafka_kwargs()
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_username"] == "svc-tests"
    assert kwargs["sasl_plain_password"] == "s3cret-s3cret-s3cret"
    assert conn.ca_file == certifi.where() and kwargs["ssl_context"] is not None
    assert external_kafka({"PATH": "/usr/bin"}) is None


def test_plaintext_when_only_a_bootstrap_is_given() -> None:
    conn = external_kafka({"NETRAL_KAFKA_BOOTSTRAP": "127.0.0.1:9092"})
    assert conn is not None and conn.security_protocol == "PLAINTEXT" and conn.username is None


def test_children_on_the_external_cluster_inherit_its_security_only() -> None:
    to_cluster = child_env({"NETRAL_KAFKA_BOOTSTRAP": "kafka-1:9093"}, SECURE)
    assert to_cluster["NETRAL_KAFKA_USERNAME"] == "svc-tests"
    assert to_cluster["NETRAL_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert "NETRAL_HOME" not in to_cluster and to_cluster["PATH"] == "/usr/bin"
    private = child_env({"NETRAL_KAFKA_BOOTSTRAP": "127.0.0.1:40000"}, SECURE)
    assert not any(k.startswith("NETRAL_KAFKA_S") or k == "NETRAL_KAFKA_USERNAME"
                   for k in private), "a private broker is plaintext"
    own = child_env({"NETRAL_KAFKA_BOOTSTRAP": "kafka-1:9093",
                     "NETRAL_KAFKA_USERNAME": "agency-bkn"}, SECURE)
    assert own["NETRAL_KAFKA_USERNAME"] == "agency-bkn", "a test's own identity wins"
