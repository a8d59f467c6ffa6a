"""The model card: a short markdown summary of what a model version is for and how far to trust it.

Sections: intended use, data, metrics (95 % intervals against the baseline), slices
and fairness, limits, lineage. Text taken from data or config is escaped so a
markdown viewer shows it as written: HTML-special characters become entities and
identifiers are set in code spans.
"""

from __future__ import annotations

import re
from typing import Any

from assay.config.metrics import fairness_limits_for
from assay.report.wording import (
    DASH,
    MISSING,
    compact,
    failed_gates,
    higher_is_better,
    interval,
    judged_note,
    limits,
    metric_deltas,
    metric_rows,
    min_slice_size,
    num,
    pct,
    score_summary,
    task_phrase,
    test_use_warning,
    test_rows_note,
    threshold_summary,
    criterion_scope,
    word_rows,
)
from assay.report.inputs import ReportInput

__all__ = ["render_model_card"]

_SPECIAL = re.compile(r"([\\`*\[\]|])")
_TRUST = (
    "the signing key, kept outside the store, is the trust root. The model file is a pickle "
    "and is unpickled only after its HMAC-SHA256 signature, made with that key at "
    "registration, verifies; whoever can write the store's database and artifact folder "
    "without the key cannot get code run by loading it. The SHA-256 hash detects corruption."
)


def _md(value: Any) -> str:
    """Plain text safe in markdown prose and table cells."""
    text = " ".join(str(value).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", text)


def _code(value: Any) -> str:
    """An identifier as a code span (literal in every markdown renderer)."""
    text = " ".join(str(value).split())
    if "`" not in text:
        return f"`{text}`"
    return f"`` {text.replace('``', '` `')} ``"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _threshold(threshold: str, result: str) -> str:
    if threshold == DASH:
        return DASH
    return _code(threshold) + ("" if result == DASH else f" {result}")


def _intended_use(report: ReportInput) -> list[str]:
    data = report.spec_section("data")
    task = report.task
    primary = report.primary
    evaluation = report.evaluation or {}
    lines = ["## Intended use", ""]
    target = f" of {_code(data['target'])}" if data.get("target") else ""
    if report.task:
        lines.append(f"- **Task:** {_md(task_phrase(task))}{target}.")
    else:
        lines.append("- **Task:** not available.")
    if primary:
        direction = "higher" if higher_is_better(primary) else "lower"
        value = (evaluation.get("metrics") or {}).get(primary)
        bounds = (evaluation.get("intervals") or {}).get(primary)
        measured = ""
        if evaluation:
            measured = f": {num(value)} on the sealed test set"
            measured += f" (95% interval {interval(bounds)})" if bounds else ""
        lines.append(f"- **Primary metric:** {_md(primary)} ({direction} is better){measured}.")
    criteria = [c for c in report.acceptance if not c.get("attribute")
                and (not c.get("slice") or not c.get("passed"))]
    configured = report.spec.get("acceptance") or {}
    if criteria:
        lines.append("- **Acceptance criteria** (the definition of done):")
        for c in criteria:
            verdict = "met" if c.get("passed") else "NOT met"
            how = judged_note(c)
            verdict += f", {how}" if how else ""
            if c.get("note"):
                verdict += f" ({c['note']})"
            lines.append(
                f"  - {_md(str(c.get('metric')) + criterion_scope(c))} {_code(c.get('threshold'))}: observed "
                f"{num(c.get('observed'))} {interval(c.get('interval'))}, {verdict}."
            )
    elif configured:
        lines.append("- **Acceptance criteria** (not checked on this version): "
                     + "; ".join(f"{_md(k)} {_code(v)}" for k, v in configured.items()) + ".")
    else:
        lines.append("- **Acceptance criteria:** none configured in assay.yaml.")
    lines.append(
        "- **Out of scope:** the numbers below hold for rows drawn like the training data "
        "(source and split below). Other populations, later periods or other input formats "
        "are not covered; monitor drift before relying on the model there."
    )
    return lines + [""]


def _data(report: ReportInput) -> list[str]:
    data = report.spec_section("data")
    audit = report.audit or {}
    split = report.split or {}
    lines = ["## Data", ""]
    source = audit.get("source") or data.get("source")
    lines.append(f"- **Source:** {_code(source) if source else DASH}")
    if audit:
        shape = f"{num(audit.get('rows'))} x {num(audit.get('columns'))}"
        lines.append(f"- **Rows x columns:** {shape}")
    version = report.version.get("data_version") or audit.get("data_version")
    lines.append(f"- **Data version:** {_code(version) if version else DASH}")
    if not split:
        lines.append("- **Split:** not available.")
        return lines + [""]
    sizes = split.get("sizes") or {}
    parts = ", ".join(f"{_md(k)} {num(v)}" for k, v in sizes.items()) or DASH
    lines.append(f"- **Split:** {_md(split.get('strategy') or DASH)}; rows: {parts}.")
    extra = []
    if split.get("gap") is not None:
        extra.append(f"gap {_md(split['gap'])}")
    extra.append(f"straddling duplicates removed: {num(split.get('straddling_removed'))}")
    if split.get("dropped_for_gap"):
        extra.append(f"rows dropped for the gap: {num(split['dropped_for_gap'])}")
    lines.append(f"- **Leakage guards:** {'; '.join(extra)}.")
    balance = split.get("class_balance") or {}
    for part in ("train", "test"):
        shares = balance.get(part) or {}
        if shares:
            text = ", ".join(f"{_md(c)} {pct(s)}" for c, s in shares.items())
            lines.append(f"- **Class balance ({part}):** {text}.")
    return lines + [""]


def _metrics(report: ReportInput) -> list[str]:
    lines = ["## Metrics", ""]
    rows = metric_rows(report)
    if not rows:
        return lines + ["Not available: the version has no evaluation on the test set.", ""]
    evaluation = report.evaluation or {}
    note = f"Sealed test set, {num(evaluation.get('n_rows'))} rows"
    if evaluation.get("n_boot"):
        note += f"; 95% percentile-bootstrap intervals ({evaluation['n_boot']} resamples)"
    note += ("; baseline: the dummy model on the same rows." if report.baseline
             else "; no baseline evaluation is available.")
    lines += [note, ""]
    warning = test_use_warning(report)
    if warning:
        lines += [f"> **Warning:** {_md(warning)}.", ""]
    table = []
    for row in rows:
        name = f"**{_md(row.metric)}** (primary)" if row.primary else _md(row.metric)
        result = DASH if row.passed is None else ("met" if row.passed else "NOT met")
        table.append([name, row.value, row.interval, row.baseline,
                      _threshold(row.threshold, result)])
    lines += _table(["Metric", "Value", "95% interval", "Baseline", "Acceptance"], table)
    cv = evaluation.get("cv") or {}
    if cv:
        lines += ["", f"Cross-validation: {num(cv.get('mean'))} \u00b1 {num(cv.get('std'))} "
                      f"over {len(cv.get('scores') or [])} folds."]
    curves = evaluation.get("curves") or {}
    facts = [score_summary(curves.get("score_histogram")),
             threshold_summary(curves.get("threshold_curve"))]
    if any(facts):
        lines.append("")
        lines += [f"- {_md(fact[0].upper() + fact[1:])}." for fact in facts if fact]
    return lines + [""] + _deltas(report)


def _deltas(report: ReportInput) -> list[str]:
    rows = metric_deltas(report)
    if not rows:
        return []
    label = f"v{(report.previous or {}).get('version')}"
    lines = [f"### Against version {_md((report.previous or {}).get('version'))}", "",
             _md(test_rows_note(report)), ""]
    table = [[_md(row.metric), row.value, row.previous,
              row.delta + ("" if row.better is None else (" (better)" if row.better
                                                          else " (worse)"))]
             for row in rows]
    return lines + _table(["Metric", "This version", label, "Change"], table) + [""]


def _slices_and_fairness(report: ReportInput) -> list[str]:
    evaluation = report.evaluation or {}
    primary = report.primary
    lines = ["## Slices and fairness", ""]
    slices = [s for s in evaluation.get("slices") or [] if isinstance(s, dict)]
    threshold = min_slice_size(report)
    if not slices:
        lines.append("- **Slices:** not available (no slice column was evaluated).")
    for sl in slices:
        levels = [lv for lv in sl.get("levels") or [] if isinstance(lv, dict)]
        scored = [lv for lv in levels if lv.get("reliable", True)
                  and isinstance((lv.get("metrics") or {}).get(primary), (int, float))]
        parts = []
        if scored and primary:
            sign = 1.0 if higher_is_better(primary) else -1.0
            worst = min(scored, key=lambda lv: sign * float(lv["metrics"][primary]))
            best = max(scored, key=lambda lv: sign * float(lv["metrics"][primary]))
            parts.append(f"{_md(primary)} from {num(worst['metrics'][primary])} "
                         f"({_code(worst.get('level'))}, {num(worst.get('n'))} rows) to "
                         f"{num(best['metrics'][primary])} ({_code(best.get('level'))})")
        small = [lv.get("level") for lv in levels if not lv.get("reliable", True)]
        if small:
            parts.append(f"unreliable (fewer than {threshold} rows): "
                         + ", ".join(_code(s) for s in small))
        lines.append(f"- **Slice {_code(sl.get('column'))}:** " + ("; ".join(parts) or DASH) + ".")
    fairness = [f for f in evaluation.get("fairness") or [] if isinstance(f, dict)]
    criteria = {(c.get("metric"), c.get("attribute")): c for c in report.fairness_criteria}
    if not fairness and not criteria:
        return lines + ["- **Fairness:** not available (no protected attribute was evaluated).", ""]
    rows = []
    for result in fairness:
        for name in fairness_limits_for(report.task or "binary"):
            c = criteria.pop((name, result.get("attribute")), None)
            verdict = ("met" if c.get("passed") else "NOT met") if c else DASH
            rows.append([_code(result.get("attribute")), name.replace("_", " "),
                         num(result.get(name)), _code(c.get("threshold")) if c else DASH, verdict])
    for c in criteria.values():
        rows.append([_code(c.get("attribute")) if c.get("attribute") else DASH,
                     _md(c.get("metric")), num(c.get("observed")), _code(c.get("threshold")),
                     ("met" if c.get("passed") else "NOT met") + (f" ({_md(c['note'])})"
                                                                   if c.get("note") else "")])
    measured = "errors" if report.task == "regression" else "decisions"
    lines += ["", f"Fairness of the {measured} per protected attribute:", ""]
    lines += _table(["Attribute", "Measure", "Value", "Limit", "Result"], rows)
    mitigation = evaluation.get("mitigation")
    if isinstance(mitigation, dict):
        fitted = [str(m.get("method")) for m in mitigation.get("models") or []
                  if isinstance(m, dict) and m.get("method") != "none"]
        lines += ["", f"Mitigated alternatives for {_code(mitigation.get('attribute'))} were "
                      f"compared ({', '.join(fitted) or 'none could be fitted'}); this version is "
                      "the unmitigated model. The report shows the trade-off."]
    return lines + [""]


def _leans_on(report: ReportInput) -> list[str]:
    explanation = report.explanation
    lines = ["## What the model leans on", ""]
    if not explanation:
        return lines + [f"{MISSING}: no explanation was computed for this version.", ""]
    features = sorted(explanation.get("features") or [], key=lambda f: int(f.get("rank", 0)))
    measure = ("mean loss increase when the column is shuffled"
               if explanation.get("output") == "loss_increase"
               else f"mean absolute contribution to the {str(explanation.get('output', '')).replace('_', ' ')}")
    lines += [f"Global importance over {num(explanation.get('rows'))} test rows "
              f"({_md(explanation.get('method'))}: {measure}).", ""]
    rows = [[num(f.get("rank")), _md(f.get("feature")), num(f.get("importance")), pct(f.get("share"))]
            for f in features[:10]]
    lines += _table(["Rank", "Column", "Importance", "Share"], rows) + [""]
    tokens = explanation.get("tokens") or {}
    words = word_rows(tokens)
    if words:
        lines += [f"Words of {_md(tokens.get('column'))} that move the {_md(tokens.get('target'))} "
                  f"most (occlusion, {num(tokens.get('texts'))} sampled test texts):", ""]
        lines += _table(["Direction", "Word", "Mean attribution", "Texts"],
                        [[d, _md(w), m, t] for d, w, m, t in words]) + [""]
    return lines


def _limits(report: ReportInput) -> list[str]:
    lines = ["## Limits", ""]
    found = limits(report)
    if not found:
        return lines + ["The checks that ran found no specific weakness; that is not proof "
                        "that none exists.", ""]
    return lines + [f"- {_md(item)}" for item in found] + [""]


def _lineage(report: ReportInput) -> list[str]:
    v = report.version
    search = report.search or {}
    lines = ["## Lineage", ""]
    items = [
        ("Model version", _md(v.get("version", DASH))),
        ("Family", _md(v.get("family") or DASH)),
        ("Status", _md(v.get("status") or DASH)),
        ("Parameters", _code(compact(v.get("params"), 600)) if v.get("params") else DASH),
        ("Data version", _code(v["data_version"]) if v.get("data_version") else DASH),
        ("Code version", _code(v["code_version"]) if v.get("code_version") else DASH),
        ("Sealed test set", (_code(v["test_fingerprint"]) if v.get("test_fingerprint") else DASH)
         + (f", scored {num(v['test_uses'])} candidate(s)" if v.get("test_uses") is not None
            else "")
         + (f" (limit {num(v['max_test_uses'])})" if v.get("max_test_uses") is not None else "")),
        ("Created", " by ".join(_md(x) for x in (v.get("created_at"), v.get("user")) if x) or DASH),
        ("Artifact", _code(v["artifact"]) if v.get("artifact") else DASH),
        ("Trust", _TRUST),
    ]
    if search:
        trials = search.get("trials") or []
        metric = search.get("metric") or search.get("primary_metric") or DASH
        items.append(("Search", f"{_md(search.get('sampler') or DASH)} sampler, {len(trials)} "
                                f"trials; best {_md(search.get('best_family') or DASH)} with "
                                f"validation {_md(metric)} {num(search.get('best_value'))}"))
    if report.gates:
        gates = ", ".join(f"{_md(g.get('name'))} {'pass' if g.get('passed') else 'FAIL'}"
                          for g in report.gates)
        items.append(("Gates", gates))
    return lines + [f"- **{label}:** {value}" for label, value in items] + [""]


def render_model_card(report: ReportInput) -> str:
    """The model card of one version, as markdown."""
    v = report.version
    data = report.spec_section("data")
    name = report.spec.get("name") or data.get("target") or "model"
    lines = [f"# Model card: {_md(name)}, version {_md(v.get('version', '?'))}", ""]
    created = " by ".join(_md(x) for x in (v.get("created_at"), v.get("user")) if x)
    family = f"{_md(v['family'])} model" if v.get("family") else "model"
    lines.append(
        f"A {family} for {_md(task_phrase(report.task))}, "
        f"status **{_md(v.get('status') or 'unknown')}**"
        + (f", created {created}" if created else "")
        + "."
    )
    failed = failed_gates(report)
    if failed:
        lines += ["", f"> **Gates failed:** {_md(', '.join(failed))}. Not fit for promotion."]
    lines.append("")
    for part in (_intended_use, _data, _metrics, _leans_on, _slices_and_fairness, _limits,
                 _lineage):
        lines += part(report)
    return "\n".join(lines).rstrip() + "\n"
