"""The latency section shows the rounds' spread and the gate's verdict; the search section the
finalists it timed and rejected."""

from __future__ import annotations

from assay.report import ReportInput
from assay.report.sections import Table, build_sections

LATENCY = {
    "method": "fast path (lightgbm)", "path": "fast path (lightgbm)", "n_single": 100,
    "single_p50_ms": 0.5, "single_p99_ms": 0.9, "single_mean_ms": 0.6, "batch_size": 1000,
    "batch_rows_per_s": 1e5, "batch_ms_per_row": 0.01, "single_repeats": 3, "warmup": 20,
    "rounds": [{"p50_ms": 0.5, "p99_ms": 0.8}, {"p50_ms": 0.5, "p99_ms": 0.9},
               {"p50_ms": 40.0, "p99_ms": 70.0}],
    "attempts": 2, "attempt_p99_ms": [66.09, 0.9], "sla_ms": 50.0,
}


def _section(report: ReportInput, anchor: str) -> list[Table]:
    section = next(s for s in build_sections(report) if s.id == anchor)
    return [b for b in section.blocks if isinstance(b, Table)]


def _rows(table: Table) -> dict[str, tuple]:
    return {row[0].text: row for row in table.rows}


def test_latency_shows_rounds_attempts_and_the_gate_verdict() -> None:
    gate = {"name": "latency", "passed": True, "message": "", "evidence": {}}
    report = ReportInput(version={"version": 1}, evaluation={"latency": LATENCY}, gates=[gate],
                         spec={"serving": {"latency_p99_ms": 50}})
    rows = _rows(_section(report, "latency")[0])
    assert rows["Timed call"][1].text == "fast path (lightgbm)"
    assert "median of 3 rounds" in rows["Single row p99"][1].text
    assert rows["Single row p99"][1].cls == ""
    assert rows["Round p99 min / median / max"][1].text == "0.800 ms / 0.900 ms / 70.000 ms"
    assert "66.09 ms, 0.90 ms" in rows["Measurements"][1].text
    failed = ReportInput(version={"version": 1}, evaluation={"latency": LATENCY},
                         gates=[{**gate, "passed": False}], spec={"serving": {"latency_p99_ms": 50}})
    assert _rows(_section(failed, "latency")[0])["Single row p99"][1].cls == "fail"


def test_search_lists_the_timed_finalists_and_marks_rejected_trials() -> None:
    search = {
        "sampler": "tpe", "best_family": "linear", "metric": "roc_auc", "latency_sla_ms": 50.0,
        "trials": [
            {"number": 0, "family": "lightgbm", "state": "complete", "value": 0.9, "params": {},
             "seconds": 1.0, "rejected": "single-row p99 81.00 ms over the 50 ms ..."},
            {"number": 1, "family": "linear", "state": "complete", "value": 0.8, "params": {},
             "seconds": 0.1},
        ],
        "latency_checks": [
            {"family": "lightgbm", "params": {}, "value": 0.9, "p99_ms": 81.0, "p50_ms": 80.5,
             "path": "pipeline", "attempts": 3, "passed": False, "reason": "over"},
            {"family": "linear", "params": {}, "value": 0.8, "p99_ms": 0.2, "p50_ms": 0.1,
             "path": "fast path (linear)", "attempts": 1, "passed": True, "reason": ""},
        ],
    }
    tables = _section(ReportInput(version={"version": 1}, search=search), "search")
    trials, checks = tables[0], tables[1]
    assert trials.rows[0][2].text == "complete, rejected" and trials.rows[0][2].cls == "warn"
    assert "81.00 ms over" in trials.rows[0][5].text
    verdicts = {row[0].text: row[6] for row in checks.rows}
    assert verdicts["lightgbm"].text == "rejected" and verdicts["lightgbm"].cls == "fail"
    assert verdicts["linear"].text == "within"
