"""Run one worker process with a time limit, and describe how it ended."""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 30
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


@dataclass
class WorkerOutcome:
    result: Optional[dict]  # the worker's JSON result when it exited cleanly
    failure_kind: Optional[str]  # "exception", "signal", "timeout" or None
    message: str
    log_tail: str


def _die_with_parent() -> None:
    """Ask Linux to kill this child when the parent dies, even by SIGKILL.

    Runs in the child between fork and exec. Without it a worker in its own
    session would outlive a killed parent and keep a core busy.
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass  # not Linux: the worker may outlive a killed parent


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def run_worker(spec: dict, spec_path: Path, log_path: Path, timeout_s: float, label: str, env: dict) -> WorkerOutcome:
    """Run ``python -m bench.worker`` on ``spec`` and wait at most ``timeout_s`` seconds.

    The worker runs in its own process group, so a timeout kills it and
    anything it started. Its standard error is appended to ``log_path`` and
    logged line by line with ``label`` in front, which shows progress.
    """
    result_path = Path(spec["result_path"])
    result_path.unlink(missing_ok=True)
    spec_path.write_text(json.dumps(spec, indent=1, default=str))
    tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)

    with open(log_path, "a", encoding="utf-8") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.worker", str(spec_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            text=True,
            encoding="utf-8",
            errors="replace",
        )

        def pump() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                log_file.write(line)
                log_file.flush()
                tail.append(line.rstrip("\n"))
                if _worth_showing(line):
                    log.info("[%s] %s", label, line.rstrip())

        reader = threading.Thread(target=pump, name=f"log-{label}", daemon=True)
        reader.start()
        try:
            returncode = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            reader.join(timeout=5)
            return WorkerOutcome(None, "timeout", f"timed out after {timeout_s:g} s and was killed", "\n".join(tail))
        except BaseException:
            # Ctrl-C in the parent: the worker is in its own session and would
            # otherwise keep running.
            _kill_group(process)
            raise
        reader.join(timeout=5)

    log_tail = "\n".join(tail)
    if returncode < 0:
        name = _signal_name(-returncode)
        hint = " (the kernel's out-of-memory killer sends this)" if name == "SIGKILL" else ""
        return WorkerOutcome(None, "signal", f"worker died from {name}{hint}", log_tail)
    payload = _read_result(result_path)
    if returncode != 0 or payload is None or payload.get("status") == "error":
        message = (payload or {}).get("error") or f"worker exited with code {returncode} and wrote no result"
        return WorkerOutcome(None, "exception", message, log_tail)
    return WorkerOutcome(payload, None, "", log_tail)


def _read_result(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _worth_showing(line: str) -> bool:
    """Keep the worker's own progress lines on the console; the log file keeps all."""
    return line.startswith(("INFO textcls", "INFO bench", "WARNING textcls", "WARNING bench", "ERROR"))
