"""The promotion gate: what a registered version must show before it becomes champion.

Each gate is a pure function of the evaluation (and, for the champion gate, of a
paired comparison on the same sealed test rows) returning a :class:`GateResult`;
:func:`decide` runs them all. Nothing here touches the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from assay.config.spec import ProjectSpec
from assay.evaluate import (
    Criterion,
    Evaluation,
    PairedComparison,
    check_acceptance,
    check_fairness,
    check_slice_acceptance,
)
from assay.evaluate.robustness import judge

__all__ = [
    "GATE_NAMES",
    "GateDecision",
    "GateResult",
    "acceptance_gate",
    "baseline_gate",
    "calibration_gate",
    "champion_gate",
    "describe_criterion",
    "decide",
    "fairness_gate",
    "latency_gate",
    "plausibility_gate",
    "robustness_gate",
]

GATE_NAMES = (
    "acceptance", "baseline", "fairness", "calibration", "robustness", "latency",
    "plausibility", "champion",
)


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict with the evidence behind it."""

    name: str
    passed: bool
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "message": self.message,
                "evidence": self.evidence}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateResult:
        return cls(data["name"], bool(data["passed"]), data["message"], dict(data.get("evidence", {})))


@dataclass(frozen=True)
class GateDecision:
    """All gates of one version; it may be promoted only if every gate passed."""

    gates: tuple[GateResult, ...]

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    @property
    def failed(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]

    @property
    def review(self) -> list[str]:
        """Why this version needs an explicit ``assay promote`` although its gates passed.

        A gate that passes without the evidence to promote on its own (no acceptance
        criteria before the first champion; a champion that could not be scored) says
        so in ``evidence["review"]``; such a version is registered, not promoted.
        """
        return [str(g.evidence["review"]) for g in self.gates if g.evidence.get("review")]

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "review": self.review,
                "gates": [g.to_dict() for g in self.gates]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateDecision:
        return cls(tuple(GateResult.from_dict(g) for g in data["gates"]))


def describe_criterion(c: Criterion) -> str:
    """``metric value (95% CI [lo, hi], lower bound judged; needs >= x)`` for one criterion."""
    observed = "n/a" if c.observed is None else f"{c.observed:.4g}"
    details = []
    if c.interval is not None:
        details.append(f"95% CI [{c.interval[0]:.4g}, {c.interval[1]:.4g}]")
    if c.judged == "interval" and c.judged_value is not None:
        end = "lower" if c.threshold.lstrip().startswith(">") else "upper"
        details.append(f"{end} bound {c.judged_value:.4g} judged")
    if c.note:
        details.append(c.note)
    details.append(f"needs {c.threshold}")
    return f"{c.label} {observed} ({'; '.join(details)})"


def _criteria_gate(
    name: str, criteria: list[Criterion], empty: str, evidence: dict[str, Any] | None = None
) -> GateResult:
    if not criteria:
        return GateResult(name, True, empty, {"criteria": [], **(evidence or {})})
    failed = [c for c in criteria if not c.passed]
    # every failure is named; passing per-slice levels are summarised, not listed
    shown = [c for c in criteria if c.slice is None or not c.passed]
    parts = [describe_criterion(c) for c in (failed + [c for c in shown if c.passed])]
    held = len([c for c in criteria if c.slice is not None and c.passed])
    if held:
        parts.append(f"{held} slice level check(s) hold or have too few rows")
    verdict = "all hold" if not failed else f"{len(failed)} of {len(criteria)} fail"
    return GateResult(
        name, not failed, f"{verdict}: " + "; ".join(parts),
        {"criteria": [c.to_dict() for c in criteria]},
    )


def acceptance_gate(
    evaluation: Evaluation, spec: ProjectSpec, champion_version: int | None = None
) -> GateResult:
    """Every ``acceptance`` threshold (and every per-slice one) holds on the sealed test set.

    Criteria are judged on ``gate.acceptance_on``: by default the pessimistic end of
    the bootstrap interval. Without any criterion the gate passes, but a project with
    no champion yet is not promoted automatically (``evidence["review"]``): its first
    champion needs an explicit ``assay promote``.
    """
    criteria = check_acceptance(evaluation, spec.thresholds, on=spec.gate.acceptance_on)
    criteria += check_slice_acceptance(evaluation, spec.slice_thresholds, on=spec.gate.acceptance_on)
    if criteria or champion_version is not None:
        empty = "no acceptance criteria in assay.yaml: the champion is the yardstick (add some)"
        return _criteria_gate("acceptance", criteria, empty, {"judged_on": spec.gate.acceptance_on})
    review = (
        "no acceptance criteria in assay.yaml, so nothing holds the first champion to a "
        "standard: check the evaluation, then promote it with 'assay promote N' (or add "
        "acceptance criteria, which 'assay init' drafts from the baseline)"
    )
    return GateResult(
        "acceptance", True,
        "no acceptance criteria in assay.yaml: registered, not promoted automatically; "
        "an explicit 'assay promote' is needed",
        {"criteria": [], "review": review, "judged_on": spec.gate.acceptance_on},
    )


def baseline_gate(comparison: PairedComparison | None, spec: ProjectSpec) -> GateResult:
    """Better than the dummy baseline on the primary metric, beyond the paired interval.

    ``comparison`` is the paired bootstrap of the baseline (A) against the candidate
    (B) on the same sealed test rows; the gate fails when the interval of the
    improvement reaches 0 (or the candidate is worse).
    """
    if comparison is None:
        return GateResult(
            "baseline", False,
            "the dummy baseline was not compared with the model on the same rows",
            {"metric": spec.primary_metric},
        )
    c = comparison
    evidence = {
        "metric": c.metric, "baseline_value": c.value_a, "candidate_value": c.value_b,
        "delta": c.delta, "ci": [c.ci_low, c.ci_high], "p_value": c.p_value_b_not_better,
    }
    shown = (f"{c.metric} {c.value_b:.4g} vs dummy {c.value_a:.4g} (delta {c.delta:+.4g}, "
             f"95% CI [{c.ci_low:+.4g}, {c.ci_high:+.4g}])")
    if c.ci_low > 0:
        return GateResult("baseline", True, f"beats the dummy baseline: {shown}", evidence)
    why = "worse than" if c.delta <= 0 else "not clearly better than"
    return GateResult(
        "baseline", False,
        f"{why} the dummy baseline: {shown}; the interval of the improvement includes 0, "
        "so the model has not shown it learned anything the dummy does not know",
        evidence,
    )


def fairness_gate(evaluation: Evaluation, spec: ProjectSpec) -> GateResult:
    """Every ``fairness.limits`` entry holds for every protected attribute."""
    return _criteria_gate(
        "fairness",
        check_fairness(evaluation, {str(k): v for k, v in spec.fairness.limits.items()}),
        "no fairness limits in assay.yaml",
    )


def calibration_gate(evaluation: Evaluation, spec: ProjectSpec) -> GateResult:
    """The expected calibration error on the sealed test set is within ``calibration.max_ece``."""
    limit = spec.calibration.max_ece
    if limit is None:
        return GateResult("calibration", True, "no calibration limit in assay.yaml", {})
    calibration = evaluation.curves.calibration
    recal = evaluation.recalibration
    evidence: dict[str, Any] = {"max_ece": limit}
    if recal is not None:
        evidence["recalibration"] = recal.to_dict()
    if calibration is None:
        return GateResult(
            "calibration", False, "the calibration error could not be measured (no probabilities)",
            evidence,
        )
    ece = calibration.ece
    evidence["ece"] = ece
    done = ""
    if recal is not None and recal.adopted and recal.test_before is not None:
        done = f" after {recal.method} recalibration (before: {recal.test_before:.4f})"
    within = ece <= limit
    return GateResult(
        "calibration", within,
        f"test ECE {ece:.4f}{done} {'within' if within else 'over'} the limit {limit:g}",
        evidence,
    )


def robustness_gate(
    evaluation: Evaluation, spec: ProjectSpec, baseline_value: float | None = None
) -> GateResult:
    """The model answers every perturbed input, and each gated case costs little.

    The cases and their judgement are :func:`assay.evaluate.robustness.judge`'s: every
    case must be answered (the server would fail on such a row too); the gated cases
    (``noise``, ``unseen_level:<col>``, ``typos:<col>``, ``lowercase:<col>``,
    ``uppercase:<col>``) must each cost at most ``gate.max_robustness_drop``. The cost
    is the share of the model's skill over the dummy baseline that a case loses
    (``(clean - perturbed) / (clean - baseline)``, oriented by the metric's direction),
    so a near-perfect regression whose error doubles from a tiny value is not judged
    as harshly as a relative drop would; without a baseline, the relative drop. The
    other cases (a whole feature missing, level swaps, punctuation, truncation) are
    shown with their cost as diagnostics. ``evidence["cases"]`` holds every case's
    verdict: the report colours the cases by it.
    """
    report = evaluation.robustness
    tolerance = spec.gate.max_robustness_drop
    if report is None:
        return GateResult("robustness", False, "robustness was not measured", {})
    judged = judge(report, tolerance, baseline_value)
    noise = next((c for c in judged.cases if c.name == "noise"), None)
    evidence: dict[str, Any] = {
        "worst_relative_drop": report.worst_relative_drop, "worst_case": report.worst_case,
        "unanswered": list(judged.unanswered), "over": list(judged.over),
        "tolerance": tolerance, "measure": judged.measure, "baseline": baseline_value,
        "noise_cost": noise.cost if noise is not None else None,
        "worst_gated": judged.worst, "worst_gated_cost": judged.worst_cost,
        "gated": [c.name for c in judged.cases if c.gated],
        "cases": [c.to_dict() for c in judged.cases],
    }
    rule = f"({judged.measure}; tolerance {tolerance:.0%})"
    if judged.unanswered:
        return GateResult(
            "robustness", False,
            f"the model failed to answer: {', '.join(judged.unanswered)}", evidence,
        )
    if judged.over:
        costs = {c.name: c.cost for c in judged.cases}
        listed = ", ".join(f"{name} {costs[name]:.1%}" for name in judged.over)
        return GateResult(
            "robustness", False,
            f"perturbed input costs too much {report.metric}: {listed} {rule}", evidence,
        )
    if judged.worst is None:
        shown = "no gated case could be scored"
    else:
        shown = f"the worst gated case, {judged.worst}, costs {judged.worst_cost:.1%}"
    return GateResult(
        "robustness", True,
        f"answers every perturbed input; {shown} of {report.metric} {rule}", evidence,
    )


def latency_gate(evaluation: Evaluation, spec: ProjectSpec) -> GateResult:
    """The single-row p99 latency, as the server answers one record, is within
    ``serving.latency_p99_ms``.

    The judged p99 is :func:`assay.evaluate.measure_latency`'s: the median round's p99
    after warm-up, re-measured before it is reported over the SLA (the fastest attempt
    kept), so a busy machine does not flip the gate. The evidence holds every round's
    p50 and p99, the min/median/max round p99 and each attempt's judged p99.
    """
    latency = evaluation.latency
    sla = spec.serving.latency_p99_ms
    if latency is None:
        return GateResult("latency", False, "latency was not measured", {"sla_ms": sla})
    p99 = latency.single_p99_ms
    spread = latency.round_p99_ms
    evidence: dict[str, Any] = {
        "p99_ms": p99, "p50_ms": latency.single_p50_ms, "sla_ms": sla,
        "path": latency.path, "judged_on": latency.judged_on if spread else "one measurement",
        "rounds": [r.to_dict() for r in latency.rounds],
        "round_p99_ms": None if spread is None else
        {"min": spread[0], "median": spread[1], "max": spread[2]},
        "attempts": latency.attempts, "attempt_p99_ms": list(latency.attempt_p99_ms),
    }
    how = f"{latency.path}"
    if spread is not None:
        how += (f"; median of {len(latency.rounds)} rounds, round p99 "
                f"{spread[0]:.2f}-{spread[2]:.2f} ms")
    if latency.attempts > 1:
        how += f"; fastest of {latency.attempts} measurements"
    within = p99 <= sla
    return GateResult(
        "latency", within,
        f"single-row p99 {p99:.2f} ms ({how}) {'within' if within else 'over'} the {sla:g} ms SLA",
        evidence,
    )


def plausibility_gate(evaluation: Evaluation, spec: ProjectSpec) -> GateResult:
    """The test results are not too good to be true (``gate.plausibility``).

    A classifier without an error on the test rows, without errors of one kind while it
    makes many of the other, or far above its own cross-validation, has usually seen
    the answer. The message ties the signs to the features that explain them: those
    whose absence costs the model most on the test rows, and the pure regions there.
    """
    report = evaluation.plausibility
    if not spec.gate.plausibility:
        return GateResult(
            "plausibility", True, "disabled (gate.plausibility: false)", {"enabled": False}
        )
    if report is None:
        return GateResult("plausibility", True, "not measured for this evaluation", {})
    # the suspects first: the report's gate table shows the start of the evidence
    evidence: dict[str, Any] = {
        "suspect_features": list(report.suspect_features), **report.to_dict()
    }
    if report.plausible:
        return GateResult("plausibility", True, report.summary(), evidence)
    suspects = report.suspect_features
    named = ", ".join(f"'{c}'" for c in suspects[:3])
    fix = (
        f"Check whether {named} {'is' if len(suspects) == 1 else 'are'} known only after the "
        "outcome and, if so, add it to data.drop in assay.yaml"
        if suspects
        else "Look for a column known only after the outcome and add it to data.drop in assay.yaml"
    )
    return GateResult(
        "plausibility", False,
        f"too good to be true: {report.summary()}. {fix}; if the problem is genuinely this "
        "separable, set gate.plausibility: false, or promote with --force and a --reason",
        evidence,
    )


def champion_gate(
    comparison: PairedComparison | None,
    spec: ProjectSpec,
    champion_version: int | None,
    note: str = "",
    *,
    comparable: bool = True,
    retired: tuple[str, ...] = (),
) -> GateResult:
    """Better than the champion on the same sealed rows, beyond chance; ties keep the champion.

    ``retired`` names columns the champion relies on that assay.yaml now keeps out of the
    features (``data.drop``): the user has judged them unusable (a field known only after
    the outcome, say), so a champion scored with them is no yardstick. A candidate that
    does not beat it then passes with the comparison as evidence and waits for an explicit
    ``assay promote`` (``evidence["review"]``) instead of being held behind ``--force``.

    ``comparable=False`` says the champion cannot be scored on these rows at all (its
    artifact or columns are gone, it predicts other classes): the gate then passes
    with ``note`` as the reason and asks for an explicit ``assay promote``
    (``evidence["review"]``), so a project is never left with a champion that no
    candidate can replace except by force.
    """
    if champion_version is None:
        return GateResult("champion", True, "no champion yet: nothing to beat", {})
    if not spec.gate.compare_champion:
        return GateResult("champion", True, "champion comparison disabled (gate.compare_champion)", {})
    if comparison is None and not comparable:
        why = note or "it could not be scored"
        return GateResult(
            "champion", True,
            f"the comparison with champion v{champion_version} was impossible ({why}); "
            "not promoted automatically: compare the evaluations and promote with "
            "'assay promote N'",
            {"champion": champion_version, "compared": False, "note": why,
             "review": f"champion v{champion_version} could not be compared on the same "
                       f"rows ({why}); review the evaluations, then 'assay promote N'"},
        )
    if comparison is None:
        return GateResult(
            "champion", False,
            f"could not compare with champion v{champion_version} on the same rows" + (f": {note}" if note else ""),
            {"champion": champion_version},
        )
    c = comparison
    alpha = spec.gate.alpha
    margin = spec.retrain.min_improvement
    better = c.delta > margin and c.p_value_b_not_better < alpha
    evidence = {
        "champion": champion_version, "metric": c.metric, "champion_value": c.value_a,
        "candidate_value": c.value_b, "delta": c.delta, "ci": [c.ci_low, c.ci_high],
        "p_value": c.p_value_b_not_better, "alpha": alpha, "min_improvement": margin,
    }
    if better:
        message = (f"beats champion v{champion_version}: {c.metric} {c.value_b:.4g} vs {c.value_a:.4g} "
                   f"(delta {c.delta:+.4g}, 95% CI [{c.ci_low:+.4g}, {c.ci_high:+.4g}], p={c.p_value_b_not_better:.3f})")
    elif retired:
        columns = ", ".join(retired)
        evidence.update({"retired_columns": list(retired), "review": (
            f"champion v{champion_version} relies on {columns}, which data.drop now excludes; "
            f"it scores {c.metric} {c.value_a:.4g} with them against {c.value_b:.4g}: review "
            "the evaluations, then 'assay promote N'")})
        message = (f"champion v{champion_version} relies on {columns}, which data.drop now "
                   f"excludes, so its {c.metric} {c.value_a:.4g} (against {c.value_b:.4g}) is no "
                   "yardstick; not promoted automatically: 'assay promote N' after review")
        return GateResult("champion", True, message, evidence)
    else:
        message = (f"not clearly better than champion v{champion_version}: {c.metric} {c.value_b:.4g} vs "
                   f"{c.value_a:.4g} (delta {c.delta:+.4g}, p={c.p_value_b_not_better:.3f}; needs "
                   f"p < {alpha:g} and delta > {margin:g}); the champion stays")
    return GateResult("champion", better, message, evidence)


def decide(
    evaluation: Evaluation,
    spec: ProjectSpec,
    *,
    comparison: PairedComparison | None = None,
    champion_version: int | None = None,
    champion_note: str = "",
    baseline_value: float | None = None,
    baseline: PairedComparison | None = None,
    champion_comparable: bool = True,
    champion_retired: tuple[str, ...] = (),
) -> GateDecision:
    """Run every gate on one version's evaluation.

    ``baseline_value`` is the dummy's primary metric; ``baseline`` the paired
    comparison of the dummy (A) with the candidate (B) on the same sealed test rows;
    ``champion_comparable=False`` when the champion could not be scored at all;
    ``champion_retired`` the champion's columns that ``data.drop`` now excludes.
    """
    return GateDecision((
        acceptance_gate(evaluation, spec, champion_version),
        baseline_gate(baseline, spec),
        fairness_gate(evaluation, spec),
        calibration_gate(evaluation, spec),
        robustness_gate(evaluation, spec, baseline_value),
        latency_gate(evaluation, spec),
        plausibility_gate(evaluation, spec),
        champion_gate(
            comparison, spec, champion_version, champion_note, comparable=champion_comparable,
            retired=champion_retired,
        ),
    ))
