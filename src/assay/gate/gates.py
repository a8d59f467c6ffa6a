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
from assay.evaluate import Criterion, Evaluation, PairedComparison, check_acceptance, check_fairness

__all__ = [
    "GATE_NAMES",
    "GateDecision",
    "GateResult",
    "acceptance_gate",
    "champion_gate",
    "decide",
    "fairness_gate",
    "latency_gate",
    "plausibility_gate",
    "robustness_gate",
]

GATE_NAMES = ("acceptance", "fairness", "robustness", "latency", "plausibility", "champion")


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

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "gates": [g.to_dict() for g in self.gates]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateDecision:
        return cls(tuple(GateResult.from_dict(g) for g in data["gates"]))


def _criteria_gate(name: str, criteria: list[Criterion], empty: str) -> GateResult:
    if not criteria:
        return GateResult(name, True, empty, {"criteria": []})
    failed = [c for c in criteria if not c.passed]
    parts = []
    for c in criteria:
        observed = "n/a" if c.observed is None else f"{c.observed:.4g}"
        who = f" [{c.attribute}]" if c.attribute else ""
        parts.append(f"{c.metric}{who} {observed} (needs {c.threshold})")
    verdict = "all hold" if not failed else f"{len(failed)} of {len(criteria)} fail"
    return GateResult(
        name, not failed, f"{verdict}: " + "; ".join(parts),
        {"criteria": [c.to_dict() for c in criteria]},
    )


def acceptance_gate(evaluation: Evaluation, spec: ProjectSpec) -> GateResult:
    """Every ``acceptance`` threshold holds on the sealed test set."""
    return _criteria_gate(
        "acceptance",
        check_acceptance(evaluation, spec.thresholds),
        "no acceptance criteria in assay.yaml: nothing to hold the model to (add some)",
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
) -> GateResult:
    """Better than the champion on the same sealed rows, beyond chance; ties keep the champion."""
    if champion_version is None:
        return GateResult("champion", True, "no champion yet: nothing to beat", {})
    if not spec.gate.compare_champion:
        return GateResult("champion", True, "champion comparison disabled (gate.compare_champion)", {})
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
) -> GateDecision:
    """Run every gate on one version's evaluation (``baseline_value``: the dummy's primary metric)."""
    return GateDecision((
        acceptance_gate(evaluation, spec),
        fairness_gate(evaluation, spec),
        robustness_gate(evaluation, spec, baseline_value),
        latency_gate(evaluation, spec),
        plausibility_gate(evaluation, spec),
        champion_gate(comparison, spec, champion_version, champion_note),
    ))
