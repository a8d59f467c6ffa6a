"""The promotion gate: acceptance, fairness, robustness, latency, plausibility, and the champion."""

from __future__ import annotations

from assay.gate.gates import (
    GATE_NAMES,
    GateDecision,
    GateResult,
    acceptance_gate,
    champion_gate,
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
    "champion_gate",
    "decide",
    "fairness_gate",
    "latency_gate",
    "plausibility_gate",
    "robustness_gate",
]
