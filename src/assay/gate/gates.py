"""The promotion gate: what a registered version must show before it becomes champion.

Each gate is a pure function of the evaluation (and, for the champion gate, of a
paired comparison on the same sealed test rows) returning a :class:`GateResult`;
:func:`decide` runs them all. Nothing here touches the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from assay.config.metrics import HIGHER_IS_BETTER
from assay.config.spec import ProjectSpec
from assay.evaluate import (
    Criterion,
    Evaluation,
    PairedComparison,
    check_acceptance,
    check_fairness,
    check_slice_acceptance,
)

__all__ = [
    "GATE_NAMES",
    "GateDecision",
    "GateResult",
    "acceptance_gate",
    "baseline_gate",
    "champion_gate",
    "describe_criterion",
    "decide",
    "fairness_gate",
    "latency_gate",
    "robustness_gate",
]

GATE_NAMES = ("acceptance", "baseline", "fairness", "robustness", "latency", "champion")


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


def robustness_gate(
    evaluation: Evaluation, spec: ProjectSpec, baseline_value: float | None = None
) -> GateResult:
    """The model answers perturbed and out-of-range input, and small noise costs little.

    The cost of noise is measured as the share of the model's skill over the dummy
    baseline that it loses (``(clean - noisy) / (clean - baseline)``, oriented by the
    metric's direction), so a near-perfect regression whose error doubles from a tiny
    value is not judged as harshly as a relative drop would. Without a baseline the
    relative drop of the metric is used.
    """
    report = evaluation.robustness
    tolerance = spec.gate.max_robustness_drop
    if report is None:
        return GateResult("robustness", False, "robustness was not measured", {})
    evidence: dict[str, Any] = {
        "worst_relative_drop": report.worst_relative_drop, "worst_case": report.worst_case,
        "unanswered": list(report.unanswered), "tolerance": tolerance,
    }
    if report.unanswered:
        return GateResult(
            "robustness", False,
            f"the model failed to answer: {', '.join(report.unanswered)}", evidence,
        )
    noise = next((c for c in report.cases if c.name == "noise"), None)
    cost, measure = None, "skill lost"
    if noise is not None and noise.drop is not None and report.clean is not None:
        skill = None
        if baseline_value is not None:
            higher = HIGHER_IS_BETTER.get(report.metric, True)
            skill = (report.clean - baseline_value) if higher else (baseline_value - report.clean)
        if skill is not None and skill > 1e-12:
            cost = noise.drop / skill
        else:
            cost, measure = noise.relative_drop, "relative drop"
    evidence.update({"noise_cost": cost, "measure": measure, "baseline": baseline_value})
    if cost is not None and cost > tolerance:
        return GateResult(
            "robustness", False,
            f"small input noise costs {cost:.1%} of {report.metric} ({measure}; tolerance {tolerance:.0%})",
            evidence,
        )
    shown = "n/a" if cost is None else f"{cost:.1%}"
    return GateResult(
        "robustness", True,
        f"answers every perturbed input; small noise costs {shown} of {report.metric} "
        f"({measure}; tolerance {tolerance:.0%})",
        evidence,
    )


def latency_gate(evaluation: Evaluation, spec: ProjectSpec) -> GateResult:
    """Single-row p99 latency is within ``serving.latency_p99_ms``."""
    latency = evaluation.latency
    sla = spec.serving.latency_p99_ms
    if latency is None:
        return GateResult("latency", False, "latency was not measured", {"sla_ms": sla})
    p99 = latency.single_p99_ms
    return GateResult(
        "latency", p99 <= sla,
        f"single-row p99 {p99:.2f} ms {'within' if p99 <= sla else 'over'} the {sla:g} ms SLA",
        {"p99_ms": p99, "p50_ms": latency.single_p50_ms, "sla_ms": sla},
    )


def champion_gate(
    comparison: PairedComparison | None,
    spec: ProjectSpec,
    champion_version: int | None,
    note: str = "",
    *,
    comparable: bool = True,
) -> GateResult:
    """Better than the champion on the same sealed rows, beyond chance; ties keep the champion.

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
) -> GateDecision:
    """Run every gate on one version's evaluation.

    ``baseline_value`` is the dummy's primary metric; ``baseline`` the paired
    comparison of the dummy (A) with the candidate (B) on the same sealed test rows;
    ``champion_comparable=False`` when the champion could not be scored at all.
    """
    return GateDecision((
        acceptance_gate(evaluation, spec, champion_version),
        baseline_gate(baseline, spec),
        fairness_gate(evaluation, spec),
        robustness_gate(evaluation, spec, baseline_value),
        latency_gate(evaluation, spec),
        champion_gate(
            comparison, spec, champion_version, champion_note, comparable=champion_comparable
        ),
    ))
