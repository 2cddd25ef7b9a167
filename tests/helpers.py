"""Running the real CLI in a subprocess, as an operator would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KAFKA_SECURITY = ("NETRAL_KAFKA_SECURITY_PROTOCOL", "NETRAL_KAFKA_SASL_MECHANISM",
                  "NETRAL_KAFKA_USERNAME", "NETRAL_KAFKA_PASSWORD", "NETRAL_KAFKA_CA_FILE")
"""The security settings of an external test cluster (the session ``kafka`` fixture)."""


def child_env(env: dict[str, str] | None, environ: Mapping[str, str]) -> dict[str, str]:
    """A child's environment: the caller's, without its NETRAL_* settings, plus ``env``. A child
    sent to the external cluster (``env``'s NETRAL_KAFKA_BOOTSTRAP is the one in ``environ``)
    also gets that cluster's NETRAL_KAFKA_* security settings, unless ``env`` sets them."""
    full = {k: v for k, v in environ.items() if not k.startswith("NETRAL_")}
    given = env or {}
    external = environ.get("NETRAL_KAFKA_BOOTSTRAP")
    if external and given.get("NETRAL_KAFKA_BOOTSTRAP") == external:
        full.update({k: environ[k] for k in KAFKA_SECURITY if k in environ})
    full.update(given)
    return full


def netral(*args: str, env: dict[str, str] | None = None, timeout: float = 180,
           check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``netral ARGS`` with this interpreter; returns the completed process (text)."""
    full_env = child_env(env, os.environ)
    full_env.setdefault("COLUMNS", "200")
    proc = subprocess.run([sys.executable, "-m", "hub", *args], env=full_env, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"netral {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc
