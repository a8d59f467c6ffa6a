"""``assay run`` prints the recalibration decision and the mitigation comparison."""

from __future__ import annotations

from rich.console import Console

from assay.cli.models import _render_mitigation, _render_recalibration
from assay.evaluate.calibration import Recalibration
from assay.evaluate.mitigation import MitigatedModel, MitigationComparison


def _console() -> Console:
    return Console(record=True, width=200, color_system=None)


def test_mitigation_table_and_what_is_registered() -> None:
    comparison = MitigationComparison(
        reasons=("fairness limit demographic_parity_difference <= 0.1 fails on 'group'",),
        attribute="group", constraint="demographic_parity", rows="test", primary="roc_auc",
        limits={"demographic_parity_difference": "<= 0.1"},
        models=(
            MitigatedModel("none", "the chosen model", 0.85,
                           {"group": {"demographic_parity_difference": 0.88}}, False),
            MitigatedModel("threshold", "per-group thresholds", 0.69,
                           {"group": {"demographic_parity_difference": 0.098}}, True),
        ),
        skipped={"reductions": "fitting failed: ValueError: x"},
    )
    console = _console()
    _render_mitigation(console, comparison)
    text = console.export_text()
    assert "Fairness mitigation ran: fairness limit demographic_parity_difference <= 0.1" in text
    assert "Mitigated alternatives on the test rows (group, demographic_parity)" in text
    assert "threshold" in text and "0.098" in text and "hold" in text
    assert "reductions: not fitted: fitting failed" in text
    assert "The registered version is the unmitigated model" in text


def test_recalibration_lines() -> None:
    console = _console()
    _render_recalibration(console, Recalibration(0.05, "isotonic", True, 0.13, 0.03, 0.11, 0.027))
    _render_recalibration(console, Recalibration(0.05, "", False, 0.02, None, 0.03, 0.03,
                                                 note="within the limit on the validation rows"))
    _render_recalibration(console, None)
    text = console.export_text()
    assert "isotonic recalibration on the validation rows registered" in text
    assert "test 0.11 -> 0.027 (limit 0.05)" in text
    assert "model kept as fitted (within the limit on the validation rows)" in text
