"""``netral broker``: fetch, start, stop and inspect the local Apache Kafka broker."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import typer
from rich.console import Console

from schemas.errors import BrokerError, ConfigError

from ..bootstrap import local_broker, local_cluster
from ..broker.cluster import LocalCluster
from ..settings import get_settings

broker_app = typer.Typer(help="Run Apache Kafka's own broker (KRaft) locally, from Maven Central.",
                         no_args_is_help=True)
console = Console()


@broker_app.command("fetch")
def fetch() -> None:
    """Resolve the Apache Kafka jars from Maven Central into the state folder (cached)."""
    broker = local_broker(get_settings())
    libs = broker.ensure_dist()
    console.print(f"Apache Kafka {broker.version} jars ready in {libs}")


@broker_app.command("start")
def start(
    brokers: int = typer.Option(None, "--brokers", min=1, max=9,
                                help="Run a local cluster of this many KRaft nodes (RF 3, min "
                                     "ISR 2 on three); default: the single node, or the "
                                     "cluster already laid out."),
    secure: bool = typer.Option(
        False, "--secure",
        help="First start of the single node only: SASL_SSL (SCRAM-SHA-512) with ACLs; "
             "certificates and the admin's credentials are generated into the state folder."),
) -> None:
    """Start the local broker or cluster (first run: resolve the jars and format storage)."""
    settings = get_settings()
    cluster = local_cluster(settings, size=brokers) if brokers and brokers > 1 \
        else local_cluster(settings)
    if cluster is not None:
        if secure:
            raise BrokerError("--secure runs one local node; this state folder holds a local "
                              "cluster (plaintext): use another NETRAL_HOME")
        bootstrap, seconds = cluster.start(timeout_s=settings.broker_start_timeout_s)
        console.print(f"{cluster.size}-node cluster ready on [bold]{bootstrap}[/] in "
                      f"{seconds:.1f}s")
        return
    broker = local_broker(settings, secure=secure)
    if pid := broker.running_pid():
        console.print(f"broker already running (pid {pid}) on {broker.bootstrap()}")
        return
    bootstrap, seconds = broker.start(timeout_s=settings.broker_start_timeout_s)
    console.print(f"broker ready on [bold]{bootstrap}[/] in {seconds:.1f}s "
                  f"(pid {broker.running_pid()}, log {broker.log_file})")
    if broker.secure:
        console.print(f"security: SASL_SSL, SCRAM-SHA-512, ACLs on; admin {broker.admin_user}, "
                      f"CA {broker.tls_dir / 'ca.pem'}")


@broker_app.command("stop")
def stop() -> None:
    """Stop the local broker or every node of the local cluster gracefully."""
    settings = get_settings()
    if (cluster := local_cluster(settings)) is not None:
        n = cluster.stop(timeout_s=settings.broker_stop_timeout_s)
        console.print(f"{n} of {cluster.size} nodes were running; all stopped")
        return
    was_running = local_broker(settings).stop(timeout_s=settings.broker_stop_timeout_s)
    console.print("broker stopped" if was_running else "broker was not running")


def _cluster_or_fail() -> LocalCluster:
    cluster = local_cluster(get_settings())
    if cluster is None:
        raise ConfigError("no local cluster: start one with `netral broker start --brokers 3`")
    return cluster


@broker_app.command("kill")
def kill(node: int = typer.Option(..., "--node", min=1, help="Node id (1..N).")) -> None:
    """SIGKILL one node of the local cluster (fault injection): no clean shutdown."""
    was = _cluster_or_fail().node(node).kill()
    console.print(f"node {node} killed" if was else f"node {node} was not running")


@broker_app.command("restart")
def restart(node: int = typer.Option(..., "--node", min=1, help="Node id (1..N).")) -> None:
    """Start one stopped or killed node of the local cluster again; it rejoins the quorum."""
    settings = get_settings()
    seconds = _cluster_or_fail().restart_node(node, timeout_s=settings.broker_start_timeout_s)
    console.print(f"node {node} running (ready in {seconds:.1f}s)")


@broker_app.command("status")
def status() -> None:
    """Show whether the local broker runs, where, and how much data it holds."""
    if (cluster := local_cluster(get_settings())) is not None:
        nodes = cluster.status()
        for n in nodes:
            state = f"[green]running[/] (pid {n.pid})" if n.running else "[yellow]stopped[/]"
            console.print(f"node {n.node_id}: {state} on {n.bootstrap}")
        if not all(n.running for n in nodes):
            raise typer.Exit(3)
        return
    st = local_broker(get_settings()).status()
    state = f"[green]running[/] (pid {st.pid})" if st.running else "[yellow]stopped[/]"
    console.print(f"broker: {state}")
    console.print(f"bootstrap: {st.bootstrap or '(never started)'}")
    console.print(f"state: {st.node_dir}  data: {st.data_bytes / 1e6:.1f} MB")
    console.print("security: " + ("SASL_SSL (SCRAM-SHA-512), ACLs on" if st.secure
                                  else "none (PLAINTEXT)"))
    if not st.running:
        raise typer.Exit(3)


@broker_app.command("logs")
def logs(
    lines: int = typer.Option(50, "-n", "--lines", min=1, help="How many lines to show."),
    follow: bool = typer.Option(False, "-f", "--follow", help="Keep printing new lines."),
) -> None:
    """Print the broker's log."""
    broker = local_broker(get_settings())
    if not broker.log_file.exists():
        console.print(f"no broker log yet at {broker.log_file}")
        raise typer.Exit(1)
    cmd = ["tail", "-n", str(lines), *(["-F"] if follow else []), str(broker.log_file)]
    with contextlib.suppress(KeyboardInterrupt):
        subprocess.run(cmd, check=False)


@broker_app.command("reset")
def reset(
    yes: bool = typer.Option(False, "--yes", help="Confirm deleting the broker's data."),
) -> None:
    """Stop the local broker and delete its data (topics, offsets). The jar cache is kept."""
    if not yes:
        console.print("refusing to delete the broker's data without --yes")
        raise typer.Exit(2)
    settings = get_settings()
    if (cluster := local_cluster(settings)) is not None:
        cluster.reset()
    local_broker(settings).reset()
    console.print("local broker state deleted")




@broker_app.command("compose-secrets")
def compose_secrets(
    out: Path = typer.Option(Path("compose-secrets"), "--out",
                             help="Folder for the secrets (next to docker-compose.yml; never "
                                  "commit it)."),
    admin: str = typer.Option("netral-admin", help="The hub admin's SCRAM user name."),
) -> None:
    """Generate the CA, broker keystore, admin password and node configs of the secure compose
    cluster (docker-compose.secure.yml); reuses an existing CA and password."""
    from ..broker.compose_secrets import write_compose_secrets

    made = write_compose_secrets(out, admin=admin)
    console.print(f"secure compose secrets for {made.nodes} nodes in {out}/ (admin {admin}); "
                  f"start with: docker compose -f docker-compose.yml -f docker-compose.secure.yml "
                  f"up -d")
