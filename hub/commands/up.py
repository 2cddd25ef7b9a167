"""``netral up`` (broker + topics + worker, foreground) and ``netral demo`` (the guided tour)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import typer
from rich.console import Console

from schemas.errors import BrokerError

from ..bootstrap import kafka, local_broker, local_cluster, service_env
from ..kafka_admin import wait_group_stable
from ..settings import NetralSettings, get_settings
from .topics import ensure_topics

console = Console()


SECURE = typer.Option(False, "--secure", help="A new local broker starts with SASL_SSL and "
                      "ACLs; each service runs as its own principal.")


def start_local_broker_if_needed(settings: NetralSettings, secure: bool = False) -> bool:
    """Start the embedded broker unless NETRAL_KAFKA_BOOTSTRAP points elsewhere; True if started."""
    if settings.kafka_bootstrap:
        console.print(f"using Kafka at {settings.kafka_bootstrap}")
        return False
    if (cluster := local_cluster(settings)) is not None:
        if secure:
            raise BrokerError("--secure runs one local node; this state folder holds a local "
                              "cluster (plaintext): use another NETRAL_HOME")
        if all(n.running for n in cluster.status()):
            console.print(f"local {cluster.size}-node cluster running on {cluster.bootstrap()}")
            return False
        bootstrap, seconds = cluster.start(timeout_s=settings.broker_start_timeout_s)
        console.print(f"local {cluster.size}-node cluster ready on {bootstrap} in {seconds:.1f}s")
        return False  # a cluster is the operator's own: `netral broker stop` stops it
    broker = local_broker(settings, secure=secure)
    if broker.running_pid():
        console.print(f"local broker already running on {broker.bootstrap()}")
        return False
    console.print("starting the local Apache Kafka broker (the first run fetches it from Maven)")
    bootstrap, seconds = broker.start(timeout_s=settings.broker_start_timeout_s)
    console.print(f"broker ready on [bold]{bootstrap}[/] in {seconds:.1f}s")
    return True


def spawn_hub(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Run ``netral ARGS`` as a child process with ``env``, appending its output to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "hub", *args], env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def spawn_worker(settings: NetralSettings, log_path: Path) -> subprocess.Popen[bytes]:
    """Run ``netral worker`` as a child process, logging to ``log_path``."""
    env = dict(os.environ, **service_env(settings, "streams"),
               NETRAL_HOME=str(settings.state_dir()))
    return spawn_hub(["worker"], env, log_path)


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def up(secure: bool = SECURE) -> None:
    """Start broker, topics and the stream worker in the foreground; Ctrl-C stops them all."""
    settings = get_settings()
    started = start_local_broker_if_needed(settings, secure)
    report = ensure_topics(settings)
    console.print(f"topics: {len(report.created)} created, {len(report.existing)} existed")
    worker = spawn_worker(settings, settings.state_dir() / "logs" / "worker.log")
    try:
        seconds = asyncio.run(wait_group_stable(kafka(settings), settings.worker_app_id, 120))
        console.print(f"worker ready in {seconds:.1f}s (log: {settings.state_dir()}/logs/"
                      f"worker.log). Press Ctrl-C to stop everything.")
        while worker.poll() is None:
            time.sleep(0.5)
        console.print(f"[red]worker exited with code {worker.returncode}[/]")
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        stop_process(worker)
        if started:
            local_broker(settings).stop(timeout_s=settings.broker_stop_timeout_s)


def demo(
    cases: int = typer.Option(200, min=1, max=100_000, help="True cases in the simulated wave."),
    keep: bool = typer.Option(False, help="Leave broker and worker running afterwards."),
    secure: bool = SECURE,
) -> None:
    """Set up everything locally, run a simulated Pilkada wave through the connectors, and show
    it arriving normalised."""
    from ..demo import run_demo

    run_demo(get_settings(), cases=cases, keep=keep, console=console, secure=secure)
