"""docker-compose.yml stays valid for the scale-out deployment (checked by the docker client)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from hub.broker.compose_secrets import write_compose_secrets
from tests.helpers import REPO

pytestmark = pytest.mark.contract


def _compose() -> list[str]:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    built = REPO / ".netral" / "tools" / "docker-compose"
    if built.exists():
        return [str(built)]
    pytest.fail("no docker compose client: run `make compose-client` (the Makefile builds one)")


def test_compose_file_is_valid() -> None:
    proc = subprocess.run([*_compose(), "config", "-q"], cwd=REPO, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_compose_declares_three_kraft_brokers_and_scalable_workers() -> None:
    proc = subprocess.run([*_compose(), "config", "--services"], cwd=REPO, capture_output=True,
                          text=True, check=True)
    services = set(proc.stdout.split())
    assert {"kafka1", "kafka2", "kafka3", "postgres", "worker"} <= services


def test_the_secure_override_is_valid_and_secures_every_node_and_hub_service(
        tmp_path: Path) -> None:
    files = ["-f", "docker-compose.yml", "-f", "docker-compose.secure.yml"]
    proc = subprocess.run([*_compose(), *files, "config", "-q"], cwd=REPO, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr  # valid before the secrets exist, too
    for name in ("docker-compose.yml", "docker-compose.secure.yml"):
        shutil.copy(REPO / name, tmp_path / name)
    write_compose_secrets(tmp_path / "compose-secrets")
    merged = subprocess.run([*_compose(), *files, "--profile", "api", "config", "--format",
                             "json"], cwd=tmp_path, capture_output=True, text=True, check=True)
    services = json.loads(merged.stdout)["services"]
    for n in (1, 2, 3):
        node = services[f"kafka{n}"]
        command = " ".join(node["command"])
        assert "server-$$NODE.properties" in command and "--add-scram" in command
        assert node["environment"]["NODE"] == str(n)
        assert "admin-client.properties" in " ".join(node["healthcheck"]["test"])
        assert any(v["target"] == "/etc/netral/kafka" and v.get("read_only")
                   for v in node["volumes"])
    for name in ("topics", "worker", "api", "mock-siasn"):
        assert any(v["target"] == "/run/netral/ca.pem" for v in services[name]["volumes"]), name
        env = services[name]["environment"]
        assert env["NETRAL_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", name
        assert env["NETRAL_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert env["NETRAL_KAFKA_CA_FILE"] == "/run/netral/ca.pem" and env["NETRAL_KAFKA_PASSWORD"]
        assert env["NETRAL_KAFKA_BOOTSTRAP"] == "kafka1:9092,kafka2:9092,kafka3:9092"


def test_compose_secrets_hold_each_nodes_secure_config(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    write_compose_secrets(folder)
    password = (folder / "admin.pw").read_text()
    for n in (1, 2, 3):
        props = dict(line.split("=", 1) for line in
                     (folder / f"server-{n}.properties").read_text().splitlines())
        assert props["node.id"] == str(n)
        assert props["advertised.listeners"] == f"SASL_SSL://kafka{n}:9092"
        assert props["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:SSL"
        assert props["allow.everyone.if.no.acl.found"] == "false"
        assert props["listener.name.controller.ssl.client.auth"] == "required"
        assert props["ssl.keystore.location"] == "/etc/netral/kafka/broker.p12"
        assert password in props["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
        assert (folder / f"server-{n}.properties").stat().st_mode & 0o077 == 0
    again = write_compose_secrets(folder)  # a second run reuses the CA and the password
    assert (folder / "admin.pw").read_text() == password and again.nodes == 3
