"""A fingerprint of the machine and software a run was measured on."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Optional

import psutil

from bench.results import Environment

PACKAGES = (
    "tensorflow",
    "tf-keras",
    "tensorflow-model-optimization",
    "ai-edge-litert",
    "numpy",
    "pandas",
    "scipy",
    "psutil",
)

# Environment variables that change how many threads the runtimes use.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OPENBLAS_NUM_THREADS")


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo, or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_version(name: str) -> Optional[str]:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def git_state(folder: Path) -> tuple[Optional[str], Optional[bool]]:
    """Return the commit checked out in ``folder`` and whether tracked files changed since."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder, capture_output=True, text=True, timeout=10,
        )
        return commit.stdout.strip(), bool(status.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        return None, None


def collect(device: str, threads: Optional[int], gpus: list[str], command_line: list[str]) -> Environment:
    commit, dirty = git_state(Path(__file__).resolve().parent.parent)
    return Environment(
        cpu_model=cpu_model(),
        cpu_count_logical=psutil.cpu_count(logical=True) or 0,
        cpu_count_physical=psutil.cpu_count(logical=False),
        memory_total_bytes=psutil.virtual_memory().total,
        os=platform.platform(),
        python=sys.version.split()[0],
        packages={name: package_version(name) for name in PACKAGES},
        device=device,
        gpus=gpus,
        git_commit=commit,
        git_dirty=dirty,
        hostname=socket.gethostname(),
        command_line=command_line,
        load_average_1m=os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        thread_settings={
            "threads_option": threads,
            **{name: os.environ.get(name) for name in THREAD_VARIABLES},
        },
    )
