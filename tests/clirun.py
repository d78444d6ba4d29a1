"""Run the ``bench`` command line in a subprocess, as a user or CI would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def bench_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def run_bench(*args: str, env: dict[str, str] | None = None, timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run ``python -m bench.cli ARGS`` and capture its output as text."""
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", *args],
        cwd=REPO_ROOT,
        env=env or bench_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def run_folder(out: Path) -> Path:
    """The single run folder that a run wrote into ``out``."""
    folders = [path for path in out.iterdir() if path.is_dir() and not path.is_symlink()]
    if len(folders) != 1:
        raise AssertionError(f"expected one run folder in {out}, found {sorted(p.name for p in folders)}")
    return folders[0]
