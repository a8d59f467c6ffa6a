"""The public names of assay.train are pinned, documented, and importing them stays light."""

from __future__ import annotations

import inspect
import subprocess
import sys

import assay.train

EXPECTED = {
    "FAMILIES",
    "BaseModelFamily",
    "BuildContext",
    "Diagnosis",
    "DummyFamily",
    "EmbeddingLinearFamily",
    "ExtraTreesFamily",
    "FullFineTuneFamily",
    "LearningCurve",
    "LightGBMFamily",
    "LinearFamily",
    "LoraFamily",
    "MLPFamily",
    "ModelPipeline",
    "ObjectiveHints",
    "SVMFamily",
    "SearchResult",
    "TextOptions",
    "TfidfLinearFamily",
    "ThresholdedClassifier",
    "TorchMLPClassifier",
    "TorchMLPRegressor",
    "TrialInfo",
    "TrialRecord",
    "build_preprocessor",
    "choose_threshold",
    "curve_from_estimator",
    "diagnose",
    "fit_model",
    "get_family",
    "learning_curve_for",
    "objective_for",
    "run_search",
    "score_estimator",
    "score_predictions",
    "train_size_curve",
}


def test_public_names_are_pinned() -> None:
    assert set(assay.train.__all__) == EXPECTED


def test_every_public_name_resolves_and_is_documented() -> None:
    for name in assay.train.__all__:
        obj = getattr(assay.train, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{name} has no docstring"


def test_importing_the_stage_does_not_import_torch() -> None:
    code = "import sys, assay.train; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
