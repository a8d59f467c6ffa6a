"""The sections of the HTML report, as a small document model the template renders.

A section is a title and a list of blocks (text, facts, tables, images). Builders
read a :class:`ReportInput` and never fail on missing parts: a section without its
data holds one "not available" line saying what is missing. All text here is plain;
the template escapes it.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from assay.config.metrics import CLASSIFICATION_TASKS, fairness_limits_for
from assay.evaluate.plausibility import PlausibilityReport
from assay.report import plots
from assay.report.wording import (
    DASH,
    MISSING,
    compact,
    fixed,
    higher_is_better,
    metric_deltas,
    metric_rows,
    min_slice_size,
    num,
    pct,
    score_summary,
    short,
    size_bytes,
    test_rows_note,
    threshold_summary,
    word_rows,
)
from assay.report.inputs import ReportInput

__all__ = [
    "SECTIONS",
    "Block",
    "Cell",
    "Facts",
    "Gallery",
    "Heading",
    "Section",
    "Table",
    "Text",
    "build_sections",
]


@dataclass(frozen=True)
class Cell:
    """A table cell; ``cls`` is a style hint: pass, fail, warn, muted, best."""

    text: str
    cls: str = ""


@dataclass(frozen=True)
class Text:
    """A paragraph; ``cls`` is missing, note, warn or fail."""

    text: str
    cls: str = ""
    kind: str = "text"


@dataclass(frozen=True)
class Heading:
    """A sub-heading inside a section."""

    text: str
    kind: str = "heading"


@dataclass(frozen=True)
class Facts:
    """Label/value pairs."""

    items: tuple[tuple[str, str], ...]
    kind: str = "facts"


@dataclass(frozen=True)
class Table:
    """Headers and rows of cells; ``row_cls`` styles whole rows (same length as rows)."""

    headers: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    row_cls: tuple[str, ...] = ()
    caption: str = ""
    kind: str = "table"


@dataclass(frozen=True)
class Gallery:
    """Inline images side by side: (data URI, alt text) pairs."""

    images: tuple[tuple[str, str], ...]
    kind: str = "gallery"


Block = Text | Heading | Facts | Table | Gallery


@dataclass(frozen=True)
class Section:
    """One titled part of the report; ``id`` is its HTML anchor."""

    id: str
    title: str
    blocks: tuple[Block, ...]


#: (anchor, title) of every section, in report order
SECTIONS: tuple[tuple[str, str], ...] = (
    ("gates", "Gates"),
    ("metrics", "Metrics"),
    ("plots", "Plots"),
    ("explanation", "What the model leans on"),
    ("learning-curve", "Learning curve"),
    ("search", "Search history"),
    ("slices", "Slices"),
    ("fairness", "Fairness"),
    ("robustness", "Robustness"),
    ("latency", "Latency and size"),
    ("audit", "Audit findings"),
    ("split", "Split"),
)


def _missing(what: str) -> list[Block]:
    return [Text(f"{MISSING}: {what}", "missing")]


def _cells(*values: Any) -> tuple[Cell, ...]:
    return tuple(v if isinstance(v, Cell) else Cell(str(v)) for v in values)


def _verdict(passed: Any) -> Cell:
    if passed is None:
        return Cell(DASH)
    return Cell("pass", "pass") if passed else Cell("FAIL", "fail")


def _gates(r: ReportInput) -> list[Block]:
    if not r.gates:
        return _missing("no gate decision is recorded for this version")
    rows = tuple(
        _cells(str(g.get("name", "?")), _verdict(bool(g.get("passed"))), str(g.get("message", "")),
               Cell(compact(g.get("evidence"), 240), "muted"))
        for g in r.gates
    )
    return [Table(("Gate", "Result", "Message", "Evidence"), rows), *_plausibility(r)]


def _plausibility(r: ReportInput) -> list[Block]:
    """One line: whether the test results look too good to be true, and the suspects."""
    stored = (r.evaluation or {}).get("plausibility")
    if not stored:
        return []
    report = PlausibilityReport.from_dict(stored)
    if report.plausible:
        return [Text(f"Plausibility: {report.summary()}.", "note")]
    suspects = ", ".join(report.suspect_features) or "none named"
    return [Text(f"Plausibility: too good to be true (suspect features: {suspects}). "
                 f"{report.summary()}.", "fail")]


def _metrics(r: ReportInput) -> list[Block]:
    evaluation = r.evaluation or {}
    rows = metric_rows(r)
    if not rows:
        return _missing("the version has no evaluation on the test set")
    blocks: list[Block] = []
    facts = [("Rows evaluated", num(evaluation.get("n_rows"))),
             ("Primary metric", r.primary or DASH)]
    if evaluation.get("n_boot"):
        facts.append(("95% intervals", f"percentile bootstrap, {evaluation['n_boot']} resamples, "
                                       f"seed {evaluation.get('seed', 0)}"))
    cv = evaluation.get("cv") or {}
    if cv:
        facts.append(("Cross-validation", f"{num(cv.get('mean'))} \u00b1 {num(cv.get('std'))} "
                                          f"over {len(cv.get('scores') or [])} folds "
                                          f"(min {num(cv.get('min'))}, max {num(cv.get('max'))})"))
    blocks.append(Facts(tuple(facts)))
    table_rows = []
    for row in rows:
        result = _verdict(row.passed)
        if row.note:
            warn = "inconclusive" in row.note or not row.note.startswith("judged on the interval")
            result = Cell(f"{result.text} ({row.note})", result.cls or ("warn" if warn else ""))
        name = f"{row.metric} (primary)" if row.primary else row.metric
        table_rows.append(
            _cells(name, row.value, row.interval, row.baseline, row.threshold, result)
        )
    caption = "" if r.baseline else "No baseline evaluation is available for comparison."
    blocks.append(Table(
        ("Metric", "Value", "95% interval", "Baseline", "Acceptance", "Result"),
        tuple(table_rows),
        tuple("primary" if row.primary else "" for row in rows),
        caption,
    ))
    return blocks + _metric_deltas(r) + _recalibration(evaluation.get("recalibration"))


def _recalibration(recal: Any) -> list[Block]:
    if not isinstance(recal, dict):
        return []
    if recal.get("adopted"):
        verdict = (f"{recal.get('method')} recalibration, fitted on the validation rows, is part of "
                   "the registered model (it lowered the out-of-fold validation ECE)")
    else:
        verdict = f"the model is registered as fitted: {recal.get('note') or 'not recalibrated'}"
    return [
        Heading("Calibration"),
        Facts((
            ("ECE limit", num(recal.get("max_ece"))),
            ("Decision", verdict),
            ("ECE, validation rows", f"{num(recal.get('validation_before'))} before, "
                                     f"{num(recal.get('validation_after'))} after (out of fold)"),
            ("ECE, test rows", f"{num(recal.get('test_before'))} before, "
                               f"{num(recal.get('test_after'))} registered"),
        )),
    ]


def _plot_or_missing(uri: str | None, alt: str, images: list[tuple[str, str]],
                     missing: list[Block]) -> None:
    if uri is None:
        missing.append(Text(f"{alt}: {MISSING}", "missing"))
    else:
        images.append((uri, alt))


def _plots(r: ReportInput) -> list[Block]:
    evaluation = r.evaluation
    if not evaluation:
        return _missing("the version has no evaluation on the test set")
    curves = evaluation.get("curves") or {}
    images: list[tuple[str, str]] = []
    missing: list[Block] = []
    extra: list[Block] = []
    task = r.task or ""
    if task in CLASSIFICATION_TASKS or evaluation.get("confusion"):
        _plot_or_missing(plots.roc_plot(curves.get("roc")), "ROC curve", images, missing)
        _plot_or_missing(plots.pr_plot(curves.get("pr")), "Precision-recall curve", images, missing)
        _plot_or_missing(plots.calibration_plot(curves.get("calibration")), "Calibration",
                         images, missing)
        _plot_or_missing(plots.confusion_plot(evaluation.get("confusion")), "Confusion matrix",
                         images, missing)
        extra = _score_plots(curves, images, missing)
    else:
        scatter = curves.get("predicted_vs_actual")
        _plot_or_missing(plots.predicted_vs_actual_plot(scatter), "Predicted vs actual",
                         images, missing)
        _plot_or_missing(plots.residuals_plot(scatter), "Residuals", images, missing)
        summary = curves.get("residuals") or {}
        if summary:
            quantiles = summary.get("quantiles") or {}
            extra = [Heading("Residual summary (predicted - actual)"), Facts((
                ("Mean", num(summary.get("mean"))),
                ("Standard deviation", num(summary.get("std"))),
                ("Mean absolute", num(summary.get("mean_abs"))),
                *((f"Quantile {k}", num(v)) for k, v in quantiles.items()),
            ))]
    blocks: list[Block] = [Gallery(tuple(images))] if images else []
    return blocks + missing + extra


def _score_plots(curves: dict[str, Any], images: list[tuple[str, str]],
                 missing: list[Block]) -> list[Block]:
    """Score distributions per class and (binary) the threshold curve, with their key facts;
    evaluations stored before these were measured say the plots are unavailable."""
    histogram, curve = curves.get("score_histogram"), curves.get("threshold_curve")
    marker = plots.threshold_marker(curve)
    _plot_or_missing(plots.score_distribution_plot(histogram, marker[0] if marker else None),
                     "Score distributions per class", images, missing)
    facts = []
    summary = score_summary(histogram)
    if summary:
        facts.append(("Scores", summary))
    if histogram is None and "score_histogram" not in curves:
        missing.append(Text("The evaluation was stored before score histograms were recorded; "
                            "evaluate the version again to see them.", "missing"))
    if (histogram or {}).get("kind") != "true_class":
        alt = "Precision and recall by threshold" + (f" ({marker[1]} marked)" if marker else "")
        _plot_or_missing(plots.threshold_plot(curve), alt, images, missing)
        summary = threshold_summary(curve)
        if summary:
            facts.append(("Decision threshold", summary[0].upper() + summary[1:]))
    return [Facts(tuple(facts))] if facts else []


def _metric_deltas(r: ReportInput) -> list[Block]:
    rows = metric_deltas(r)
    if not rows:
        return []
    label = f"v{(r.previous or {}).get('version')}"

    def change(row: Any) -> Cell:
        if row.better is None:
            return Cell(row.delta)
        return Cell(f"{row.delta} ({'better' if row.better else 'worse'})",
                    "pass" if row.better else "warn")

    return [
        Heading(f"Against version {(r.previous or {}).get('version')}"),
        Table(("Metric", "This version", label, "Change"),
              tuple(_cells(row.metric, row.value, row.previous, change(row)) for row in rows),
              caption=test_rows_note(r)),
    ]


#: dependence plots drawn, for the most important columns
DEPENDENCE_PLOTS = 3


def _explanation(r: ReportInput) -> list[Block]:
    explanation = r.explanation
    if not explanation:
        return _missing("no explanation was computed for this version")
    features = sorted(explanation.get("features") or [], key=lambda f: int(f.get("rank", 0)))
    method = {"tree_shap": "exact tree SHAP values", "linear":
              "exact linear attributions (coefficient x (value - training mean))",
              "permutation": "permutation importance",
              "occlusion": "word occlusion on sampled texts"}.get(str(explanation.get("method")),
                                                           str(explanation.get("method")))
    blocks: list[Block] = []
    if len(features) >= 2:
        top, second = features[0], features[1]
        share = float(top.get("share") or 0.0)
        if share >= 0.5 and float(second.get("importance") or 0.0) * 3 <= float(
                top.get("importance") or 0.0):
            blocks.append(Text(
                f"'{top.get('feature')}' carries {pct(share)} of the importance, over three times the "
                f"next column's: check that it is known at prediction time and is not a copy of "
                "the target.", "warn"))
    images: list[tuple[str, str]] = []
    missing: list[Block] = []
    _plot_or_missing(plots.importance_plot(explanation), "Global importance", images, missing)
    if explanation.get("sample_attributions"):
        _plot_or_missing(plots.beeswarm_plot(explanation), "Per-row contributions", images,
                         missing)
        for top in features[:DEPENDENCE_PLOTS]:
            uri = plots.dependence_plot(explanation, str(top.get("feature")))
            if uri is not None:
                images.append((uri, f"Dependence: {top.get('feature')}"))
    if images:
        blocks.append(Gallery(tuple(images)))
    blocks += missing
    blocks.append(Facts((
        ("Method", method),
        ("Rows explained", num(explanation.get("rows"))),
        ("Base value", ", ".join(num(b) for b in explanation.get("base_values") or []) or DASH),
    )))
    if explanation.get("note"):
        blocks.append(Text(str(explanation["note"])))
    tokens = explanation.get("tokens") or {}
    words = word_rows(tokens)
    if words:
        blocks.append(Table(
            ("Direction", "Word", "Mean attribution", "Texts"),
            tuple(_cells(*row) for row in words),
            caption=f"Words of '{tokens.get('column')}' that move the {tokens.get('target')} most: "
            f"what removing each costs it, averaged over the {num(tokens.get('texts'))} sampled "
            "test texts it occurs in (towards: it raises the probability; away: it lowers it).",
        ))
    previous = r.previous_explanation or {}
    before = {str(f.get("feature")): f for f in
              ((previous.get("explanation") or {}).get("features") or [])}
    if before:
        label = f"v{previous.get('version')}"
        blocks.append(Table(
            ("Rank", "Column", "Importance", "Share", f"Rank in {label}", f"Share in {label}",
             "Share change"),
            tuple(_cells(num(f.get("rank")), str(f.get("feature")), num(f.get("importance")),
                         pct(f.get("share")), *_shift(f, before.get(str(f.get("feature")))))
                  for f in features[:20]),
            caption=f"Against version {previous.get('version')}: a column whose share moved "
            "far changed how the model decides.",
        ))
        return blocks
    blocks.append(Table(
        ("Rank", "Column", "Importance", "Share"),
        tuple(_cells(num(f.get("rank")), str(f.get("feature")), num(f.get("importance")),
                     pct(f.get("share"))) for f in features[:20]),
    ))
    return blocks


def _shift(now: dict[str, Any], before: dict[str, Any] | None) -> tuple[str, str, str]:
    """Rank and share of a column in the earlier version, and the change of its share."""
    if before is None:
        return ("new", DASH, DASH)
    change = float(now.get("share") or 0.0) - float(before.get("share") or 0.0)
    return (num(before.get("rank")), pct(before.get("share")),
            f"{'+' if change >= 0 else '-'}{100 * abs(change):.1f} pt")


def _learning_curve(r: ReportInput) -> list[Block]:
    curve = r.curve
    if not curve:
        return _missing("no learning curve was recorded for this version")
    blocks: list[Block] = []
    uri = plots.learning_curve_plot(curve)
    if uri:
        blocks.append(Gallery(((uri, "Learning curve"),)))
    else:
        blocks.append(Text(f"Learning curve plot: {MISSING}", "missing"))
    diagnosis = curve.get("diagnosis") or {}
    if not diagnosis:
        blocks.append(Text(f"Diagnosis: {MISSING}", "missing"))
        return blocks
    verdict = str(diagnosis.get("verdict", DASH))
    evidence = diagnosis.get("reason") or diagnosis.get("evidence")
    if isinstance(evidence, dict):
        evidence = compact(evidence, 300)
    blocks.append(Facts((
        ("Verdict", verdict),
        ("Measured per", str(curve.get("kind", DASH)).replace("_", " ")),
        ("Evidence", str(evidence) if evidence else DASH),
        ("Action", str(diagnosis.get("action") or DASH)),
    )))
    if verdict in ("overfitting", "underfitting"):
        blocks.insert(0, Text(f"Diagnosis: {verdict}.", "warn"))
    return blocks


def _search(r: ReportInput) -> list[Block]:
    search = r.search
    if not search:
        return _missing("no hyper-parameter search was recorded for this version")
    metric = search.get("metric") or search.get("primary_metric") or r.primary
    higher = search.get("higher_is_better")
    higher = bool(higher) if isinstance(higher, bool) else higher_is_better(metric)
    trials = [t for t in search.get("trials") or [] if isinstance(t, dict)]
    states: dict[str, int] = {}
    for t in trials:
        states[str(t.get("state", "?"))] = states.get(str(t.get("state", "?")), 0) + 1
    facts = [
        ("Sampler", str(search.get("sampler", DASH))),
        ("Metric", f"{metric or DASH} ({'higher' if higher else 'lower'} is better, "
                   "on validation)"),
        ("Best family", str(search.get("best_family", DASH))),
        ("Best value", num(search.get("best_value"))),
        ("Best parameters", compact(search.get("best_params"), 400)),
        ("Trials", ", ".join(f"{n} {s}" for s, n in states.items()) or "0"),
    ]
    if search.get("baseline_value") is not None:
        facts.append(("Baseline (validation)", num(search["baseline_value"])))
    for family, reason in (search.get("skipped") or {}).items():
        facts.append((f"Skipped: {family}", str(reason)))
    ensemble = search.get("ensemble")
    if isinstance(ensemble, dict) and ensemble.get("members"):
        members = ", ".join(f"{m.get('family', DASH)} {num(m.get('weight'))}"
                            for m in ensemble["members"] if isinstance(m, dict))
        facts.append(("Ensemble", f"{members} (cross-validated {num(ensemble.get('cv_value'))}, "
                                  f"best single {num(ensemble.get('single_value'))})"))
    blocks: list[Block] = [Facts(tuple(facts))]
    uri = plots.search_plot(trials, metric, higher)
    if uri:
        blocks.append(Gallery(((uri, "Search history"),)))
    if not trials:
        blocks.append(Text(f"Trials: {MISSING}", "missing"))
        return blocks
    values = [float(t["value"]) for t in trials if isinstance(t.get("value"), (int, float))]
    best = (max(values) if higher else min(values)) if values else None
    rows, row_cls = [], []
    marked = False
    for t in trials:
        is_best = not marked and best is not None and t.get("value") == best
        marked = marked or is_best
        state = str(t.get("state", DASH))
        state_cell = Cell(state, {"failed": "fail", "pruned": "muted"}.get(state, ""))
        if t.get("rejected"):
            state_cell = Cell(f"{state}, rejected", "warn")
        note = str(t.get("error") or t.get("rejected") or "")
        rows.append(_cells(num(t.get("number")), str(t.get("family", DASH)), state_cell,
                           num(t.get("value")), fixed(t.get("seconds")),
                           Cell(compact(t.get("params"), 240) + (f" \u2014 {note}" if note else ""),
                                "muted")))
        row_cls.append("best" if is_best else "")
    blocks.append(Table(("Trial", "Family", "State", "Value", "Seconds", "Parameters"),
                        tuple(rows), tuple(row_cls), "The best trial is highlighted."))
    blocks.extend(_latency_checks(search))
    return blocks


def _latency_checks(search: dict[str, Any]) -> list[Block]:
    """The finalists the search timed one row at a time, and those it rejected."""
    checks = [c for c in search.get("latency_checks") or [] if isinstance(c, dict)]
    if not checks:
        return []
    sla = search.get("latency_sla_ms")
    rows = tuple(
        _cells(str(c.get("family", DASH)), num(c.get("value")),
               fixed(c.get("p50_ms"), 3, "ms"), fixed(c.get("p99_ms"), 3, "ms"),
               str(c.get("path") or DASH), num(c.get("attempts")),
               Cell("within", "pass") if c.get("passed") else Cell("rejected", "fail"),
               Cell(short(c.get("reason")), "muted"))
        for c in checks
    )
    objective = f"{sla:g} ms" if isinstance(sla, (int, float)) else "the objective"
    blocks: list[Block] = [
        Heading("Finalists timed one row at a time"),
        Table(("Family", "Value", "p50", "p99", "Timed call", "Measurements", "Latency",
               "Reason"), rows,
              caption=f"Single-row p99 (median round, re-measured when over) against "
                      f"{objective}; a finalist over it was rejected and the next best taken."),
    ]
    if search.get("latency_note"):
        blocks.append(Text(str(search["latency_note"]), "note"))
    return blocks


def _slices(r: ReportInput) -> list[Block]:
    reports = [s for s in (r.evaluation or {}).get("slices") or [] if isinstance(s, dict)]
    if not reports:
        return _missing("no slice columns were evaluated")
    threshold = min_slice_size(r)
    primary = r.primary
    blocks: list[Block] = [Text(
        f"Levels with fewer than {threshold} rows are marked unreliable: their metrics are "
        "shown but should not be trusted.", "note")]
    for report in reports:
        levels = [lv for lv in report.get("levels") or [] if isinstance(lv, dict)]
        names = list(dict.fromkeys(k for lv in levels for k in (lv.get("metrics") or {})))
        if primary in names:
            names = [primary, *(n for n in names if n != primary)]
        worst = _worst_level(levels, primary)
        title = str(report.get("column", "?"))
        if report.get("binned"):
            title += " (numeric, cut into quartiles)"
        blocks.append(Heading(title))
        rows, row_cls = [], []
        for lv in levels:
            reliable = bool(lv.get("reliable", True))
            status = Cell("ok") if reliable else Cell(f"unreliable (n < {threshold})", "warn")
            if lv is worst:
                status = Cell(f"worst {primary}", "warn")
            metrics = lv.get("metrics") or {}
            rows.append(_cells(str(lv.get("level", DASH)), num(lv.get("n")),
                               *(num(metrics.get(n)) for n in names), status))
            row_cls.append("" if reliable else "unreliable")
        blocks.append(Table(("Level", "Rows", *names, "Reliability"), tuple(rows), tuple(row_cls)))
    return blocks


def _worst_level(levels: list[dict[str, Any]], metric: str | None) -> dict[str, Any] | None:
    if not metric:
        return None
    candidates = [lv for lv in levels if lv.get("reliable", True)
                  and isinstance((lv.get("metrics") or {}).get(metric), (int, float))]
    if len(candidates) < 2:
        return None
    sign = 1.0 if higher_is_better(metric) else -1.0
    return min(candidates, key=lambda lv: sign * float(lv["metrics"][metric]))


def _fairness(r: ReportInput) -> list[Block]:
    results = [f for f in (r.evaluation or {}).get("fairness") or [] if isinstance(f, dict)]
    criteria = r.fairness_criteria
    if not results and not criteria:
        return _missing("no protected attribute was evaluated")
    lookup = {(c.get("metric"), c.get("attribute")): c for c in criteria}
    names = fairness_limits_for(r.task or "binary")
    rows = []
    for result in results:
        attribute = result.get("attribute")
        for name in names:
            criterion = lookup.pop((name, attribute), None)
            rows.append(_cells(
                str(attribute), name.replace("_", " "), num(result.get(name)),
                str(criterion.get("threshold")) if criterion else DASH,
                _verdict(criterion.get("passed")) if criterion else Cell(DASH),
            ))
    for criterion in lookup.values():
        rows.append(_cells(
            str(criterion.get("attribute") or DASH),
            str(criterion.get("metric", "")).replace("_", " "),
            num(criterion.get("observed")), str(criterion.get("threshold", DASH)),
            Cell(f"{_verdict(criterion.get('passed')).text} "
                 f"({criterion.get('note') or 'no value'})",
                 "pass" if criterion.get("passed") else "fail"),
        ))
    blocks: list[Block] = [Table(("Attribute", "Measure", "Value", "Limit", "Result"), tuple(rows))]
    for result in results:
        attribute = str(result.get("attribute"))
        positive = result.get("positive_label")
        groups = [g for g in result.get("groups") or [] if isinstance(g, dict)]
        if groups:
            label = f" (selection = predicting {positive})" if positive is not None else ""
            blocks.append(Heading(f"Groups of {attribute}{label}"))
            blocks.append(_group_table(groups))
        per_class = [c for c in result.get("per_class") or [] if isinstance(c, dict)]
        if per_class:
            blocks.append(Heading(f"Per class, one-vs-rest: {attribute}"))
            blocks.append(Table(
                ("Class", *(n.replace("_", " ") for n in names)),
                tuple(_cells(str(c.get("label")), *(num(c.get(n)) for n in names))
                      for c in per_class),
            ))
        if result.get("note"):
            blocks.append(Text(str(result["note"]), "note"))
    return blocks + _mitigation((r.evaluation or {}).get("mitigation"), r.primary)


def _mitigation(comparison: Any, primary: str | None) -> list[Block]:
    if not isinstance(comparison, dict):
        return []
    attribute = str(comparison.get("attribute"))
    models = [m for m in comparison.get("models") or [] if isinstance(m, dict)]
    measures = sorted({name for m in models for name, v in
                       ((m.get("fairness") or {}).get(attribute) or {}).items() if v is not None})
    rows = []
    for m in models:
        values = (m.get("fairness") or {}).get(attribute) or {}
        hold = m.get("limits_hold")
        rows.append(_cells(
            str(m.get("method")), str(m.get("description", "")), num(m.get("primary")),
            *(num(values.get(name)) for name in measures),
            _verdict(hold) if hold is not None else Cell(DASH),
        ))
    blocks: list[Block] = [
        Heading(f"Mitigation: {attribute} ({comparison.get('constraint')})"),
        Text("Why: " + "; ".join(str(x) for x in comparison.get("reasons") or []), "warn"),
        Table(("Method", "Model", str(comparison.get("primary") or primary or "primary"),
               *(n.replace("_", " ") for n in measures), "Limits"), tuple(rows),
              caption=f"On the {comparison.get('rows', 'test')} rows. The registered version is "
                      "the unmitigated model (method none); the alternatives are not registered."),
    ]
    for method, why in (comparison.get("skipped") or {}).items():
        blocks.append(Text(f"{method}: not fitted: {why}", "note"))
    return blocks


def _group_table(groups: list[dict[str, Any]]) -> Table:
    if any(g.get("mae") is not None for g in groups):
        return Table(("Group", "Rows", "MAE", "RMSE", "Reliable"), tuple(
            _cells(str(g.get("group")), num(g.get("n")), num(g.get("mae")), num(g.get("rmse")),
                   Cell("yes") if g.get("reliable", True) else Cell("no (too few rows)", "warn"))
            for g in groups
        ))
    rows = tuple(
        _cells(str(g.get("group")), num(g.get("n")), pct(g.get("selection_rate")),
               pct(g.get("true_positive_rate")), pct(g.get("false_positive_rate")),
               Cell("yes") if g.get("reliable", True) else Cell("no (too few rows)", "warn"))
        for g in groups
    )
    return Table(("Group", "Rows", "Selection rate", "True positive rate", "False positive rate",
                  "Reliable"), rows)


def _gate_evidence(r: ReportInput, name: str) -> dict[str, Any]:
    """The evidence of the gate called ``name`` (empty when it was not recorded)."""
    for gate in r.gates:
        if isinstance(gate, dict) and gate.get("name") == name:
            evidence = gate.get("evidence")
            return evidence if isinstance(evidence, dict) else {}
    return {}


_CASE_VERDICTS = {
    "ok": Cell("within tolerance", "pass"),
    "over": Cell("OVER tolerance", "fail"),
    "unanswered": Cell("not answered", "fail"),
    "informational": Cell("informational", "muted"),
}


def _robustness(r: ReportInput) -> list[Block]:
    """The cases as the robustness gate judged them: its cost, its tolerance, its verdicts."""
    robust = (r.evaluation or {}).get("robustness")
    if not robust:
        return _missing("robustness was not measured")
    evidence = _gate_evidence(r, "robustness")
    verdicts = {str(c.get("name")): c for c in evidence.get("cases") or [] if isinstance(c, dict)}
    limit = evidence.get("tolerance", r.spec_section("gate").get("max_robustness_drop"))
    measure = str(evidence.get("measure") or "relative drop")
    worst_gated = DASH
    if evidence.get("worst_gated"):
        worst_cost = pct(evidence.get("worst_gated_cost"))
        worst_gated = f"{evidence['worst_gated']}: {worst_cost} ({measure}"
        allows = f"; the gate allows {pct(limit)}" if isinstance(limit, (int, float)) else ""
        worst_gated += allows + ")"
    diagnostic = pct(robust.get("worst_relative_drop"))
    if robust.get("worst_case"):
        diagnostic += f" ({robust['worst_case']})"
    facts = (
        ("Metric", str(robust.get("metric", DASH))),
        ("Clean value", num(robust.get("clean"))),
        ("Rows probed", num(robust.get("n_rows"))),
        ("Worst gated case", worst_gated),
        ("Largest relative drop, any case", diagnostic),
        ("Most harmful missing features", ", ".join(map(str, robust.get("worst_features") or []))
         or DASH),
    )
    rows, row_cls = [], []
    for case in robust.get("cases") or []:
        name = str(case.get("name", DASH))
        answered = bool(case.get("answered"))
        judged = verdicts.get(name)
        if judged is not None:
            verdict = _CASE_VERDICTS.get(str(judged.get("verdict")), Cell(DASH))
            cost = Cell(pct(judged.get("cost")), verdict.cls if verdict.cls != "pass" else "")
        else:  # recorded before the gate kept its verdicts: shown, not coloured
            verdict = Cell(DASH) if answered else Cell("not answered", "fail")
            cost = Cell(pct(case.get("relative_drop")))
        gated = case.get("gated")
        rows.append(_cells(
            name, str(case.get("kind", DASH)), str(case.get("feature") or DASH),
            DASH if gated is None else ("yes" if gated else "no"),
            Cell("yes") if answered else Cell("NO", "fail"),
            num(case.get("value")), num(case.get("drop")), cost, verdict,
            Cell(short(case.get("error")), "muted"),
        ))
        row_cls.append("" if answered else "failed")
    blocks: list[Block] = [Facts(facts)]
    if rows:
        caption = (
            f"Cost: {measure} of {robust.get('metric', 'the metric')} (a positive drop is worse "
            "than on clean rows). Every case must be answered; the gate judges the cost of the "
            "gated cases only (noise, unseen levels, typos, casing). A whole feature missing, "
            "level swaps, punctuation and truncation are diagnostics; out-of-range rows only "
            "check that the model still answers."
        )
        if not verdicts:
            caption += " The gate's per-case verdicts were not recorded for this version."
        blocks.append(Table(("Case", "Kind", "Feature", "Gated", "Answered", "Value", "Drop",
                             "Cost", "Verdict", "Error"), tuple(rows), tuple(row_cls), caption))
    return blocks


def _latency(r: ReportInput) -> list[Block]:
    evaluation = r.evaluation or {}
    latency = evaluation.get("latency")
    size = evaluation.get("artifact_size_bytes")
    if not latency and size is None:
        return _missing("latency and artifact size were not measured")
    blocks: list[Block] = []
    if latency:
        sla = r.spec_section("serving").get("latency_p99_ms")
        p99 = latency.get("single_p99_ms")
        over = isinstance(sla, (int, float)) and isinstance(p99, (int, float)) and p99 > sla
        p99_text = fixed(p99, 3, "ms") + (f" (objective {sla:g} ms)"
                                          if isinstance(sla, (int, float)) else "")
        gate = next((g for g in r.gates if isinstance(g, dict) and g.get("name") == "latency"),
                    None)
        if gate is not None:  # coloured by the gate's own verdict
            over = not gate.get("passed", True)
        rounds = [x for x in latency.get("rounds") or [] if isinstance(x, dict)]
        p99s = [float(x["p99_ms"]) for x in rounds if isinstance(x.get("p99_ms"), (int, float))]
        if rounds:
            judged = (f" (median of {len(rounds)} rounds after {num(latency.get('warmup'))} "
                      "warm-up calls)")
        else:
            judged = (f" ({num(latency.get('n_single'))} rows, the fastest of "
                      f"{num(latency.get('single_repeats', 1))} calls each)")
        rows = [
            _cells("Timed call", str(latency.get("path") or latency.get("method", DASH))),
            _cells("Single row p50", fixed(latency.get("single_p50_ms"), 3, "ms")),
            _cells("Single row p99", Cell(p99_text + judged, "fail" if over else "")),
        ]
        if p99s:
            rows.append(_cells("Round p99 min / median / max",
                               " / ".join(fixed(v, 3, "ms") for v in
                                          (min(p99s), statistics.median(p99s), max(p99s)))))
            rows.append(_cells("Rounds (p50 / p99)", "; ".join(
                f"{fixed(x.get('p50_ms'), 3)} / {fixed(x.get('p99_ms'), 3)} ms" for x in rounds)))
        attempts = latency.get("attempts")
        if isinstance(attempts, int) and attempts > 1:
            rows.append(_cells("Measurements", f"{attempts} (over the objective at first; the "
                               "fastest kept): p99 " + ", ".join(
                                   fixed(v, 2, "ms") for v in latency.get("attempt_p99_ms") or [])))
        rows += [
            _cells("Single row mean", fixed(latency.get("single_mean_ms"), 3, "ms")
                   + f" ({num(latency.get('n_single'))} rows)"),
            _cells("Batch throughput", fixed(latency.get("batch_rows_per_s"), 0, "rows/s")
                   + f" (batches of {num(latency.get('batch_size'))})"),
            _cells("Batch time per row", fixed(latency.get("batch_ms_per_row"), 4, "ms")),
        ]
    else:
        rows = [_cells("Latency", Cell(MISSING, "muted"))]
    rows.append(_cells("Artifact size", size_bytes(size) if size is not None else MISSING))
    blocks.append(Table(("Measure", "Value"), tuple(rows),
                        caption="Wall-clock times on the machine that ran the evaluation."))
    return blocks


def _audit(r: ReportInput) -> list[Block]:
    audit = r.audit
    if not audit:
        return _missing("no data audit is attached to this version")
    findings = [f for f in audit.get("findings") or [] if isinstance(f, dict)]
    counts = {s: sum(1 for f in findings if f.get("severity") == s)
              for s in ("block", "warn", "info")}
    blocks: list[Block] = [Facts((
        ("Source", str(audit.get("source") or DASH)),
        ("Data version", str(audit.get("data_version") or DASH)),
        ("Rows x columns", f"{num(audit.get('rows'))} x {num(audit.get('columns'))}"),
        ("Checks run", num(len(audit.get("checks_run") or []))),
        ("Findings", f"{counts['block']} blocking, {counts['warn']} warnings, "
                     f"{counts['info']} info"),
    ))]
    if not findings:
        blocks.append(Text("The audit found nothing to report.", "note"))
        return blocks
    style = {"block": "fail", "warn": "warn", "info": "muted"}
    rows = tuple(
        _cells(Cell(str(f.get("severity", "?")), style.get(str(f.get("severity")), "")),
               str(f.get("check", DASH)), ", ".join(map(str, f.get("columns") or [])) or DASH,
               str(f.get("message", "")), str(f.get("fix") or DASH))
        for f in findings
    )
    blocks.append(Table(("Severity", "Check", "Columns", "Message", "Fix"), rows))
    return blocks


def _split(r: ReportInput) -> list[Block]:
    split = r.split
    if not split:
        return _missing("no split summary is attached to this version")
    sizes = {k: v for k, v in (split.get("sizes") or {}).items() if isinstance(v, int)}
    parts = [p for p in ("train", "validation", "test") if p in sizes]
    total = sum(sizes[p] for p in parts)
    blocks: list[Block] = [Facts((
        ("Strategy", str(split.get("strategy") or DASH)),
        ("Gap", str(split.get("gap")) if split.get("gap") is not None else DASH),
        ("Straddling duplicates removed", num(split.get("straddling_removed"))),
        ("Rows dropped for the gap", num(split.get("dropped_for_gap"))),
    ))]
    if sizes:
        rows = [_cells(p, num(sizes[p]), pct(sizes[p] / total) if total else DASH) for p in parts]
        rows += [_cells(k, num(v), DASH) for k, v in sizes.items() if k not in parts]
        blocks.append(Table(("Part", "Rows", "Share"), tuple(rows)))
    else:
        blocks.append(Text(f"Sizes: {MISSING}", "missing"))
    balance = split.get("class_balance") or {}
    if balance:
        names = list(balance)
        classes = list(dict.fromkeys(c for shares in balance.values() for c in shares))
        blocks.append(Heading("Class balance per split"))
        blocks.append(Table(("Class", *names), tuple(
            _cells(str(c), *(pct((balance[n] or {}).get(c)) for n in names)) for c in classes)))
    return blocks


_BUILDERS: dict[str, Callable[[ReportInput], list[Block]]] = {
    "gates": _gates,
    "metrics": _metrics,
    "plots": _plots,
    "explanation": _explanation,
    "learning-curve": _learning_curve,
    "search": _search,
    "slices": _slices,
    "fairness": _fairness,
    "robustness": _robustness,
    "latency": _latency,
    "audit": _audit,
    "split": _split,
}


def build_sections(report: ReportInput) -> list[Section]:
    """Every section of :data:`SECTIONS`, in order, built from ``report``."""
    return [Section(anchor, title, tuple(_BUILDERS[anchor](report))) for anchor, title in SECTIONS]
