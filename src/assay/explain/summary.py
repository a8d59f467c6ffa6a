"""The global explanation of a fitted model: what it leans on over a set of rows.

:func:`explain_model` explains at most :data:`MAX_ROWS` rows (a seeded sample of the
sealed test rows at registration): exact attributions where the model has a per-row
explainer (:mod:`assay.explain.explainers`), permutation importance otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.metrics import log_loss, mean_squared_error

from assay.data.values import native
from assay.explain.explainers import Attributions, NoExplainer, explainer_for
from assay.explain.result import Explanation, FeatureImportance

__all__ = [
    "MAX_ROWS",
    "PERMUTATION_REPEATS",
    "SAMPLE_ROWS",
    "explain_model",
    "rank_features",
]

#: rows explained at most (a seeded sample of larger sets)
MAX_ROWS = 500
#: rows whose values and attributions are kept for a beeswarm plot
SAMPLE_ROWS = 100
#: characters kept of a sampled text value (the beeswarm colours numbers only)
SAMPLE_TEXT = 80
#: shuffles per column for permutation importance
PERMUTATION_REPEATS = 3
_CLASSIFICATION = frozenset({"binary", "multiclass", "text-classification"})


def explain_model(
    model: Any,
    X: pd.DataFrame,
    y: pd.Series | np.ndarray | None,
    *,
    task: str,
    features: Sequence[str],
    background: pd.DataFrame | None = None,
    seed: int = 0,
    family: str = "",
    max_rows: int = MAX_ROWS,
) -> Explanation:
    """The global explanation of ``model`` on the rows of ``X``.

    Args:
        model: the fitted model (preprocessing + estimator).
        X: the rows to explain (the sealed test rows); sampled to ``max_rows`` with ``seed``.
        y: their labels (only permutation importance reads them).
        task: binary, multiclass, regression or text-classification.
        features: the model's input columns, in order.
        background: the reference rows of a linear model's mean (the training rows);
            sampled like ``X``. Defaults to ``X``.
        seed: the sample's seed.
        family: the family alias, named in notes.
        max_rows: most rows explained.

    Raises:
        NoExplainer: the model has no per-row explainer and ``y`` is None.
    """
    features = [str(f) for f in features]
    rows = _sample(X, max_rows, seed)
    reference = _sample(background, max_rows, seed) if background is not None else rows
    try:
        explainer = explainer_for(model, features, background=reference, family=family)
    except NoExplainer:
        if y is None:
            raise
        labels = y.loc[rows.index] if isinstance(y, pd.Series) else np.asarray(y)[_positions(X, rows)]
        return _permutation(model, rows, labels, task=task, features=features, seed=seed,
                            family=family)
    attributions = explainer.attributions(rows)
    offsets: tuple[tuple[float, ...], ...] = ()
    if explainer.method == "linear":
        offsets = tuple(tuple(float(v) for v in row) for row in getattr(explainer, "offsets"))
    return _from_attributions(attributions, rows, explainer.method, seed, offsets)


def rank_features(features: Sequence[str], importance: np.ndarray) -> tuple[FeatureImportance, ...]:
    """Every column with its importance, share and rank (ties keep the input order)."""
    values = np.nan_to_num(np.asarray(importance, dtype=float), nan=0.0)
    total = float(values.sum())
    order = sorted(range(len(features)), key=lambda i: -values[i])
    return tuple(
        FeatureImportance(features[i], float(values[i]),
                          float(values[i] / total) if total > 0 else 0.0, rank)
        for rank, i in enumerate(order, start=1)
    )


def _sample(X: pd.DataFrame, limit: int, seed: int) -> pd.DataFrame:
    if len(X) <= limit:
        return X
    rng = np.random.default_rng(seed)
    return X.iloc[np.sort(rng.choice(len(X), limit, replace=False))]


def _positions(X: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
    if len(rows) == len(X):
        return np.arange(len(X))
    return np.asarray(X.index.get_indexer(rows.index))


def _from_attributions(
    attributions: Attributions, rows: pd.DataFrame, method: Any, seed: int,
    offsets: tuple[tuple[float, ...], ...],
) -> Explanation:
    values = attributions.values
    importance = np.abs(values).mean(axis=0).sum(axis=1) if len(values) else np.zeros(values.shape[1])
    features = list(attributions.features)
    sample = rows.iloc[:SAMPLE_ROWS]
    sampled = values[: len(sample)]
    if values.shape[2] > 1:  # multiclass: towards each row's highest-scoring class
        chosen = np.argmax(attributions.totals[: len(sample)], axis=1)
        sampled = sampled[np.arange(len(sample)), :, chosen][:, :, None]
    multiclass = values.shape[2] > 1
    return Explanation(
        method=method,
        output=attributions.output,
        features=rank_features(features, importance),
        rows=len(rows),
        seed=seed,
        classes=tuple(native(c) for c in attributions.classes) if multiclass else (),
        base_values=tuple(float(b) for b in attributions.base),
        offsets=offsets,
        sample_features=tuple(features),
        sample_values=tuple(tuple(_shown(v) for v in row)
                            for row in sample[features].itertuples(index=False, name=None)),
        sample_attributions=tuple(tuple(float(v) for v in row[:, 0]) for row in sampled),
    )


def _shown(value: Any) -> Any:
    """A sampled raw value as stored: JSON-native, missing as None, long texts cut."""
    value = native(value, missing_as_none=True, iso_timestamps=True)
    if isinstance(value, str) and len(value) > SAMPLE_TEXT:
        return value[: SAMPLE_TEXT - 3] + "..."
    return value


def _permutation(
    model: Any, rows: pd.DataFrame, y: Any, *, task: str, features: list[str], seed: int,
    family: str,
) -> Explanation:
    """Permutation importance on the raw columns: the loss increase when one is shuffled."""
    X = rows[features]
    classification = task in _CLASSIFICATION
    if classification:
        classes = list(getattr(model, "classes_", []))

        def scorer(estimator: Any, Xs: Any, ys: Any) -> float:
            return -float(log_loss(ys, estimator.predict_proba(Xs), labels=classes))
    else:

        def scorer(estimator: Any, Xs: Any, ys: Any) -> float:
            return -float(mean_squared_error(ys, estimator.predict(Xs)))

    result = permutation_importance(model, X, y, scoring=scorer, n_repeats=PERMUTATION_REPEATS,
                                    random_state=seed, n_jobs=1)
    importance = np.clip(np.asarray(result.importances_mean, dtype=float), 0.0, None)
    loss = "log loss" if classification else "squared error"
    name = f"the {family} family" if family else "this model"
    return Explanation(
        method="permutation",
        output="loss_increase",
        features=rank_features(features, importance),
        rows=len(rows),
        seed=seed,
        sample_features=tuple(features),
        note=f"{name} has no exact per-row explainer: the importance of a column is the "
        f"increase of the {loss} when its values are shuffled ({PERMUTATION_REPEATS} "
        "shuffles); there are no per-row contributions.",
    )
