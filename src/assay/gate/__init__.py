"""The promotion gate: acceptance, the baseline, fairness, calibration, robustness, latency,
plausibility, and the champion."""

from __future__ import annotations

from assay.gate.gates import (
    GATE_NAMES,
    GateDecision,
    GateResult,
    acceptance_gate,
    baseline_gate,
    champion_gate,
    describe_criterion,
    decide,
    fairness_gate,
    latency_gate,
    plausibility_gate,
    robustness_gate,
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
    "plausibility_gate",
    "robustness_gate",
]
