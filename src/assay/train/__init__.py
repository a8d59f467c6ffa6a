"""The training stage: preprocessing, model families, hyper-parameter search, learning curves.

``run_search`` takes training and validation rows and returns a :class:`SearchResult`
holding the best fitted model, the dummy baseline, every trial and the best model's
learning curve with its diagnosis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from assay.train.context import BuildContext, TextOptions
from assay.train.curves import (
    Diagnosis,
    LearningCurve,
    curve_from_estimator,
    diagnose,
    learning_curve_for,
    train_size_curve,
)
from assay.train.families import (
    FAMILIES,
    BaseModelFamily,
    DummyFamily,
    ExtraTreesFamily,
    LightGBMFamily,
    LinearFamily,
    MLPFamily,
    SVMFamily,
    TfidfLinearFamily,
    get_family,
)
from assay.train.objective import (
    ObjectiveHints,
    ThresholdedClassifier,
    choose_threshold,
    objective_for,
)
from assay.train.pipeline import ModelPipeline, fit_model
from assay.train.preprocess import build_preprocessor
from assay.train.scoring import score_estimator, score_predictions
from assay.train.search import SearchResult, TrialInfo, TrialRecord, run_search

# the families on a pretrained encoder register on import (torch loads with their first build)
from assay.train.text_families import (  # noqa: E402  (after the table they register in)
    EmbeddingLinearFamily,
    FullFineTuneFamily,
    LoraFamily,
)

if TYPE_CHECKING:
    from assay.train.mlp import TorchMLPClassifier, TorchMLPRegressor

__all__ = [
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
]


def __getattr__(name: str) -> Any:
    # the PyTorch estimators import torch, so they load on first use
    if name in ("TorchMLPClassifier", "TorchMLPRegressor"):
        from assay.train import mlp

        return getattr(mlp, name)
    raise AttributeError(f"module 'assay.train' has no attribute '{name}'")
