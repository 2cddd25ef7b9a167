"""Lifecycle of the embedded Apache Kafka broker (KRaft, single node) under the state folder.

Layout under ``$NETRAL_HOME``::

    dist/kafka-<version>/libs/      jars resolved from Maven Central (cached, shared by nodes)
    broker/node-<id>/server.properties, log4j.properties, meta.json, broker.pid, broker.log
    broker/node-<id>/data/          KRaft metadata and topic data (persists across stop/start)
    broker/node-<id>/tls/           secure mode: local CA, broker keystore (generated, mode 0600)
    broker/node-<id>/admin.password secure mode: the hub admin's SCRAM password (mode 0600)

Secure mode (``secure=True``, chosen when the state is first created and kept in meta.json): the
client listener is SASL_SSL with SCRAM-SHA-512, the controller listener is TLS with client
certificates (only the broker holds one), KRaft's StandardAuthorizer denies whatever no ACL
allows, and the hub admin (a super user) gets SCRAM credentials at format time.

Every expected failure (no JDK, no Maven, port in use, corrupted state) raises
:class:`~schemas.errors.BrokerError` whose message is one line saying what to do.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pydantic import SecretStr

from schemas.errors import BrokerError, RetriableError
from schemas.kafka import KafkaConnection

from ..kafka_admin import wait_ready
from .certs import BROKER_PRINCIPAL, BrokerCerts, ensure_certs

JDK_HINT = "install a JDK 17+ (Debian: apt install openjdk-17-jdk-headless) and put java on PATH"
MVN_HINT = "install Maven (Debian: apt install maven) and put mvn on PATH"


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap: str | None
    node_dir: Path
    data_bytes: int
    secure: bool = False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def _cluster_id() -> str:
    """A Kafka cluster id: random UUID, base64url without padding (kafka-storage random-uuid).

    Like Kafka's own ``Uuid.randomUuid``, never one starting with "-": the storage tool would
    read it as an option.
    """
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


@dataclass(frozen=True)
class Membership:
    """A node's place in a local multi-node cluster (all decided before any node is formatted:
    every node lists every controller)."""

    cluster_id: str
    voters: str  # controller.quorum.voters, e.g. "1@127.0.0.1:19093,2@...,3@..."
    port: int
    controller_port: int
    replication: int  # RF of the internal topics (offsets, transactions), and their min ISR - 1


def secure_props(*, listeners: str, advertised: str, certs: BrokerCerts, admin: str,
                 admin_password: str, certs_dir: str | None = None) -> dict[str, str]:
    """A secure node's broker configs: SASL_SSL (SCRAM-SHA-512) for clients and between brokers
    (the broker logs in as the admin), the controller on TLS with required client certificates
    (only holders of the broker certificate), StandardAuthorizer denying what no ACL allows.
    ``certs_dir``: where the node sees the files, if not where they were written (a container).
    """
    def path(p: Path) -> str:
        return f"{certs_dir}/{p.name}" if certs_dir else str(p)

    scram = "org.apache.kafka.common.security.scram.ScramLoginModule"
    return {
        "listeners": listeners,
        "advertised.listeners": advertised,
        "inter.broker.listener.name": "SASL_SSL",
        "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:SSL",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        # The broker talks to itself (and its peers) on the client listener as the admin.
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config":
            f'{scram} required username="{admin}" password="{admin_password}";',
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": path(certs.keystore_file),
        "ssl.keystore.password": certs.keystore_password,
        "ssl.key.password": certs.keystore_password,
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": path(certs.ca_file),
        # Only a holder of a certificate from the local CA (a broker) reaches the controller.
        "listener.name.controller.ssl.client.auth": "required",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"User:{admin};{BROKER_PRINCIPAL}",
    }


class LocalBroker:
    """One local KRaft node (broker + controller) managed from the state folder."""

    def __init__(
        self,
        home: Path,
        *,
        version: str = "3.9.1",
        host: str = "127.0.0.1",
        port: int = 9092,
        controller_port: int = 0,
        heap_mb: int = 512,
        node_id: int = 1,
        dist_dir: Path | None = None,
        membership: Membership | None = None,
        secure: bool = False,
        admin_user: str = "netral-admin",
    ) -> None:
        self.home = home.expanduser().resolve()
        self.version = version
        self.host = host
        self.port = port
        self.controller_port = controller_port
        self.heap_mb = heap_mb
        self.node_id = node_id
        self.dist_dir = (dist_dir or self.home / "dist").expanduser().resolve()
        self.node_dir = self.home / "broker" / f"node-{node_id}"
        self.membership = membership
        if membership is not None:
            self.port, self.controller_port = membership.port, membership.controller_port
        if secure and membership is not None:
            raise BrokerError("--secure runs one local node; the local cluster is plaintext "
                              "(use a real cluster's own TLS and SASL setup)")
        self.want_secure = secure
        self.admin_user = admin_user

    # -- paths ---------------------------------------------------------------------------------
    @property
    def libs_dir(self) -> Path:
        return self.dist_dir / f"kafka-{self.version}" / "libs"

    @property
    def data_dir(self) -> Path:
        return self.node_dir / "data"

    @property
    def pid_file(self) -> Path:
        return self.node_dir / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.node_dir / "broker.log"

    @property
    def meta_file(self) -> Path:
        return self.node_dir / "meta.json"

    @property
    def tls_dir(self) -> Path:
        return self.node_dir / "tls"

    @property
    def admin_password_file(self) -> Path:
        return self.node_dir / "admin.password"

    @property
    def secure(self) -> bool:
        """Whether this node's state was created secure (read from meta.json once it exists)."""
        if self.meta_file.exists():
            return bool(self._read_meta().get("secure", False))
        return self.want_secure

    # -- distribution ----------------------------------------------------------------------------
    def ensure_dist(self) -> Path:
        """Resolve the broker jars from Maven Central once; later calls use the cache."""
        marker = self.libs_dir.parent / ".complete"
        if marker.exists():
            return self.libs_dir
        self._require_java()
        mvn = shutil.which("mvn")
        if not mvn:
            raise BrokerError(f"Maven (mvn) not found: {MVN_HINT}")
        self.libs_dir.mkdir(parents=True, exist_ok=True)
        pom = resources.files("hub.broker").joinpath("pom.xml")
        log = self.libs_dir.parent / "maven.log"
        with resources.as_file(pom) as pom_path, log.open("w") as out:
            proc = subprocess.run(
                [mvn, "-B", "-q", "-f", str(pom_path), "dependency:copy-dependencies",
                 f"-Dkafka.version={self.version}", f"-DoutputDirectory={self.libs_dir}"],
                stdout=out, stderr=subprocess.STDOUT, check=False,
            )
        if proc.returncode != 0 or not any(self.libs_dir.glob("kafka_2.13-*.jar")):
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise BrokerError(
                f"could not resolve Apache Kafka {self.version} from Maven Central "
                f"(mvn exit {proc.returncode}: {tail[0][:200]}); see {log}"
            )
        marker.write_text(self.version)
        return self.libs_dir

    @staticmethod
    def _require_java() -> str:
        java = shutil.which("java")
        if not java:
            raise BrokerError(f"java not found: {JDK_HINT}")
        out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
        text = out.stderr + out.stdout
        try:
            major = int(text.split('"')[1].split(".")[0])
        except (IndexError, ValueError):
            raise BrokerError(
                f"cannot read the Java version from `java -version`: {JDK_HINT}"
            ) from None
        if major < 17:
            raise BrokerError(f"Java {major} found, Kafka 3.9 needs 17+: {JDK_HINT}")
        return java

    # -- state -----------------------------------------------------------------------------------
    def _read_meta(self) -> dict[str, object]:
        try:
            meta = json.loads(self.meta_file.read_text())
            int(meta["port"]), int(meta["controller_port"]), str(meta["cluster_id"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise BrokerError(
                f"state folder {self.node_dir} is corrupted ({type(err).__name__}: {err}); "
                f"run `netral broker reset --yes` to start over (deletes the local broker's data)"
            ) from None
        return dict(meta)

    def _init_state(self) -> dict[str, object]:
        """First start: pick ports, write configs and format KRaft storage."""
        if self.meta_file.exists():
            return self._read_meta()
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise BrokerError(
                f"state folder {self.node_dir} has data but no meta.json (corrupted); "
                f"run `netral broker reset --yes` to start over"
            )
        port = self.port or free_port(self.host)
        cport = self.controller_port or free_port(self.host)
        cluster_id = self.membership.cluster_id if self.membership else _cluster_id()
        meta: dict[str, object] = {
            "port": port, "controller_port": cport, "cluster_id": cluster_id,
            "node_id": self.node_id, "version": self.version, "secure": self.want_secure,
        }
        self.node_dir.mkdir(parents=True, exist_ok=True)
        if self.want_secure:
            meta["admin_user"] = self.admin_user
            ensure_certs(self.tls_dir, hosts=tuple(dict.fromkeys((self.host, "127.0.0.1",
                                                                  "localhost"))))
            fd = os.open(self.admin_password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(24))
        self._write_configs(meta)
        self._format(meta)
        self.meta_file.write_text(json.dumps(meta, indent=2))
        return meta

    def _write_configs(self, meta: dict[str, object]) -> None:
        port, cport = meta["port"], meta["controller_port"]
        member = self.membership
        rf = member.replication if member else 1
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": member.voters if member
            else f"{self.node_id}@{self.host}:{cport}",
            "listeners": f"PLAINTEXT://{self.host}:{port},CONTROLLER://{self.host}:{cport}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "4",
            # Every topic is created by `netral topics create` with explicit configs.
            "auto.create.topics.enable": "false",
            # Dev box: internal topics have RF 1 on one node (RF 3, min ISR 2 on three), and few
            # partitions (fast start).
            "offsets.topic.replication.factor": str(rf),
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": str(rf),
            "transaction.state.log.min.isr": str(max(1, rf - 1)),
            "default.replication.factor": str(rf),
            "min.insync.replicas": str(max(1, rf - 1)),
            "transaction.state.log.num.partitions": "8",
            "group.initial.rebalance.delay.ms": "0",
            "message.max.bytes": str(8 * 1024 * 1024 + 1024),
            "replica.fetch.max.bytes": str(8 * 1024 * 1024 + 1024),
            "log.segment.bytes": str(64 * 1024 * 1024),
        }
        if meta.get("secure"):
            props.update(self._secure_props(meta))
        text = "".join(f"{k}={v}\n" for k, v in props.items())
        path = self.node_dir / "server.properties"
        path.touch(mode=0o600)  # holds the keystore and inter-broker passwords in secure mode
        path.chmod(0o600)
        path.write_text(text)
        (self.node_dir / "log4j.properties").write_text(
            "log4j.rootLogger=INFO, file\n"
            "log4j.appender.file=org.apache.log4j.RollingFileAppender\n"
            f"log4j.appender.file.File={self.log_file}\n"
            "log4j.appender.file.MaxFileSize=10MB\n"
            "log4j.appender.file.MaxBackupIndex=3\n"
            "log4j.appender.file.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
            "log4j.logger.kafka.request.logger=WARN\n"
            "log4j.logger.org.apache.kafka.clients=WARN\n"
            "log4j.logger.state.change.logger=WARN\n"
        )

    def _secure_props(self, meta: dict[str, object]) -> dict[str, str]:
        """SASL_SSL (SCRAM-SHA-512) for clients, mutual TLS for the controller, deny by default."""
        port, cport = meta["port"], meta["controller_port"]
        return secure_props(
            listeners=f"SASL_SSL://{self.host}:{port},CONTROLLER://{self.host}:{cport}",
            advertised=f"SASL_SSL://{self.host}:{port}", certs=ensure_certs(self.tls_dir),
            admin=str(meta.get("admin_user", self.admin_user)),
            admin_password=self._admin_password())

    def _admin_password(self) -> str:
        try:
            return self.admin_password_file.read_text().strip()
        except OSError as err:
            raise BrokerError(
                f"secure broker state in {self.node_dir} lacks the admin password ({err}); "
                f"run `netral broker reset --yes` and `netral broker start --secure` again"
            ) from None

    def admin_connection(self, client_id: str = "netral-broker-check") -> KafkaConnection:
        """How the hub's admin reaches this node (plaintext, or SCRAM over TLS when secure)."""
        meta = self._read_meta()
        bootstrap = f"{self.host}:{meta['port']}"
        if not meta.get("secure"):
            return KafkaConnection(bootstrap=bootstrap, client_id=client_id)
        return KafkaConnection(
            bootstrap=bootstrap, security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
            username=str(meta.get("admin_user", self.admin_user)),
            password=SecretStr(self._admin_password()),
            ca_file=str(self.tls_dir / "ca.pem"), client_id=client_id,
        )

    def _java_cmd(self, main_class: str, *args: str) -> list[str]:
        java = self._require_java()
        return [
            java, f"-Xms{self.heap_mb}m", f"-Xmx{self.heap_mb}m", "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{self.node_dir / 'log4j.properties'}",
            "-cp", f"{self.libs_dir}/*", main_class, *args,
        ]

    def _format(self, meta: dict[str, object]) -> None:
        cmd = self._java_cmd(
            "kafka.tools.StorageTool", "format", "-t", str(meta["cluster_id"]),
            "-c", str(self.node_dir / "server.properties"), "--ignore-formatted",
        )
        if meta.get("secure"):
            # KIP-900: the admin's SCRAM credential exists before the broker first starts.
            admin = meta.get("admin_user", self.admin_user)
            cmd += ["--add-scram",
                    f"SCRAM-SHA-512=[name={admin},password={self._admin_password()}]"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise BrokerError(f"formatting KRaft storage in {self.data_dir} failed: {last[0]}")

    # -- lifecycle -------------------------------------------------------------------------------
    def running_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    def bootstrap(self) -> str:
        meta = self._read_meta()
        return f"{self.host}:{meta['port']}"

    def connection(self) -> KafkaConnection:
        return self.admin_connection()

    def start(self, timeout_s: float = 90.0) -> tuple[str, float]:
        """Start the node (fetch and format first if needed); returns (bootstrap, seconds)."""
        started = time.monotonic()
        if self.running_pid():
            return self.bootstrap(), 0.0
        proc = self.launch()
        return self.wait_started(proc, started, timeout_s)

    def launch(self) -> subprocess.Popen[bytes]:
        """Format if needed and spawn the JVM, without waiting (nodes of a cluster start
        together: none answers before a quorum of controllers runs)."""
        self.ensure_dist()
        if self.want_secure and self.meta_file.exists() and not self._read_meta().get("secure"):
            raise BrokerError(
                f"the broker state in {self.node_dir} was created without --secure; run "
                f"`netral broker reset --yes` first (deletes its data), then start with --secure"
            )
        meta = self._init_state()
        self._write_configs(meta)
        for name, port in (("port", meta["port"]), ("controller port", meta["controller_port"])):
            if port_in_use(self.host, int(str(port))):
                raise BrokerError(
                    f"{name} {port} on {self.host} is in use by another process: stop it, or "
                    f"run `netral broker reset --yes` with NETRAL_BROKER_PORT set to a free port "
                    f"(0 = any)"
                )
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        out = (self.node_dir / "broker.out").open("ab")
        proc = subprocess.Popen(
            self._java_cmd("kafka.Kafka", str(self.node_dir / "server.properties")),
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        out.close()
        self.pid_file.write_text(str(proc.pid))
        return proc

    def wait_started(self, proc: subprocess.Popen[bytes], started: float,
                     timeout_s: float) -> tuple[str, float]:
        """Wait until the launched node answers metadata requests; (bootstrap, seconds)."""
        bootstrap = self.bootstrap()
        conn = self.admin_connection()
        deadline = started + timeout_s
        while True:
            if proc.poll() is not None:
                raise BrokerError(
                    f"the broker exited with code {proc.returncode} while starting: "
                    f"{self._last_error()} (log: {self.log_file})"
                )
            try:
                left = max(0.1, deadline - time.monotonic())
                asyncio.run(wait_ready(conn, timeout_s=min(2.0, left)))
                return bootstrap, time.monotonic() - started
            except RetriableError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise BrokerError(
                        f"the broker did not answer on {bootstrap} within {timeout_s:.0f}s; "
                        f"see {self.log_file}"
                    ) from None

    def _last_error(self) -> str:
        for path in (self.log_file, self.node_dir / "broker.out"):
            if path.exists():
                lines = [ln for ln in path.read_text(errors="replace").splitlines()
                         if "ERROR" in ln or "Exception" in ln]
                if lines:
                    return lines[-1][:300]
        return "no error in the log"

    def stop(self, timeout_s: float = 30.0) -> bool:
        """SIGTERM, wait for a clean exit, SIGKILL after ``timeout_s``; True if it was running."""
        pid = self.running_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while _pid_alive(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.1)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _pid_alive(pid):
                _reap(pid)
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> bool:
        """SIGKILL without a clean shutdown (for fault-injection tests)."""
        pid = self.running_pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGKILL)
        while _pid_alive(pid):
            _reap(pid)
            time.sleep(0.05)
        return True

    def status(self) -> BrokerStatus:
        pid = self.running_pid()
        bootstrap = self.bootstrap() if self.meta_file.exists() else None
        size = sum(p.stat().st_size for p in self.data_dir.rglob("*") if p.is_file()) \
            if self.data_dir.exists() else 0
        secure = self.secure if self.meta_file.exists() else False
        return BrokerStatus(pid is not None, pid, bootstrap, self.node_dir, size, secure)

    def reset(self) -> None:
        """Stop and delete this node's state (data, configs); the jar cache is kept."""
        self.stop()
        if self.node_dir.exists():
            shutil.rmtree(self.node_dir)


def _reap(pid: int) -> None:
    """Collect a child's exit status if we started it in this process (avoids zombies)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
