"""Running the real CLI in a subprocess, as an operator would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def netral(*args: str, env: dict[str, str] | None = None, timeout: float = 180,
           check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``netral ARGS`` with this interpreter; returns the completed process (text)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("NETRAL_")}
    full_env.update(env or {})
    full_env.setdefault("COLUMNS", "200")
    proc = subprocess.run([sys.executable, "-m", "hub", *args], env=full_env, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"netral {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc
