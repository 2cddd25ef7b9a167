"""Secrets and node configs for the secure compose cluster (``docker-compose.secure.yml``).

The same security model as ``netral broker start --secure``, for the three compose nodes:
SASL_SSL with SCRAM-SHA-512 for clients and between brokers, the controller on mutual TLS,
StandardAuthorizer with ``allow.everyone.if.no.acl.found=false``. Generated into a folder of the
operator's (never the repository): the local CA and one broker keystore whose SANs name every
node, the admin's password, one ``server-<n>.properties`` per node (the override runs the
image's Kafka with it, formatting the storage with the admin's SCRAM credential, KIP-900), the
admin client config the healthchecks use and ``hub.env``, the NETRAL_KAFKA_* settings of the
hub's services. Files holding secrets are mode 0600.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from .certs import _write_private, ensure_certs
from .local import secure_props

IN_CONTAINER = "/etc/netral/kafka"
"""Where the override mounts the folder in the Kafka containers."""
CA_IN_HUB = "/run/netral/ca.pem"
"""Where the override mounts the CA in the hub's containers."""
CLIENT_PORT, CONTROLLER_PORT = 9092, 9093


@dataclass(frozen=True)
class ComposeSecrets:
    folder: Path
    nodes: int
    admin: str


def write_compose_secrets(folder: Path, *, nodes: int = 3, admin: str = "netral-admin"
                          ) -> ComposeSecrets:
    """Create (or reuse) the CA, keystore and admin password; (re)write the node configs."""
    hosts = tuple(f"kafka{n}" for n in range(1, nodes + 1))
    certs = ensure_certs(folder, hosts=(*hosts, "localhost", "127.0.0.1"))
    pw_file = folder / "admin.pw"
    if not pw_file.exists():
        _write_private(pw_file, secrets.token_urlsafe(24).encode())
    password = pw_file.read_text().strip()
    voters = ",".join(f"{n}@{h}:{CONTROLLER_PORT}" for n, h in enumerate(hosts, start=1))
    for n, host in enumerate(hosts, start=1):
        props = {
            "process.roles": "broker,controller",
            "node.id": str(n),
            "controller.quorum.voters": voters,
            "controller.listener.names": "CONTROLLER",
            **secure_props(listeners=f"SASL_SSL://:{CLIENT_PORT},CONTROLLER://:{CONTROLLER_PORT}",
                           advertised=f"SASL_SSL://{host}:{CLIENT_PORT}", certs=certs,
                           admin=admin, admin_password=password, certs_dir=IN_CONTAINER),
            "log.dirs": "/var/lib/kafka/data",
            "auto.create.topics.enable": "false",
            "default.replication.factor": "3",
            "min.insync.replicas": "2",
            "offsets.topic.replication.factor": "3",
            "transaction.state.log.replication.factor": "3",
            "transaction.state.log.min.isr": "2",
            "group.initial.rebalance.delay.ms": "0",
            "message.max.bytes": "8389632",
            "replica.fetch.max.bytes": "8389632",
        }
        _write_private(folder / f"server-{n}.properties",
                       "".join(f"{k}={v}\n" for k, v in props.items()).encode())
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule"
    _write_private(folder / "admin-client.properties", (
        "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"
        f'sasl.jaas.config={scram} required username="{admin}" password="{password}";\n'
        f"ssl.truststore.type=PEM\nssl.truststore.location={IN_CONTAINER}/ca.pem\n").encode())
    bootstrap = ",".join(f"{h}:{CLIENT_PORT}" for h in hosts)
    _write_private(folder / "hub.env", (
        f"NETRAL_KAFKA_BOOTSTRAP={bootstrap}\nNETRAL_KAFKA_SECURITY_PROTOCOL=SASL_SSL\n"
        f"NETRAL_KAFKA_SASL_MECHANISM=SCRAM-SHA-512\nNETRAL_KAFKA_USERNAME={admin}\n"
        f"NETRAL_KAFKA_PASSWORD={password}\nNETRAL_KAFKA_CA_FILE={CA_IN_HUB}\n").encode())
    os.chmod(folder / "ca.pem", 0o644)  # public: every client needs it
    return ComposeSecrets(folder, nodes, admin)
