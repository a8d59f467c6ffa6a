"""Real evaluations of small models, bundled as report inputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.datasets import make_classification, make_regression
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from assay.audit.base import AuditReport, Finding
from assay.config.spec import ProjectSpec
from assay.evaluate import check_acceptance, check_fairness, evaluate
from assay.report import ReportInput

SEED = 7
SCRIPT = "<script>alert(1)</script>"


def _binary_frame() -> tuple[pd.DataFrame, np.ndarray]:
    X, y = make_classification(
        n_samples=500, n_features=3, n_informative=3, n_redundant=0, random_state=SEED
    )
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    rng = np.random.default_rng(SEED)
    # "islands" is rare, so its level is unreliable in the test rows
    frame["region"] = rng.choice(["north", "south", "islands"], len(frame), p=[0.5, 0.45, 0.05])
    frame["sex"] = rng.choice(["f", "m"], len(frame))
    return frame, y


def _classifier_pipeline(estimator: Any) -> Any:
    pre = make_column_transformer(
        (StandardScaler(), ["a", "b", "c"]), (OneHotEncoder(handle_unknown="ignore"), ["region"])
    )
    return make_pipeline(pre, estimator)


def _spec(task: str, target: str, acceptance: dict[str, str], **extra: Any) -> dict[str, Any]:
    return ProjectSpec.model_validate(
        {"name": "churn" if task == "binary" else "price", "task": task,
         "data": {"source": "data/train.csv", "target": target},
         "acceptance": acceptance, **extra}
    ).to_dict()


@pytest.fixture(scope="session")
def binary_input() -> ReportInput:
    """A logistic regression on a binary target, with slices, a protected column and all parts."""
    frame, y = _binary_frame()
    train, test = slice(0, 300), slice(300, None)
    X_train, X_test = frame.iloc[train], frame.iloc[test].reset_index(drop=True)
    model = _classifier_pipeline(LogisticRegression()).fit(X_train, y[train])
    slices = pd.DataFrame({"region": X_test["region"], SCRIPT: X_test["sex"]})
    evaluation = evaluate(
        model, X_test, y[test], task="binary", slices=slices, protected=X_test[["sex"]],
        seed=SEED, n_boot=50, X_reference=X_train, artifact_size=12_345,
    )
    baseline = evaluate(
        _classifier_pipeline(DummyClassifier(strategy="prior")).fit(X_train, y[train]),
        X_test, y[test], task="binary", seed=SEED, n_boot=0,
        check_robustness=False, time_latency=False,
    )
    spec = _spec("binary", "churned", {"roc_auc": ">= 0.70", "accuracy": ">= 0.99"},
                 slices=["region"], fairness={"protected": ["sex"],
                                              "limits": {"disparate_impact_ratio": ">= 0.8"}})
    audit = AuditReport(
        data_version="sha256:abc123", rows=500, columns=6, source="data/train.csv",
        checks_run=("missing_values", "duplicates"),
        findings=(
            Finding("missing_values", "warn", ("b",), "12% of 'b' is missing",
                    {"share": 0.12}, "Impute 'b' or drop it."),
            Finding("class_balance", "info", (), "the positive class is 50%", {}, ""),
        ),
    ).to_dict()
    trials = [
        {"number": 0, "family": "linear", "params": {"C": 1.0}, "value": 0.81, "state": "complete",
         "seconds": 0.4},
        {"number": 1, "family": "lightgbm", "params": {"num_leaves": 31}, "value": 0.86,
         "state": "complete", "seconds": 1.2},
        {"number": 2, "family": "lightgbm", "params": {"num_leaves": 7}, "value": None,
         "state": "pruned", "seconds": 0.3},
        {"number": 3, "family": "linear", "params": {"C": 0.1}, "value": 0.83,
         "state": "complete", "seconds": 0.5},
    ]
    return ReportInput(
        version={"version": 3, "family": "linear", "task": "binary",
                 "created_at": "2024-05-01T10:00:00+00:00", "user": "ana",
                 "data_version": "sha256:abc123", "code_version": "git:1a2b3c",
                 "params": {"C": 1.0}, "status": "candidate", "primary": "roc_auc",
                 "test_fingerprint": "sha256:feed", "test_uses": 2, "max_test_uses": 5},
        evaluation=evaluation.to_dict(),
        baseline=baseline.to_dict(),
        audit=audit,
        split={"strategy": "stratified", "sizes": {"train": 300, "validation": 0, "test": 200},
               "class_balance": {"train": {"0": 0.48, "1": 0.52}, "test": {"0": 0.515, "1": 0.485}},
               "straddling_removed": 4, "dropped_for_gap": 0, "gap": None},
        search={"sampler": "tpe", "best_family": "lightgbm", "best_params": {"num_leaves": 31},
                "best_value": 0.86, "metric": "roc_auc", "trials": trials},
        learning_curve={
            "kind": "epoch", "metric": "log_loss", "steps": [1, 2, 3, 4, 5],
            "train": [0.6, 0.4, 0.3, 0.2, 0.1], "validation": [0.62, 0.5, 0.48, 0.55, 0.7],
            "diagnosis": {"verdict": "overfitting",
                          "evidence": "validation log_loss worsened from 0.48 to 0.7",
                          "action": "Regularise more or stop earlier."},
        },
        gates=[
            {"name": "acceptance", "passed": True, "message": "roc_auc holds", "evidence": {}},
            {"name": "latency", "passed": True, "message": "p99 under 50 ms",
             "evidence": {"p99_ms": 1.2}},
        ],
        acceptance=[c.to_dict() for c in check_acceptance(evaluation, spec["acceptance"])],
        fairness_criteria=[c.to_dict() for c in check_fairness(
            evaluation, spec["fairness"]["limits"])],
        spec=spec,
    )


@pytest.fixture(scope="session")
def regression_input() -> ReportInput:
    """A linear regression with its dummy baseline; no search, audit or split."""
    X, y = make_regression(n_samples=300, n_features=3, noise=10.0, random_state=SEED)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    X_train, X_test = frame.iloc[:200], frame.iloc[200:].reset_index(drop=True)
    model = LinearRegression().fit(X_train, y[:200])
    evaluation = evaluate(model, X_test, y[200:], task="regression", seed=SEED, n_boot=50,
                          X_reference=X_train, time_latency=False)
    baseline = evaluate(DummyRegressor().fit(X_train, y[:200]), X_test, y[200:],
                        task="regression", seed=SEED, n_boot=0, check_robustness=False,
                        time_latency=False)
    spec = _spec("regression", "price", {"rmse": "<= 15"})
    return ReportInput(
        version={"version": 1, "family": "linear", "task": "regression", "status": "candidate",
                 "primary": "rmse", "data_version": "sha256:def"},
        evaluation=evaluation.to_dict(),
        baseline=baseline.to_dict(),
        acceptance=[c.to_dict() for c in check_acceptance(evaluation, spec["acceptance"])],
        spec=spec,
    )
