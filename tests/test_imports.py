"""The harness, reports and data modules must load without TensorFlow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

LIGHT_MODULES = [
    "bench.cli",
    "bench.config",
    "bench.memory",
    "bench.report",
    "bench.results",
    "bench.stats",
    "bench.timing",
    "textcls.data",
    "textcls.metrics",
    "textcls.variants",
]


def test_light_modules_skip_tensorflow():
    # A fresh interpreter, because other tests in this session may have imported TensorFlow.
    code = f"import sys\nfor name in {LIGHT_MODULES!r}:\n    __import__(name)\nprint('tensorflow' in sys.modules)"
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parent.parent, timeout=120
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "False"
