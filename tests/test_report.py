"""The Markdown report and the CSV table, rendered from constructed results."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from bench.report import CSV_FILE, MARKDOWN_FILE, format_report, results_frame, write_reports
from bench.report.markdown import comparison_table, recommendations, warnings
from bench.report.table import COLUMNS
from bench.results import LatencyResult, RunResult
from tests.factories import make_failed, make_model, make_run, make_unsupported

GOLDEN_REPORT = Path(__file__).parent / "golden" / "report.md"
FAST = "tflite-dynamic-int8"
FAILED = "tflite-int8"


def three_model_run() -> RunResult:
    """A baseline, a variant 4× faster at batch 1 and 4× smaller, and a failed variant.

    Baseline: p50 4 ms at batch 1 and 20 ms at batch 32, 400 KiB gzip, accuracy 0.80.
    Fast variant: p50 1 ms and 8 ms, 100 KiB gzip, accuracy 0.795 (-0.5 points).
    """
    return make_run(
        [
            make_model("baseline"),
            make_model(
                FAST,
                family="quantization",
                runtime="litert",
                p50_ms={1: 1.0, 32: 8.0},
                gzip_bytes=100 * 1024,
                accuracy=0.795,
                peak_rss_bytes=200 * 2**20,
            ),
            make_failed(FAILED, message="converter crashed | see log"),
        ]
    )


@pytest.fixture
def run() -> RunResult:
    return three_model_run()


def section(report: str, title: str) -> str:
    """The text under ``## title``, up to the next second-level heading."""
    start = report.index(f"## {title}\n") + len(title) + 4
    end = report.find("\n## ", start)
    return report[start:] if end == -1 else report[start:end]


def parse_markdown_table(text: str) -> dict[str, dict[str, str]]:
    """Rows of a pipe table, keyed by the first cell."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(header, cells))
    return rows


@pytest.fixture
def table(run) -> dict[str, dict[str, str]]:
    return parse_markdown_table(comparison_table(run))


# --- comparison table ----------------------------------------------------------------


def test_table_one_row_per_model(table):
    assert list(table) == ["baseline", FAST, FAILED]


def test_table_columns_per_batch_size(table):
    assert "p50 b1 (ms)" in table["baseline"]
    assert "speed-up b32" in table["baseline"]


def test_table_p50_values(table):
    assert table[FAST]["p50 b1 (ms)"] == "1.000"
    assert table[FAST]["p50 b32 (ms)"] == "8.000"


def test_table_speedup(table):
    # 4 ms / 1 ms and 20 ms / 8 ms.
    assert table[FAST]["speed-up b1"] == "4.00×"
    assert table[FAST]["speed-up b32"] == "2.50×"


def test_table_baseline_ratios_one(table):
    assert table["baseline"]["speed-up b1"] == "1.00×"
    assert table["baseline"]["smaller"] == "1.00×"


def test_table_compression(table):
    # 400 KiB / 100 KiB of gzip.
    assert table[FAST]["smaller"] == "4.00×"
    assert table[FAST]["size gzip"] == "100 KiB"


def test_table_accuracy_delta(table):
    assert table[FAST]["accuracy"] == "0.7950"
    assert table[FAST]["Δ acc (pt)"] == "-0.50"
    assert table["baseline"]["Δ acc (pt)"] == "+0.00"


def test_table_peak_rss(table):
    assert table[FAST]["peak RSS"] == "200.00 MiB"


def test_table_marks_fastest_and_smallest(table):
    assert table[FAST]["best"] == "fastest b1, fastest b32, smallest"


def test_table_marks_most_accurate(table):
    assert table["baseline"]["best"] == "most accurate"


def test_table_failed_row_shows_cause(table):
    # The pipe in the message is replaced so that the table keeps its columns.
    assert table[FAILED]["status"] == "failed: build exception: converter crashed / see log"


def test_table_failed_row_empty_figures(table):
    assert table[FAILED]["p50 b1 (ms)"] == ""
    assert table[FAILED]["speed-up b1"] == ""
    assert table[FAILED]["best"] == ""


def test_table_unsupported_row_shows_reason():
    run = make_run([make_model("baseline"), make_unsupported("qat", reason="no GRU support")])

    assert parse_markdown_table(comparison_table(run))["qat"]["status"] == "unsupported: no GRU support"


def test_table_without_baseline_no_ratios():
    run = make_run([make_model(FAST, p50_ms={1: 1.0, 32: 8.0})])
    row = parse_markdown_table(comparison_table(run))[FAST]

    assert row["speed-up b1"] == ""
    assert row["smaller"] == ""
    assert row["Δ acc (pt)"] == ""


def test_table_batch_sizes_from_latency_without_suite():
    run = make_run([make_model("baseline", p50_ms={8: 2.0})])
    run.suite = {}

    assert "p50 b8 (ms)" in parse_markdown_table(comparison_table(run))["baseline"]


def test_failed_model_never_marked():
    failed = make_failed(FAILED)
    failed.latency = [make_model("x", p50_ms={1: 0.5}).latency[0]]
    run = make_run([make_model("baseline"), failed])

    assert parse_markdown_table(comparison_table(run))["baseline"]["best"].startswith("fastest b1")


# --- recommendations ------------------------------------------------------------------------


def test_recommend_fastest_batch_one(run):
    lines = recommendations(run)

    assert lines[0] == (
        f"Fastest at batch 1 within 1 point of the baseline's accuracy: **{FAST}**, "
        "p50 1.000 ms (4.00× the baseline, -0.50 pt)."
    )


def test_recommend_fastest_batch_32(run):
    assert f"**{FAST}**, p50 8.000 ms (2.50× the baseline" in recommendations(run)[1]


def test_recommend_smallest(run):
    assert recommendations(run)[2] == f"Smallest within 1 point: **{FAST}**, 100 KiB gzip (4.00× smaller, -0.50 pt)."


def test_recommend_smallest_is_baseline():
    run = make_run([make_model("baseline"), make_model("xla", gzip_bytes=800 * 1024)])

    assert recommendations(run)[2] == "No variant within 1 point is smaller than the baseline."


def test_recommend_least_memory(run):
    assert recommendations(run)[3] == f"Least memory within 1 point: **{FAST}**, peak RSS 200.00 MiB."


def test_recommend_skips_accuracy_loss():
    # "pruned" is fastest and smallest but loses 5 points, beyond the 1-point tolerance.
    run = make_run(
        [
            make_model("baseline"),
            make_model("pruned", p50_ms={1: 0.5, 32: 2.0}, gzip_bytes=10 * 1024, accuracy=0.75),
            make_model(FAST, p50_ms={1: 1.0, 32: 8.0}, gzip_bytes=100 * 1024, accuracy=0.795),
        ]
    )
    lines = recommendations(run)

    assert all("pruned" not in line for line in lines)
    assert f"**{FAST}**" in lines[0]


def test_recommend_accuracy_loss_still_marked_fastest():
    run = make_run([make_model("baseline"), make_model("pruned", p50_ms={1: 0.5, 32: 2.0}, accuracy=0.75)])

    assert "fastest b1" in parse_markdown_table(comparison_table(run))["pruned"]["best"]


def test_recommend_baseline_when_alone():
    lines = recommendations(make_run([make_model("baseline")]))

    assert "**baseline**" in lines[0]


def test_recommend_without_baseline():
    run = make_run([make_failed("baseline"), make_model(FAST)])

    assert recommendations(run) == ["No recommendation: the baseline was not measured."]


# --- warnings ---------------------------------------------------------------------------------


def test_warn_slower_than_baseline():
    run = make_run([make_model("baseline"), make_model("xla", p50_ms={1: 5.0, 32: 10.0})])

    assert warnings(run) == ["xla is slower than the baseline at batch 1 (5.000 ms against 4.000 ms p50)."]


def test_warn_none_within_slower_margin():
    # 2% slower at batch 1: within what processes on a shared machine differ by.
    run = make_run([make_model("baseline"), make_model("xla", p50_ms={1: 4.08, 32: 10.0})])

    assert warnings(run) == []


def test_warn_none_for_faster_variant(run):
    assert warnings(run) == []


def test_warn_few_calls():
    run = make_run([make_model("baseline", p50_ms={1: 4.0})])
    run.models[0].latency = [
        LatencyResult.from_samples(batch_size=1, call_path="serve(x)", first_call_s=0.1, warmup_s=[], samples_s=[0.004] * 10)
    ]

    assert warnings(run) == ["baseline batch 1: only 10 timed calls; raise --min-calls for figures to compare."]


def test_warn_noisy_timings():
    # Samples 1 ms and 9 ms alternate: quartiles 1 ms and 9 ms, median 5 ms, so the range is 160 % of it.
    samples_s = [0.001, 0.009] * 20
    run = make_run([make_model("baseline", p50_ms={1: 4.0})])
    run.models[0].latency = [
        LatencyResult.from_samples(batch_size=1, call_path="serve(x)", first_call_s=0.1, warmup_s=[], samples_s=samples_s)
    ]

    (line,) = warnings(run)
    assert line.startswith("baseline batch 1: timings vary a lot (interquartile range 160% of the median)")
    assert "--min-duration-s" in line


# --- the whole report ------------------------------------------------------------------------


def test_report_sections_in_order(run):
    report = format_report(run)
    headings = [line for line in report.splitlines() if line.startswith("## ")]

    assert headings == [
        "## Comparison",
        "## Recommendations",
        "## Latency by batch size",
        "## Build, load, memory and size",
        "## Variants",
    ]


def test_report_warnings_section_when_slower():
    run = make_run([make_model("baseline"), make_model("xla", p50_ms={1: 5.0, 32: 10.0})])

    assert "- xla is slower than the baseline at batch 1" in section(format_report(run), "Warnings")


def test_report_header(run):
    report = format_report(run)

    assert report.startswith("# Benchmark report 20250101-120000-rotten-tomatoes\n")
    assert "commit 0123456789ab." in report
    assert "TensorFlow 2.21.0" in report


def test_report_marks_modified_commit(run):
    run.environment.git_dirty = True

    assert "commit 0123456789ab (modified)." in format_report(run)


def test_report_unfinished_run(run):
    run.finished_at = None

    assert "finished not yet (interrupted or running)" in format_report(run)


def test_report_data_line(run):
    assert "10202/1275/1275 texts for train/validation/test after dropping 56 duplicates" in format_report(run)


def test_report_without_data(run):
    run.data = None

    assert "Data:" not in format_report(run)


def test_report_failure_details(run):
    details = section(format_report(run), "Variants")

    assert "- build exception: converter crashed | see log" in details
    assert "- log: `logs/tflite-int8.log`" in details
    assert "```\nTraceback ...\n```" in details


def test_report_recommendations_listed(run):
    assert f"- Fastest at batch 1 within 1 point of the baseline's accuracy: **{FAST}**" in section(
        format_report(run), "Recommendations"
    )


def test_report_latency_table_rows(run):
    rows = [line for line in section(format_report(run), "Latency by batch size").splitlines() if line.startswith("|")]

    # Header, separator, and two batch sizes for each of the two measured models.
    assert len(rows) == 2 + 4


def test_report_no_latency():
    run = make_run([make_failed("baseline")])

    assert "No latency was measured." in format_report(run)


def test_report_matches_golden_file(run):
    """Compare with tests/golden/report.md. After a deliberate change, run with UPDATE_GOLDEN=1 to rewrite it."""
    report = format_report(run)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN_REPORT.write_text(report, encoding="utf-8")
        pytest.skip(f"rewrote {GOLDEN_REPORT}")

    assert report == GOLDEN_REPORT.read_text(encoding="utf-8")


# --- CSV table ---------------------------------------------------------------------------------


def test_frame_one_row_per_model_and_batch(run):
    frame = results_frame(run)

    # Two models with two batch sizes each, and one row for the failed model.
    assert len(frame) == 5
    assert frame["model"].tolist() == ["baseline", "baseline", FAST, FAST, FAILED]


def test_frame_columns(run):
    assert list(results_frame(run).columns) == COLUMNS


def test_frame_latency_values(run):
    frame = results_frame(run)
    row = frame[(frame["model"] == FAST) & (frame["batch_size"] == 32)].iloc[0]

    assert row["p50_ms"] == pytest.approx(8.0)
    assert row["throughput_per_s"] == pytest.approx(4000.0)
    assert row["calls"] == 40
    assert row["size_gzip_bytes"] == 100 * 1024


def test_frame_failed_row(run):
    row = results_frame(run).iloc[-1]

    assert row["status"] == "failed"
    assert row["failure"] == "build exception: converter crashed | see log"
    assert pd.isna(row["batch_size"])
    assert pd.isna(row["accuracy"])


def test_write_reports_files(tmp_path, run):
    paths = write_reports(run, tmp_path)

    assert [path.name for path in paths] == [CSV_FILE, MARKDOWN_FILE]
    assert (tmp_path / MARKDOWN_FILE).read_text(encoding="utf-8") == format_report(run)


def test_write_reports_csv_rows(tmp_path, run):
    write_reports(run, tmp_path)
    frame = pd.read_csv(tmp_path / CSV_FILE)

    assert len(frame) == 5
    assert frame.groupby("model", sort=False).size().to_dict() == {"baseline": 2, FAST: 2, FAILED: 1}
    assert frame["failure"].iloc[-1] == "build exception: converter crashed | see log"


def test_warn_chance_accuracy():
    model = make_model("baseline", accuracy=0.52)
    run = make_run([model])

    lines = [line for line in warnings(run) if "no better than chance" in line]
    assert len(lines) == 1
    assert "balanced accuracy 0.50" in lines[0]


@pytest.mark.parametrize("key, label", [
    ("conversion_s", "conversion (s)"),
    ("file_bytes_by_batch", "file bytes by batch"),
    ("kernel_sparsity", "kernel sparsity"),
    ("rss_bytes", "rss (bytes)"),
])
def test_variant_detail_labels_are_words(key, label):
    from bench.report.markdown import _detail_label

    assert _detail_label(key) == label
