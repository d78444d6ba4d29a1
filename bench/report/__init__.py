"""Reports rendered from a run's results.json alone."""

from __future__ import annotations

from pathlib import Path

from bench.report.markdown import format_report
from bench.report.table import results_frame
from bench.results import RunResult

CSV_FILE = "results.csv"
MARKDOWN_FILE = "report.md"


def write_reports(run: RunResult, folder: Path) -> list[Path]:
    """Write results.csv and report.md for ``run`` into ``folder``; return their paths."""
    csv_path = Path(folder) / CSV_FILE
    markdown_path = Path(folder) / MARKDOWN_FILE
    results_frame(run).to_csv(csv_path, index=False)
    markdown_path.write_text(format_report(run), encoding="utf-8")
    return [csv_path, markdown_path]


__all__ = ["write_reports", "format_report", "results_frame", "CSV_FILE", "MARKDOWN_FILE"]
