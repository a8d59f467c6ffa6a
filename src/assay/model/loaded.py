"""A registered model version loaded for scoring: verified, validated, fast when it can be.

:meth:`LoadedModel.load` reads a version from the registry (its artifact hash verified
before anything is unpickled), compiles a fast path when the model has one, and
scores frames or validated records into :class:`Prediction` answers. The server, the
monitor and batch scoring all load and score models through this module.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from assay.data.schema import ColumnSchema
from assay.data.values import native
from assay.errors import DataError, NotFoundError, StoreError
from assay.model.validation import RecordValidator, ValidatedBatch, build_frame, frame_records

if TYPE_CHECKING:
    from assay.model.fastblend import BlendPredictor
    from assay.model.fastpath import FastPredictor
    from assay.registry import ModelRegistry, ModelVersion

__all__ = [
    "FAST_MAX_ROWS",
    "LoadedModel",
    "compile_fast_path",
    "Prediction",
    "declared_columns",
    "final_estimator",
    "model_columns",
    "pipeline_scores",
    "prefers_batches",
]

logger = logging.getLogger("assay.model")

#: frames up to this many rows are scored record by record on the fast path;
#: larger ones go through the (vectorised) pipeline
FAST_MAX_ROWS = 256
_CLASSIFICATION = frozenset({"binary", "multiclass", "text-classification"})


def model_columns(record: ModelVersion) -> tuple[list[str], list[ColumnSchema]]:
    """The input features of a registered version and their training schema, in order.

    The features are the lineage's (what the model was fitted on); a version
    registered without them falls back on its schema's columns.
    """
    schema = record.schema if isinstance(record.schema, Mapping) else {}
    columns = [ColumnSchema.from_dict(c) for c in schema.get("columns", [])]
    features = list(record.lineage.features or [c.name for c in columns])
    by_name = {c.name: c for c in columns}
    return features, [by_name[f] for f in features if f in by_name]


def declared_columns(record: ModelVersion) -> tuple[str, ...]:
    """The columns the version's framing gives another role than a feature: ``data.id``,
    ``data.time``, ``data.group``, ``data.drop`` and the target (read from the assay.yaml
    the version was trained with, and its lineage). A served record may carry them: they
    are passed through, not flagged (:class:`~assay.model.validation.RecordValidator`)."""
    config: Mapping[str, Any] = record.config if isinstance(record.config, Mapping) else {}
    section = config.get("data")
    data: Mapping[str, Any] = section if isinstance(section, Mapping) else {}
    names: list[Any] = [data.get("id"), data.get("time"), data.get("group"), data.get("target"),
                        record.lineage.target]
    dropped = data.get("drop")
    if isinstance(dropped, (list, tuple)):
        names.extend(dropped)
    features = set(record.lineage.features or ())
    return tuple(dict.fromkeys(
        str(n) for n in names if isinstance(n, str) and n and n not in features
    ))


@dataclass(frozen=True)
class Prediction:
    """One answer.

    Attributes:
        prediction: the class label (JSON-native str/int/bool) or the predicted value.
        probabilities: class label (as a string) -> probability (classification).
        confidence: the largest class probability (classification), else None.
    """

    prediction: Any
    probabilities: dict[str, float] | None
    confidence: float | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "prediction": self.prediction,
            "probabilities": dict(self.probabilities) if self.probabilities is not None else None,
            "confidence": self.confidence,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Prediction:
        """The inverse of :meth:`to_dict`."""
        probs = data.get("probabilities")
        confidence = data.get("confidence")
        return cls(
            prediction=data["prediction"],
            probabilities={str(k): float(v) for k, v in probs.items()}
            if probs is not None
            else None,
            confidence=float(confidence) if confidence is not None else None,
        )


class LoadedModel:
    """A registered model version in memory, verified, ready to score.

    Attributes:
        version: the registry version number.
        task: binary, multiclass, regression or text-classification.
        features: the input columns, in order.
        classes: the class labels (classification), else None.
        columns: the schema of each input column, in ``features`` order.
        model: the fitted pipeline (the reference implementation).
        fast: the compiled fast path, or None when the model has none.
        fast_reason: why there is no fast path (None when there is one).
        family: the model family alias.
        digest: the verified artifact digest.
        text_column: the free text a text-classification model reads (its values must be
            non-empty strings), else None.
        prefers_batches: the final estimator declares ``prefers_batches_ = True``: one call
            costs much more than one row (a transformer), so the server gathers concurrent
            requests into one call (:mod:`assay.serve.gather`).
        passthrough: the declared non-feature columns a record may carry without a flag
            (:func:`declared_columns`).
    """

    def __init__(
        self,
        *,
        version: int,
        task: str,
        features: Sequence[str],
        classes: Sequence[Any] | None,
        columns: Sequence[ColumnSchema],
        model: Any,
        family: str = "",
        digest: str = "",
        fast: FastPredictor | BlendPredictor | None = None,
        fast_reason: str | None = None,
        text_column: str | None = None,
        passthrough: Sequence[str] = (),
    ) -> None:
        self.version = int(version)
        self.task = task
        self.features: list[str] = list(features)
        self.classes: list[Any] | None = list(classes) if classes is not None else None
        by_name = {c.name: c for c in columns}
        self.columns: list[ColumnSchema] = [by_name[f] for f in self.features if f in by_name]
        self.model = model
        self.family = family
        self.digest = digest
        self.fast = fast
        self.fast_reason = fast_reason
        self.text_column = text_column if text_column in self.features else None
        self.passthrough: tuple[str, ...] = tuple(p for p in passthrough if p not in self.features)
        self.prefers_batches = prefers_batches(model)
        model_classes = getattr(model, "classes_", None) if task in _CLASSIFICATION else None
        order = list(model_classes) if model_classes is not None else (self.classes or [])
        self._class_keys = [str(native(c)) for c in order]
        self._validator: RecordValidator | None = None

    def __repr__(self) -> str:
        path = "fast" if self.fast is not None else "pipeline"
        return f"LoadedModel(version={self.version}, task={self.task!r}, {path})"

    @property
    def is_classifier(self) -> bool:
        """True for a classification task."""
        return self.task in _CLASSIFICATION

    @classmethod
    def load(cls, registry: ModelRegistry, version: int) -> LoadedModel:
        """Load ``version`` from the registry, its artifact verified against the recorded hash.

        Raises:
            NotFoundError: the version (or its artifact file) does not exist.
            IntegrityError: the artifact is unsigned, signed with another key, or does
                not match its hash (nothing is unpickled then).
            StoreError: the verified artifact cannot be unpickled.
        """
        record = registry.get(version)
        try:
            model = registry.load_model(version)
        except (StoreError, NotFoundError):
            raise
        except Exception as exc:  # unpickling fails in many ways (missing class, version skew)
            raise StoreError(
                f"model version {version} cannot be loaded: {type(exc).__name__}: {exc}",
                where=f"model version {version}",
                expected="a model pickled by this version of assay and its libraries",
                fix="Re-register the model with the installed library versions.",
            ) from exc
        features, columns = model_columns(record)
        classes: list[Any] | None = None
        if record.task in _CLASSIFICATION:
            classes = list(record.lineage.classes or [])
            if not classes and getattr(model, "classes_", None) is not None:
                classes = [native(c) for c in model.classes_]
        fast, reason = compile_fast_path(model, features)
        text_column = record.lineage.text_column if record.task == "text-classification" else None
        return cls(
            version=record.version,
            task=record.task,
            features=features,
            classes=classes,
            columns=columns,
            model=model,
            family=record.family,
            digest=record.artifact_digest,
            fast=fast,
            fast_reason=reason,
            text_column=text_column,
            passthrough=declared_columns(record),
        )

    def validate(self, records: Sequence[Any]) -> ValidatedBatch:
        """Check and coerce request records against this model's schema."""
        if self._validator is None:
            self._validator = RecordValidator(self.columns, self.features,
                                              text_column=self.text_column,
                                              passthrough=self.passthrough)
        return self._validator.validate(records)

    def predict(
        self, data: pd.DataFrame | ValidatedBatch | Sequence[Mapping[str, Any]]
    ) -> list[Prediction]:
        """Score any number of rows; the fast path when the model has one.

        Args:
            data: a frame holding the feature columns, a :class:`ValidatedBatch`
                (fastest: its coerced records skip building a frame), or a list of
                records (feature name -> value, already validated).
        """
        if isinstance(data, ValidatedBatch):
            if data.records:
                return self._predict_records(data.records)
            return self._predict_frame(data.frame)
        if isinstance(data, pd.DataFrame):
            return self._predict_frame(data)
        return self._predict_records(list(data))

    def _predict_records(self, records: Sequence[Mapping[str, Any]]) -> list[Prediction]:
        if not records:
            return []
        if self.fast is None:
            return self._predict_pipeline(build_frame(records, self.columns))
        if len(records) == 1:
            value, probs = self.fast.score_one(records[0])
            return [self._prediction(value, probs)]
        labels, proba = self.fast.score(records)
        return self._from_arrays(labels, proba)

    def _predict_frame(self, frame: pd.DataFrame) -> list[Prediction]:
        absent = [f for f in self.features if f not in frame.columns]
        if absent:
            raise DataError(
                "the frame to score lacks feature columns of the model",
                column=absent[0],
                expected="columns: " + ", ".join(self.features[:20]),
                received="missing: " + ", ".join(absent[:20]),
                fix=f"Add the missing columns (model version {self.version}).",
            )
        if len(frame) == 0:
            return []
        if self.fast is not None and len(frame) <= FAST_MAX_ROWS:
            return self._predict_records(frame_records(frame, self.features))
        return self._predict_pipeline(frame[self.features])

    def _predict_pipeline(self, frame: pd.DataFrame) -> list[Prediction]:
        labels, proba = pipeline_scores(self.model, frame, classification=self.is_classifier)
        return self._from_arrays(labels, proba)

    def _from_arrays(self, labels: Any, proba: Any) -> list[Prediction]:
        values = labels.tolist()
        if proba is None:
            return [Prediction(float(v), None, None) for v in values]
        return [self._prediction(v, row) for v, row in zip(values, proba.tolist())]

    def _prediction(self, value: Any, probs: list[float] | None) -> Prediction:
        if probs is None:
            return Prediction(float(value), None, None)
        return Prediction(native(value), dict(zip(self._class_keys, probs)), max(probs))


def final_estimator(model: Any) -> Any:
    """The estimator that scores a fitted model's rows: the last step of its pipeline, inside
    a :class:`~assay.train.objective.ThresholdedClassifier` when it has one."""
    from sklearn.pipeline import Pipeline

    from assay.train.objective import ThresholdedClassifier

    inner = model.estimator_ if isinstance(model, ThresholdedClassifier) else model
    if isinstance(inner, Pipeline) and inner.steps:
        return inner.steps[-1][1]
    return inner


def prefers_batches(model: Any) -> bool:
    """Whether ``model``'s final estimator declares ``prefers_batches_ = True``: a call costs
    far more than a row, so many rows per call are much cheaper than one."""
    return getattr(final_estimator(model), "prefers_batches_", False) is True


def pipeline_scores(model: Any, frame: pd.DataFrame, *, classification: bool) -> tuple[Any, Any]:
    """``(predict, predict_proba or None)`` of a fitted model, preprocessing the frame once.

    A final estimator that prefers batches is called once: its label is the most probable
    class, read from ``predict_proba`` (a second ``predict`` call would run it twice).
    """
    from sklearn.pipeline import Pipeline

    from assay.train.objective import ThresholdedClassifier

    threshold: float | None = None
    classes = getattr(model, "classes_", None)
    inner = model
    if isinstance(model, ThresholdedClassifier):
        threshold, inner = float(model.threshold_), model.estimator_
    if isinstance(inner, Pipeline) and len(inner.steps) > 1:
        X = Pipeline(inner.steps[:-1]).transform(frame)
        final = inner.steps[-1][1]
    else:
        X, final = frame, inner
    if not classification:
        return final.predict(X), None
    proba = final.predict_proba(X)
    if threshold is not None and classes is not None:
        # ThresholdedClassifier.predict: the positive class where its probability reaches the threshold
        labels = np.where(proba[:, 1] >= threshold, classes[1], classes[0])
    elif getattr(final, "prefers_batches_", False) is True:
        labels = np.asarray(final.classes_)[np.argmax(proba, axis=1)]
    else:
        labels = final.predict(X)
    return labels, proba


def compile_fast_path(
    model: Any, features: Sequence[str]
) -> tuple[FastPredictor | BlendPredictor | None, str | None]:
    """The fast path of a fitted model and ``None``, or ``None`` and why it has none."""
    from assay.model.fastblend import compile_blend
    from assay.model.fastpath import FastPathUnsupported, compile_fast
    from assay.train.ensemble import EnsembleClassifier, EnsembleRegressor

    try:
        if isinstance(model, (EnsembleClassifier, EnsembleRegressor)):
            return compile_blend(model, features), None
        return compile_fast(model, features), None
    except FastPathUnsupported as exc:
        return None, exc.reason
    except Exception as exc:  # noqa: BLE001 - the pipeline still serves; say why
        logger.warning("fast path compilation failed: %s: %s", type(exc).__name__, exc)
        return None, f"compilation failed: {type(exc).__name__}: {exc}"


