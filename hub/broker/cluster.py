"""A local multi-node KRaft cluster from the same Maven jars: ``netral broker start --brokers 3``.

Every node is a combined broker + controller (``broker/node-<id>/``) with its own ports, folder
and node id; all are voters of one controller quorum, so the cluster survives one node of three.
Internal topics get RF 3 and min ISR 2; the hub's topics are created with
``NETRAL_TOPIC_REPLICATION=3`` / ``NETRAL_TOPIC_MIN_INSYNC=2`` (``netral topics create`` reads
the cluster's size). The layout is decided once, on first start, in ``broker/cluster.json``.

Heaps: three JVMs share the machine's 2 cores and 24 GiB with the workers; ``heap_mb`` per node
(default 384 MB) is plenty for a dev cluster and leaves room for everything else.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from schemas.errors import BrokerError

from .local import LocalBroker, Membership, _cluster_id, free_port


@dataclass(frozen=True)
class NodeStatus:
    node_id: int
    running: bool
    pid: int | None
    bootstrap: str


class LocalCluster:
    """N local KRaft nodes forming one cluster, managed from the state folder."""

    def __init__(self, home: Path, *, size: int = 3, version: str = "3.9.1",
                 host: str = "127.0.0.1", heap_mb: int = 384,
                 dist_dir: Path | None = None) -> None:
        if size < 1:
            raise BrokerError(f"--brokers {size}: a cluster needs at least one node")
        self.home = home.expanduser().resolve()
        self.size, self.version, self.host, self.heap_mb = size, version, host, heap_mb
        self.dist_dir = dist_dir
        self.layout_file = self.home / "broker" / "cluster.json"

    @classmethod
    def existing(cls, home: Path, **kwargs: object) -> LocalCluster | None:
        """The cluster laid out under ``home``, if any (its size comes from cluster.json)."""
        layout = home.expanduser().resolve() / "broker" / "cluster.json"
        if not layout.exists():
            return None
        size = len(json.loads(layout.read_text())["nodes"])
        return cls(home, size=size, **kwargs)  # type: ignore[arg-type]

    def _layout(self) -> dict[str, object]:
        if self.layout_file.exists():
            layout = json.loads(self.layout_file.read_text())
            if len(layout["nodes"]) != self.size:
                raise BrokerError(
                    f"the local cluster in {self.layout_file.parent} has "
                    f"{len(layout['nodes'])} nodes, not {self.size}: use --brokers "
                    f"{len(layout['nodes'])}, or `netral broker reset --yes` to start over")
            return dict(layout)
        single = self.home / "broker" / "node-1" / "meta.json"
        if single.exists():
            raise BrokerError(
                f"{single.parent} holds a single-node broker: `netral broker reset --yes` "
                "before starting a cluster")
        nodes = [{"node_id": i, "port": free_port(self.host),
                  "controller_port": free_port(self.host)} for i in range(1, self.size + 1)]
        layout = {"cluster_id": _cluster_id(), "nodes": nodes}
        self.layout_file.parent.mkdir(parents=True, exist_ok=True)
        self.layout_file.write_text(json.dumps(layout, indent=2))
        return layout

    def nodes(self) -> list[LocalBroker]:
        layout = self._layout()
        entries: list[dict[str, int]] = layout["nodes"]  # type: ignore[assignment]
        voters = ",".join(f"{n['node_id']}@{self.host}:{n['controller_port']}" for n in entries)
        replication = min(3, self.size)
        return [LocalBroker(self.home, version=self.version, host=self.host, heap_mb=self.heap_mb,
                            node_id=n["node_id"], dist_dir=self.dist_dir,
                            membership=Membership(cluster_id=str(layout["cluster_id"]),
                                                  voters=voters, port=n["port"],
                                                  controller_port=n["controller_port"],
                                                  replication=replication))
                for n in entries]

    def node(self, node_id: int) -> LocalBroker:
        for n in self.nodes():
            if n.node_id == node_id:
                return n
        raise BrokerError(f"--node {node_id}: the local cluster has nodes 1..{self.size}")

    def bootstrap(self) -> str:
        return ",".join(f"{self.host}:{n.port}" for n in self.nodes())

    def start(self, timeout_s: float = 120.0) -> tuple[str, float]:
        """Start every node that is not running, together; wait until all answer."""
        started = time.monotonic()
        nodes = self.nodes()
        if nodes:
            nodes[0].ensure_dist()
        launched = [(n, n.launch()) for n in nodes if n.running_pid() is None]
        for node, proc in launched:
            node.wait_started(proc, started, timeout_s)
        return self.bootstrap(), time.monotonic() - started

    def restart_node(self, node_id: int, timeout_s: float = 120.0) -> float:
        node = self.node(node_id)
        if node.running_pid() is not None:
            return 0.0
        started = time.monotonic()
        node.wait_started(node.launch(), started, timeout_s)
        return time.monotonic() - started

    def stop(self, timeout_s: float = 30.0) -> int:
        """Stop every node (last first); returns how many were running."""
        return sum(n.stop(timeout_s=timeout_s) for n in reversed(self.nodes()))

    def status(self) -> list[NodeStatus]:
        return [NodeStatus(n.node_id, n.running_pid() is not None, n.running_pid(),
                           f"{self.host}:{n.port}") for n in self.nodes()]

    def reset(self) -> None:
        for n in self.nodes():
            n.reset()
        self.layout_file.unlink(missing_ok=True)
