"""Resident memory sampling of the current process."""

from __future__ import annotations

from bench.memory import PeakRssSampler, current_rss_bytes

BLOCK_BYTES = 64 * 2**20
PAGE_BYTES = 4096


def test_current_rss_positive():
    assert current_rss_bytes() > 0


def test_sampler_samples_on_entry_and_exit():
    # The interval is far longer than the test, so only the entry and exit samples are taken.
    with PeakRssSampler(interval_s=3600) as sampler:
        pass

    assert sampler.samples == 2


def test_sampler_peak_includes_live_allocation():
    rss_before = current_rss_bytes()
    with PeakRssSampler(interval_s=3600) as sampler:
        block = bytearray(BLOCK_BYTES)
        # Write one byte per page so that every page becomes resident.
        for offset in range(0, BLOCK_BYTES, PAGE_BYTES):
            block[offset] = 1
    del block

    # The exit sample includes the block. The 16 MiB margin allows for memory freed elsewhere meanwhile.
    assert sampler.peak_bytes >= rss_before + BLOCK_BYTES - 16 * 2**20


def test_sampler_thread_stopped_on_exit():
    with PeakRssSampler(interval_s=0.001) as sampler:
        pass

    assert not sampler._thread.is_alive()
