"""Number formatting and the facts both the HTML report and the model card state."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from assay.config.metrics import HIGHER_IS_BETTER
from assay.report.inputs import ReportInput

__all__ = [
    "MISSING",
    "MetricDelta",
    "MetricRow",
    "compact",
    "failed_gates",
    "fixed",
    "higher_is_better",
    "interval",
    "judged_note",
    "limits",
    "metric_deltas",
    "metric_rows",
    "score_summary",
    "test_rows_note",
    "threshold_summary",
    "min_slice_size",
    "num",
    "pct",
    "running_best",
    "short",
    "size_bytes",
    "task_phrase",
    "test_use_warning",
    "criterion_scope",
]

MISSING = "not available"
#: expected calibration error above which probabilities are called poorly calibrated
POOR_ECE = 0.1
DASH = "\u2014"


def num(value: Any) -> str:
    """A number for people: 4 decimals below 1000, thousands separators above, a dash for None."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if not isinstance(value, float):
        try:
            value = float(value)
        except (TypeError, ValueError):
            return str(value)
    if math.isnan(value):
        return DASH
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    magnitude = abs(value)
    if 0 < magnitude < 1e-3:
        return f"{value:.2e}"
    if magnitude < 1000:
        return f"{value:.4f}"
    return f"{value:,.1f}"


def fixed(value: Any, digits: int = 2, unit: str = "") -> str:
    """A number with a fixed number of decimals (and an optional unit), or a dash."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return DASH
    return f"{value:,.{digits}f}" + (f" {unit}" if unit else "")


def short(text: Any, limit: int = 160) -> str:
    """``text`` cut at ``limit`` characters."""
    value = "" if text is None else str(text)
    return value if len(value) <= limit else value[: limit - 3] + "..."


def task_phrase(task: str | None) -> str:
    """``binary`` -> ``binary classification``; None -> ``an unknown task``."""
    phrases = {"regression": "regression", "binary": "binary classification",
               "multiclass": "multiclass classification",
               "text-classification": "text classification"}
    return phrases.get(task or "", task or "an unknown task")


def interval(bounds: Any) -> str:
    """``[low, high]`` or a dash."""
    if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
        return DASH
    return f"[{num(bounds[0])}, {num(bounds[1])}]"


def pct(share: Any) -> str:
    """A share in [0, 1] as a percentage with one decimal."""
    if share is None:
        return DASH
    try:
        return f"{100.0 * float(share):.1f}%"
    except (TypeError, ValueError):
        return str(share)


def size_bytes(n: Any) -> str:
    """A byte count in B, KiB, MiB or GiB."""
    if n is None:
        return DASH
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover - the loop always returns


def compact(obj: Any, limit: int = 200) -> str:
    """Compact JSON of a small structure, cut at ``limit`` characters."""
    if obj is None or obj == {} or obj == []:
        return DASH
    try:
        text = json.dumps(obj, sort_keys=True, default=str, separators=(", ", ": "))
    except (TypeError, ValueError):
        text = str(obj)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class MetricRow:
    """One line of the metrics table, already formatted."""

    metric: str
    value: str
    interval: str
    baseline: str
    threshold: str
    passed: bool | None
    primary: bool
    note: str = ""


def judged_note(criterion: dict[str, Any]) -> str:
    """How a criterion was judged: on the interval's pessimistic end, or the point estimate."""
    threshold = str(criterion.get("threshold", ""))
    if criterion.get("judged") == "interval" and criterion.get("judged_value") is not None:
        end = "lower" if threshold.lstrip().startswith(">") else "upper"
        return f"judged on the interval's {end} bound {num(criterion.get('judged_value'))}"
    if criterion.get("conclusive") is False:
        return "judged on the point estimate; inconclusive: the interval straddles the threshold"
    return ""


def criterion_scope(criterion: dict[str, Any]) -> str:
    """`` on 'attr'`` or `` on plan=pro`` for a fairness or per-slice criterion."""
    if criterion.get("slice"):
        return f" on {criterion.get('slice')}={criterion.get('level')}"
    attribute = criterion.get("attribute")
    return f" on '{attribute}'" if attribute else ""


def metric_rows(report: ReportInput) -> list[MetricRow]:
    """The metrics of the evaluation with intervals, baseline values and thresholds."""
    evaluation = report.evaluation or {}
    metrics = evaluation.get("metrics") or {}
    intervals = evaluation.get("intervals") or {}
    baseline = (report.baseline or {}).get("metrics") or {}
    criteria = {c.get("metric"): c for c in report.acceptance
                if not c.get("attribute") and not c.get("slice")}
    configured = report.spec.get("acceptance") or {}
    primary = report.primary
    rows = []
    for name, value in metrics.items():
        criterion = criteria.get(name)
        passed: bool | None = None
        note = ""
        if criterion is not None:
            threshold = str(criterion.get("threshold", DASH))
            passed = bool(criterion.get("passed"))
            note = "; ".join(n for n in (judged_note(criterion), str(criterion.get("note") or "")) if n)
        else:
            threshold = str(configured.get(name, DASH))
        rows.append(MetricRow(
            metric=str(name),
            value=num(value),
            interval=interval(intervals.get(name)),
            baseline=num(baseline.get(name)) if report.baseline else DASH,
            threshold=threshold,
            passed=passed,
            primary=name == primary,
            note=note,
        ))
    return rows


def failed_gates(report: ReportInput) -> list[str]:
    """Names of the gates that did not pass."""
    return [str(g.get("name", "?")) for g in report.gates if not g.get("passed")]


def test_use_warning(report: ReportInput) -> str | None:
    """The warning shown when the sealed test set has scored more candidates than allowed."""
    uses = report.version.get("test_uses")
    limit = report.version.get("max_test_uses")
    if limit is None:
        limit = report.spec_section("gate").get("max_test_uses")
    if isinstance(uses, int) and isinstance(limit, int) and uses > limit:
        return (
            f"the sealed test set has scored {uses} candidates: its metrics are optimistically "
            f"biased (limit {limit}); confirm on fresh data before relying on them"
        )
    return None


def min_slice_size(report: ReportInput) -> int:
    """The size under which a slice level is unreliable (spec, default 30)."""
    value = report.spec_section("fairness").get("min_slice_size")
    return int(value) if isinstance(value, int) else 30


def higher_is_better(metric: str | None) -> bool:
    """Which way ``metric`` improves (unknown metrics: higher)."""
    return HIGHER_IS_BETTER.get(metric or "", True)


def limits(report: ReportInput) -> list[str]:
    """The known weak points of the version, one sentence each."""
    out: list[str] = []
    warning = test_use_warning(report)
    if warning:
        out.append(warning[0].upper() + warning[1:] + ".")
    failed = failed_gates(report)
    if failed:
        out.append(f"Failed gates: {', '.join(failed)}.")
    labelled = [("Acceptance criterion", c) for c in report.acceptance]
    labelled += [("Fairness limit", c) for c in report.fairness_criteria]
    for kind, criterion in labelled:
        on = criterion_scope(criterion)
        if not criterion.get("passed"):
            notes = [n for n in (judged_note(criterion), str(criterion.get("note") or "")) if n]
            note = f" ({'; '.join(notes)})" if notes else ""
            shown = interval(criterion.get("interval")) if criterion.get("interval") else ""
            out.append(
                f"{kind} not met: {criterion.get('metric')} {criterion.get('threshold')}{on}, "
                f"observed {num(criterion.get('observed'))}{' ' + shown if shown else ''}{note}."
            )
        elif criterion.get("judged") != "interval" and criterion.get("conclusive") is False:
            out.append(
                f"{criterion.get('metric')} passes {criterion.get('threshold')} on the point "
                f"estimate, but its interval {interval(criterion.get('interval'))} straddles it."
            )
    evaluation = report.evaluation or {}
    robust = evaluation.get("robustness") or {}
    if robust:
        gate = next((g for g in report.gates if isinstance(g, dict)
                     and g.get("name") == "robustness"), None)
        evidence = (gate or {}).get("evidence") or {}
        over = evidence.get("over") or []
        if over:
            out.append(
                f"Robustness: these perturbations cost more {robust.get('metric')} than the gate "
                f"allows ({pct(evidence.get('tolerance'))} {evidence.get('measure', '')}): "
                + ", ".join(map(str, over)) + "."
            )
        drop = robust.get("worst_relative_drop")
        if robust.get("worst_case") and isinstance(drop, (int, float)) and drop > 0:
            out.append(
                f"Robustness (diagnostic): the largest relative drop of {robust.get('metric')} of "
                f"any case is {pct(drop)} ('{robust['worst_case']}')."
            )
        if robust.get("worst_features"):
            out.append(
                "Features whose absence hurts most: " + ", ".join(robust["worst_features"]) + "."
            )
        unanswered = [c.get("name") for c in robust.get("cases") or [] if not c.get("answered")]
        if unanswered:
            out.append("The model failed to answer: " + ", ".join(map(str, unanswered)) + ".")
    threshold = min_slice_size(report)
    for sl in evaluation.get("slices") or []:
        small = [lv.get("level") for lv in sl.get("levels") or [] if not lv.get("reliable", True)]
        if small:
            out.append(
                f"Slice '{sl.get('column')}': level(s) {', '.join(map(str, small))} have "
                f"fewer than {threshold} rows; their metrics are unreliable."
            )
    calibration = (evaluation.get("curves") or {}).get("calibration") or {}
    if isinstance(calibration.get("ece"), (int, float)) and calibration["ece"] > POOR_ECE:
        out.append(f"Probabilities are poorly calibrated (ECE {num(calibration['ece'])}).")
    for finding in (report.audit or {}).get("findings") or []:
        if finding.get("severity") in ("block", "warn"):
            columns = ", ".join(map(str, finding.get("columns") or []))
            where = f" [{columns}]" if columns else ""
            out.append(
                f"Audit ({finding.get('severity')}) {finding.get('check')}{where}: "
                f"{finding.get('message')}"
            )
    curve = report.curve or {}
    diagnosis = curve.get("diagnosis") or {}
    if diagnosis.get("verdict") and diagnosis["verdict"] != "good":
        action = diagnosis.get("action")
        out.append(
            f"Learning curve: {diagnosis['verdict']}." + (f" {action}" if action else "")
        )
    return out


def running_best(values: list[float | None], higher: bool) -> list[float | None]:
    """The best value seen so far at each position (None before the first value)."""
    best: float | None = None
    out: list[float | None] = []
    for value in values:
        if value is not None and math.isfinite(value):
            if best is None or (value > best if higher else value < best):
                best = value
        out.append(best)
    return out


@dataclass(frozen=True)
class MetricDelta:
    """One metric of this version beside the earlier version's, already formatted."""

    metric: str
    value: str
    previous: str
    delta: str
    better: bool | None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def metric_deltas(report: ReportInput) -> list[MetricDelta]:
    """Each test metric of this version and of :attr:`ReportInput.previous`, with the change
    (this minus earlier) and whether it is an improvement; [] without an earlier version."""
    metrics = (report.evaluation or {}).get("metrics") or {}
    before = (report.previous or {}).get("metrics") or {}
    if not isinstance(metrics, dict) or not isinstance(before, dict) or not before:
        return []
    rows = []
    for name in [*metrics, *(m for m in before if m not in metrics)]:
        now, then = _number(metrics.get(name)), _number(before.get(name))
        if now is None or then is None:
            rows.append(MetricDelta(name, num(metrics.get(name)), num(before.get(name)), DASH,
                                    None))
            continue
        change = now - then
        better = None if change == 0 else (change > 0) == higher_is_better(name)
        rows.append(MetricDelta(name, num(now), num(then), f"{change:+.4f}", better))
    return rows


def test_rows_note(report: ReportInput) -> str:
    """Whether the two versions were scored on the same sealed test rows, as a sentence."""
    previous = report.previous or {}
    label = f"version {previous.get('version')}"
    now, then = report.version.get("test_fingerprint"), previous.get("test_fingerprint")
    if now and then and now == then:
        return f"Both versions were scored on the same sealed test rows ({now})."
    if now and then:
        return (f"This version and {label} were scored on different test rows "
                f"({now} vs {then}): part of each change may be the rows, not the model; "
                "do not over-read small deltas.")
    return (f"It is not recorded whether {label} was scored on the same test rows; "
            "do not over-read small deltas.")


def threshold_summary(curve: Any) -> str | None:
    """``at the tuned threshold 0.42: precision 0.81, recall 0.66, F1 0.73`` or None."""
    if not isinstance(curve, dict) or _number(curve.get("precision_at")) is None:
        return None
    if _number(curve.get("threshold")) is None:
        return ("the model does not decide by one threshold on the score (as with per-group "
                f"thresholds); its decisions give precision {fixed(curve.get('precision_at'))}, "
                f"recall {fixed(curve.get('recall_at'))}, F1 {fixed(curve.get('f1_at'))}")
    kind = "tuned threshold" if curve.get("tuned") else "default threshold"
    return (f"at the {kind} {fixed(curve.get('threshold'))}: precision "
            f"{fixed(curve.get('precision_at'))}, recall {fixed(curve.get('recall_at'))}, "
            f"F1 {fixed(curve.get('f1_at'))}")


def score_summary(histogram: Any) -> str | None:
    """The mean score of each true class read from the histogram's bin centres, or None."""
    if not isinstance(histogram, dict):
        return None
    edges, labels, counts = (histogram.get("edges") or [], histogram.get("labels") or [],
                             histogram.get("counts") or [])
    if len(labels) != len(counts) or len(edges) < 2:
        return None
    centres = [(a + b) / 2 for a, b in zip(edges, edges[1:])]
    parts = []
    for label, row in zip(labels, counts):
        total = sum(row) if isinstance(row, list) else 0
        if total and len(row) == len(centres):
            mean = sum(c * v for c, v in zip(centres, row)) / total
            parts.append(f"class {label} {mean:.2f} ({total:,} rows)")
    if not parts:
        return None
    what = ("probability given to the true class" if histogram.get("kind") == "true_class"
            else "predicted probability of the positive class")
    return f"mean {what} by true class (from {len(centres)} bins): " + ", ".join(parts)


def word_rows(tokens: dict[str, Any], n: int = 10) -> list[tuple[str, str, str, str]]:
    """A text model's word attributions as rows (direction, word, mean attribution, texts):
    the words that push most towards the target, then those that push most away."""
    rows: list[tuple[str, str, str, str]] = []
    for direction, key in (("towards", "towards"), ("away", "away")):
        for item in (tokens.get(key) or [])[:n]:
            rows.append((direction, str(item.get("token")), f"{float(item.get('mean', 0.0)):+.4f}",
                         num(item.get("texts"))))
    return rows
