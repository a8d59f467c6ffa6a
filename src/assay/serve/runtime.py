"""The models being served: loaded, verified, and swapped without dropping a request.

A :class:`ModelRuntime` keeps one immutable :class:`Routing` snapshot (champion,
challenger, how the challenger meets traffic). A request reads the snapshot once
(a single attribute read) and uses it to the end, so a promotion or rollback in
the middle of a request never mixes two models. :meth:`ModelRuntime.refresh`
reads the registry's aliases and the active deployment, loads any new version
(its artifact hash verified) *before* building the next snapshot, and replaces
the snapshot with one assignment. A version that fails to load or verify never
becomes live: the previous one keeps serving and the reason is kept in
``last_error``; :attr:`ModelRuntime.degraded` then says that the registry's champion
is not the one served.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from assay.data.schema import ColumnSchema
from assay.errors import AssayError, DataError, NotFoundError, StoreError
from assay.serve.validation import RecordValidator, ValidatedBatch, build_frame, frame_records

if TYPE_CHECKING:
    from assay.registry import ModelRegistry
    from assay.serve.fastblend import BlendPredictor
    from assay.serve.fastpath import FastPredictor

__all__ = ["FAST_MAX_ROWS", "LoadedModel", "ModelRuntime", "Prediction", "Route", "Routing"]

logger = logging.getLogger("assay.serve")

#: frames up to this many rows are scored record by record on the fast path;
#: larger ones go through the (vectorised) pipeline
FAST_MAX_ROWS = 256
#: loaded versions kept in memory, so a rollback swaps back without reloading
CACHED_VERSIONS = 4
_CLASSIFICATION = frozenset({"binary", "multiclass", "text-classification"})

Route = Literal["champion", "canary"]


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
        model_classes = getattr(model, "classes_", None) if task in _CLASSIFICATION else None
        order = list(model_classes) if model_classes is not None else (self.classes or [])
        self._class_keys = [str(_native(c)) for c in order]
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
        schema = record.schema if isinstance(record.schema, Mapping) else {}
        columns = [ColumnSchema.from_dict(c) for c in schema.get("columns", [])]
        features = list(record.lineage.features or [c.name for c in columns])
        classes: list[Any] | None = None
        if record.task in _CLASSIFICATION:
            classes = list(record.lineage.classes)
            if not classes and getattr(model, "classes_", None) is not None:
                classes = [_native(c) for c in model.classes_]
        fast, reason = _compile(model, features)
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
        )

    def validate(self, records: Sequence[Any]) -> ValidatedBatch:
        """Check and coerce request records against this model's schema."""
        if self._validator is None:
            self._validator = RecordValidator(self.columns, self.features)
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
        return Prediction(_native(value), dict(zip(self._class_keys, probs)), max(probs))


def pipeline_scores(model: Any, frame: pd.DataFrame, *, classification: bool) -> tuple[Any, Any]:
    """``(predict, predict_proba or None)`` of a fitted model, preprocessing the frame once."""
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
    else:
        labels = final.predict(X)
    return labels, proba


def _compile(
    model: Any, features: Sequence[str]
) -> tuple[FastPredictor | BlendPredictor | None, str | None]:
    from assay.serve.fastblend import compile_blend
    from assay.serve.fastpath import FastPathUnsupported, compile_fast
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


def _native(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class Routing:
    """An immutable snapshot of what serves traffic; replaced whole, never edited.

    Attributes:
        champion: the model answering requests (None before the first promotion).
        challenger: the deployed challenger, or None.
        mode: ``shadow`` (scored and logged, never returned) or ``canary`` (answers
            a share of traffic); None without a challenger.
        share: the canary share of traffic answered by the challenger (0..1).
    """

    champion: LoadedModel | None
    challenger: LoadedModel | None
    mode: Literal["shadow", "canary"] | None
    share: float

    def to_dict(self) -> dict[str, Any]:
        """The versions and policy, JSON-serialisable."""
        return {
            "champion": self.champion.version if self.champion is not None else None,
            "challenger": self.challenger.version if self.challenger is not None else None,
            "mode": self.mode,
            "share": float(self.share),
        }

    def same_as(self, other: Routing) -> bool:
        """True when both snapshots serve the same objects with the same policy."""
        return (
            self.champion is other.champion
            and self.challenger is other.challenger
            and self.mode == other.mode
            and self.share == other.share
        )


_EMPTY = Routing(champion=None, challenger=None, mode=None, share=0.0)


class ModelRuntime:
    """Serves the registry's champion (and a deployed challenger), swapping them live.

    Args:
        registry: the project's registry.
        poll_seconds: how often the background thread calls :meth:`refresh`.
        seed: seed of the canary draws.

    Attributes:
        last_error: why the last refresh could not load something (None when all loaded);
            it names versions and reasons, never file paths.
        last_refresh: ``time.time()`` of the last completed refresh, or None.
        registry_champion: the champion alias read by the last refresh.
    """

    def __init__(
        self, registry: ModelRegistry, *, poll_seconds: float = 1.0, seed: int = 0
    ) -> None:
        self.registry = registry
        self.poll_seconds = float(poll_seconds)
        self.last_error: str | None = None
        self.last_refresh: float | None = None
        self.registry_champion: int | None = None
        self._routing = _EMPTY
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._cache: OrderedDict[int, LoadedModel] = OrderedDict()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def routing(self) -> Routing:
        """The current snapshot (a plain attribute read: no lock)."""
        return self._routing

    @property
    def ready(self) -> bool:
        """True when a verified champion is loaded."""
        return self._routing.champion is not None

    @property
    def degraded(self) -> str | None:
        """Why the served champion is not the registry's champion, or None when it is."""
        wanted = self.registry_champion
        served = self._routing.champion
        if wanted is None or served is None or served.version == wanted:
            return None
        reason = (
            f"the registry's champion is version {wanted} but version {served.version} is served"
        )
        return f"{reason} ({self.last_error})" if self.last_error else reason

    def refresh(self) -> bool:
        """Read the aliases and the active deployment; swap in what changed. True if swapped.

        New versions are loaded and verified before the swap; one that fails keeps
        the model it would have replaced serving, with the reason in ``last_error``.
        Registry read errors propagate (the background loop records them).
        """
        with self._refresh_lock:
            current = self._routing
            errors: list[str] = []
            champion_version = self.registry.alias("champion")
            challenger_version = self.registry.alias("challenger")
            self.registry_champion = champion_version
            champion = self._resolve(champion_version, current.champion, errors)
            challenger, mode, share = current.challenger, current.mode, current.share
            try:
                deployment = _active_deployment(self.registry)
            except Exception as exc:  # noqa: BLE001 - keep the current challenger policy
                errors.append(f"cannot read the active deployment: {exc}")
            else:
                challenger, mode, share = self._challenger(
                    deployment, champion_version, challenger_version, current, errors
                )
            new = Routing(champion=champion, challenger=challenger, mode=mode, share=share)
            self.last_error = "; ".join(errors) or None
            self.last_refresh = time.time()
            if new.same_as(current):
                return False
            self._routing = new  # the swap: one assignment
            logger.info("serving %s", new.to_dict())
            return True

    def _challenger(
        self,
        deployment: Any,
        champion_version: int | None,
        challenger_version: int | None,
        current: Routing,
        errors: list[str],
    ) -> tuple[LoadedModel | None, Literal["shadow", "canary"] | None, float]:
        if deployment is None:
            return None, None, 0.0
        version = int(deployment.version)
        # the deployment is live only while its version is still the challenger alias
        # (a promotion or rejection moves the alias; the deployment row may lag)
        if version != challenger_version or version == champion_version:
            return None, None, 0.0
        mode = deployment.mode if deployment.mode in ("shadow", "canary") else None
        if mode is None:
            errors.append(f"deployment {deployment.id} has an unknown mode {deployment.mode!r}")
            return current.challenger, current.mode, current.share
        previous = current.challenger
        if previous is not None and previous.version == version:
            loaded: LoadedModel | None = previous
        else:
            loaded = self._resolve(version, None, errors)
        if loaded is None:  # not loadable: whatever served keeps serving
            return current.challenger, current.mode, current.share
        share = min(max(float(deployment.share or 0.0), 0.0), 1.0)
        return loaded, mode, share

    def _resolve(
        self, version: int | None, current: LoadedModel | None, errors: list[str]
    ) -> LoadedModel | None:
        """The model for ``version``: the current one, a cached one, or freshly loaded.

        On a load failure the current model is returned (it keeps serving).
        """
        if version is None:
            return None
        if current is not None and current.version == version:
            return current
        cached = self._cache.get(version)
        if cached is not None:
            self._cache.move_to_end(version)
            return cached
        try:
            loaded = LoadedModel.load(self.registry, version)
        except Exception as exc:  # noqa: BLE001 - any failure keeps the old model serving
            errors.append(f"model version {version} was not loaded: {_reason(exc)}")
            logger.error("model version %s was not loaded: %s", version, exc)
            return current
        self._cache[version] = loaded
        while len(self._cache) > CACHED_VERSIONS:
            self._cache.popitem(last=False)
        return loaded

    def start(self) -> None:
        """Refresh once now, then every ``poll_seconds`` in a background thread."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._safe_refresh()
        self._thread = threading.Thread(target=self._loop, name="assay-model-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread (waits for a refresh in progress)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=self.poll_seconds + 30.0)

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self._safe_refresh()

    def _safe_refresh(self) -> None:
        try:
            self.refresh()
        except Exception as exc:  # noqa: BLE001 - a store hiccup must not kill the loop
            self.last_error = f"refresh failed: {_reason(exc)}"
            logger.error("refresh failed: %s: %s", type(exc).__name__, exc)

    def choose(self, routing: Routing) -> tuple[LoadedModel, Route, LoadedModel | None]:
        """Which model answers a request: ``(model, its route, model to shadow or None)``.

        In canary mode the challenger answers with probability ``share`` (a seeded
        draw); in shadow mode the champion answers and the challenger is scored
        beside it.

        Raises:
            NotFoundError: there is no champion to serve.
        """
        champion = routing.champion
        if champion is None:
            raise NotFoundError(
                "no model is being served: the project has no champion yet",
                where="model runtime",
                expected="a promoted model version",
                received=self.last_error or "no champion alias",
                fix="Promote a version with `assay promote VERSION` (or run `assay run`).",
            )
        challenger = routing.challenger
        if challenger is None:
            return champion, "champion", None
        if routing.mode == "canary":
            with self._rng_lock:
                draw = self._rng.random()
            if draw < routing.share:
                return challenger, "canary", None
            return champion, "champion", None
        if routing.mode == "shadow":
            return champion, "champion", challenger
        return champion, "champion", None

    def describe(self) -> dict[str, Any]:
        """What is served and the last refresh's outcome, JSON-serialisable (for health endpoints)."""
        routing = self._routing
        body = routing.to_dict()
        body.update(
            ready=routing.champion is not None,
            registry_champion=self.registry_champion,
            degraded=self.degraded,
            last_error=self.last_error,
            last_refresh=self.last_refresh,
            fast_path={
                role: {"fast": model.fast is not None, "reason": model.fast_reason}
                for role, model in (
                    ("champion", routing.champion),
                    ("challenger", routing.challenger),
                )
                if model is not None
            },
        )
        return body


def _reason(exc: Exception) -> str:
    """An error for health endpoints: an assay error without its ``where`` (which may be a file
    path); the log keeps the full text."""
    return exc.what if isinstance(exc, AssayError) else f"{type(exc).__name__}: {exc}"


def _active_deployment(registry: ModelRegistry) -> Any:
    """The active deployment, or None (also when the deployments module is not installed)."""
    try:
        from assay.serve.deployments import active_deployment
    except ImportError:
        return None
    return active_deployment(registry)
