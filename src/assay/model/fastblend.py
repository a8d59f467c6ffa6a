"""The fast path of an ensemble: each member compiled, their outputs averaged by weight.

An ensemble chosen by the search (:mod:`assay.train.ensemble`) is a weighted mean of
fitted pipelines: class probabilities for a classifier, values for a regressor.
:func:`compile_blend` compiles every member with a positive weight through
:func:`assay.model.fastpath.compile_fast` (each checks itself against its own
pipeline) and averages what they answer the way the ensemble does, then checks
the whole against the ensemble on probe rows. One member the fast path cannot
replay (a neural net, text) leaves the ensemble on its pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from assay.data.values import native
from assay.model.fastpath import (
    FastPathUnsupported,
    FastPredictor,
    check_answers,
    compile_fast,
    probe_rows,
)
from assay.model.validation import frame_records
from assay.train.ensemble import EnsembleClassifier, EnsembleRegressor

__all__ = ["BlendPredictor", "compile_blend"]


class BlendPredictor:
    """A fitted ensemble compiled to its members' fast paths.

    Attributes:
        features: the input columns.
        engine: ``blend``.
        classes: the ensemble's class labels (classification), else None.
        threshold: the binary decision threshold, else None (the most probable class).
        members: ``(weight, compiled member)`` pairs; the weights sum to one.
    """

    engine = "blend"

    def __init__(
        self,
        *,
        features: Sequence[str],
        members: Sequence[tuple[float, FastPredictor]],
        classes: np.ndarray | None,
        threshold: float | None,
    ) -> None:
        self.features = tuple(features)
        self.members = list(members)
        self.classes = classes
        self.threshold = threshold
        self._labels_native = [native(c) for c in classes] if classes is not None else []
        # for each member, the column of each ensemble class in its probabilities (-1: absent)
        self._columns: list[list[int]] = []
        if classes is not None:
            for _, member in self.members:
                own = [native(c) for c in np.asarray(member.classes)]
                self._columns.append([own.index(c) if c in own else -1 for c in self._labels_native])

    def score(self, records: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray | None]:
        """``(predict(X), predict_proba(X) or None)`` as the ensemble gives them."""
        n = len(records)
        if self.classes is None:
            total = np.zeros(n)
            for weight, member in self.members:
                values, _ = member.score(records)
                total += weight * np.asarray(values, dtype=float).reshape(n)
            return total, None
        proba = np.zeros((n, len(self.classes)))
        for (weight, member), columns in zip(self.members, self._columns, strict=True):
            _, own = member.score(records)
            assert own is not None  # a classifier's member has probabilities
            for j, col in enumerate(columns):
                if col >= 0:
                    proba[:, j] += weight * own[:, col]
        classes = np.asarray(self.classes)
        if self.threshold is not None and len(classes) == 2:
            labels = np.where(proba[:, 1] >= self.threshold, classes[1], classes[0])
        else:
            labels = classes[np.argmax(proba, axis=1)]
        return np.asarray(labels), proba

    def score_one(self, record: Mapping[str, Any]) -> tuple[Any, list[float] | None]:
        """One record: ``(label or value, class probabilities or None)`` as plain Python values."""
        if self.classes is None:
            total = 0.0
            for weight, member in self.members:
                value, _ = member.score_one(record)
                total += weight * float(value)
            return total, None
        proba = [0.0] * len(self._labels_native)
        for (weight, member), columns in zip(self.members, self._columns, strict=True):
            _, own = member.score_one(record)
            assert own is not None
            for j, col in enumerate(columns):
                if col >= 0:
                    proba[j] += weight * own[col]
        labels = self._labels_native
        if self.threshold is not None and len(labels) == 2:
            return (labels[1] if proba[1] >= self.threshold else labels[0]), proba
        return labels[max(range(len(proba)), key=proba.__getitem__)], proba


def compile_blend(
    model: EnsembleClassifier | EnsembleRegressor, features: Sequence[str], *, check: bool = True
) -> BlendPredictor:
    """Compile a fitted ensemble into a :class:`BlendPredictor`.

    Args:
        model: a fitted :class:`EnsembleClassifier` or :class:`EnsembleRegressor`.
        features: the model's input columns, in order.
        check: compare with the ensemble on probe rows; a difference above
            :data:`assay.model.fastpath.TOLERANCE` raises :class:`FastPathUnsupported`.

    Raises:
        FastPathUnsupported: the ensemble is not fitted, or a member has no fast path.
    """
    if not hasattr(model, "estimators_") or not hasattr(model, "weights_"):
        raise FastPathUnsupported("the ensemble is not fitted")
    members: list[tuple[float, FastPredictor]] = []
    for i, (weight, fitted) in enumerate(zip(model.weights_, model.estimators_, strict=True)):
        if weight <= 0:
            continue
        try:
            members.append((float(weight), compile_fast(fitted, features, check=check)))
        except FastPathUnsupported as exc:
            raise FastPathUnsupported(f"ensemble member {i}: {exc.reason}") from exc
    if not members:
        raise FastPathUnsupported("the ensemble has no weighted member")
    classes = None
    if isinstance(model, EnsembleClassifier):
        classes = np.asarray(model.classes_)
        if any(member.classes is None for _, member in members):
            raise FastPathUnsupported("an ensemble classifier with a member without classes")
    threshold = getattr(model, "threshold", None)
    predictor = BlendPredictor(
        features=features,
        members=members,
        classes=classes,
        threshold=float(threshold) if threshold is not None else None,
    )
    if check:
        _check_blend(predictor, model, features)
    return predictor


def _check_blend(predictor: BlendPredictor, model: Any, features: Sequence[str]) -> None:
    probe = probe_rows(features, [member for _, member in predictor.members])
    records = frame_records(probe, features)
    check_answers(predictor, model, probe, records)
