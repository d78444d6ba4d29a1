"""Resident memory of the current process, sampled in a background thread."""

from __future__ import annotations

import threading

import psutil


def current_rss_bytes() -> int:
    return psutil.Process().memory_info().rss


class PeakRssSampler:
    """Track the peak resident set size (RSS) while the context is open.

    RSS is sampled every ``interval_s`` seconds, so a spike shorter than
    that can be missed; ``peak_bytes`` also includes the samples taken on
    entry and exit.
    """

    def __init__(self, interval_s: float = 0.005):
        self.interval_s = interval_s
        self.peak_bytes = 0
        self.samples = 0
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        rss = self._process.memory_info().rss
        self.samples += 1
        if rss > self.peak_bytes:
            self.peak_bytes = rss

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> "PeakRssSampler":
        self._sample()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
