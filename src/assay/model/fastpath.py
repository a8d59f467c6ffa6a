"""The fast path: score one record without the scikit-learn machinery.

A single row through a fitted pipeline spends a millisecond or more in Python
bookkeeping around microseconds of arithmetic. :func:`compile_fast` reads a fitted
assay model (a ModelPipeline, possibly in a ThresholdedClassifier) once and replays
its preprocessing on plain values: imputation and missing indicators, scaling,
one-hot / ordinal maps (read off the encoder by probing it with every known level
and an unseen one), booleans and datetime parts. The row then goes to LightGBM's
single-row predictor or through the linear model's coefficients. Anything else
(text, neural nets, unknown steps) raises :class:`FastPathUnsupported`: the caller
keeps the pipeline. A compiled predictor checks itself against the pipeline on
probe rows (missing values, unseen levels, edge dates) and refuses to exist if
any output differs by more than :data:`TOLERANCE`.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import HuberRegressor, LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.utils.extmath import softmax

from assay.data.values import native
from assay.model.validation import frame_records
from assay.train.objective import ThresholdedClassifier
from assay.train.preprocess import (
    MISSING_CATEGORY,
    BooleanEncoder,
    CategoryStrings,
    DatetimeExpander,
    NumericCoercer,
    _boolean_value,
    _category_string,
)

__all__ = [
    "Engine",
    "FastPathUnsupported",
    "FastPredictor",
    "check_answers",
    "compile_fast",
    "probe_rows",
]

Engine = Literal["lightgbm", "linear", "constant"]

#: the largest difference from the pipeline a compiled predictor may show on its probes
TOLERANCE = 1e-9
_UTC = UTC
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_NAN = float("nan")
_UNSEEN = "\x00assay-unseen-level\x00"


class FastPathUnsupported(Exception):
    """The model has a part the fast path does not replay; score it with the pipeline.

    Attributes:
        reason: what was not supported, in words.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _number(value: Any) -> float:
    if value is None:
        return _NAN
    if isinstance(value, float):
        return value
    if isinstance(value, (bool, int, np.integer, np.floating, np.bool_)):
        return float(value)
    if isinstance(value, str) and "_" not in value:  # pandas reads no digit separators
        try:
            return float(value.strip())
        except ValueError:
            return _NAN
    return _NAN


def _boolean(value: Any) -> float:
    if _missing(value):
        return _NAN
    return float(_boolean_value(value))


def _stamp(value: Any) -> datetime | None:
    """A value as an aware UTC datetime (naive = UTC), or None when missing or unreadable."""
    if _missing(value):
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            pass
    if not isinstance(value, datetime):
        try:
            value = pd.Timestamp(value)
        except (ValueError, TypeError):
            return None
        if value is pd.NaT:
            return None
    stamp: datetime = value
    return stamp.replace(tzinfo=_UTC) if stamp.tzinfo is None else stamp.astimezone(_UTC)


def _date_parts(value: Any) -> list[float]:
    stamp = _stamp(value)
    if stamp is None:
        return [_NAN, _NAN, _NAN, _NAN]
    return [float(stamp.year), float(stamp.month), float(stamp.weekday()), float(stamp.hour)]


def _date_epoch(value: Any) -> list[float]:
    stamp = _stamp(value)
    if stamp is None:
        return [_NAN]
    if isinstance(stamp, pd.Timestamp):
        return [stamp.value / 1e9]
    delta = stamp - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return [micros / 1e6]


def _category(value: Any) -> str:
    return MISSING_CATEGORY if _missing(value) else _category_string(value)


_Cell = tuple[int, int, bool, float, float, float]  # out, raw, indicator?, fill, mean, scale
_Levels = tuple[str, int, int, dict[str, list[float]], list[float]]  # col, start, stop, map, unseen


class _Affine(NamedTuple):
    """A numeric-like branch: per-column raw floats -> imputation (+ indicators) -> scaling."""

    inputs: list[tuple[str, Any, int]]  # (column, converter to a float or floats, width)
    cells: list[_Cell]


class _Categorical(NamedTuple):
    """A categorical branch: per column, level string -> the encoder's output block."""

    columns: list[_Levels]


class _SingleRow:
    """LightGBM's single-row prediction C API: the booster's per-call setup done once.

    ``Booster.predict`` rebuilds its prediction configuration on every call, which
    costs more than walking the trees of one row; ``PredictForMatSingleRowFast``
    keeps it in a handle made at compile time.
    """

    def __init__(self, booster: lgb.Booster, iterations: int, ncol: int) -> None:
        from lightgbm.basic import _LIB, _c_str, _safe_call  # type: ignore[attr-defined]

        self._lib = _LIB
        self._booster = booster  # the handle below borrows the booster's model
        self._row_type = ctypes.c_double * ncol
        self._out_type = ctypes.c_double * int(booster.num_model_per_iteration())
        self._lock = threading.Lock()
        handle = ctypes.c_void_p()
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(0),  # C_API_PREDICT_NORMAL
                ctypes.c_int(0),
                ctypes.c_int(iterations),
                ctypes.c_int(1),  # C_API_DTYPE_FLOAT64
                ctypes.c_int32(ncol),
                _c_str("num_threads=1"),
                ctypes.byref(handle),
            )
        )
        self._handle: ctypes.c_void_p | None = handle

    def predict(self, row: list[float]) -> list[float]:
        """The booster's output for one row (one value, or one per class)."""
        data = self._row_type(*row)
        out = self._out_type()
        length = ctypes.c_int64(0)
        with self._lock:
            code = self._lib.LGBM_BoosterPredictForMatSingleRowFast(
                self._handle, data, ctypes.byref(length), out
            )
        if code != 0:
            raise lgb.basic.LightGBMError(self._lib.LGBM_GetLastError().decode("utf-8"))
        return list(out)

    def __del__(self) -> None:
        handle, self._handle = getattr(self, "_handle", None), None
        if handle is not None and handle.value:
            with contextlib.suppress(Exception):  # the library may be gone at interpreter exit
                self._lib.LGBM_FastConfigFree(handle)


class FastPredictor:
    """A fitted assay model compiled to plain arithmetic on one record at a time.

    Build it with :func:`compile_fast`. Records are mappings from feature name to
    value (validated records, or raw JSON-like values: they are read the way the
    pipeline reads them). ``score`` returns what ``pipeline.predict`` and
    ``pipeline.predict_proba`` would.

    Attributes:
        features: the input columns.
        engine: ``lightgbm``, ``linear`` or ``constant`` (a baseline that ignores inputs).
        classes: the class labels (classification) in probability-column order, else None.
        threshold: the decision threshold of a thresholded binary classifier, else None.
        width: the length of the model's input row.
    """

    def __init__(
        self,
        *,
        features: Sequence[str],
        engine: Engine,
        classes: np.ndarray | None,
        threshold: float | None,
        width: int,
        affine: list[_Affine],
        categorical: list[_Categorical],
        final: Any,
        constant: tuple[np.ndarray, np.ndarray | None] | None = None,
    ) -> None:
        self.features = tuple(features)
        self.engine: Engine = engine
        self.classes = classes
        self.threshold = threshold
        self.width = width
        self._affine = affine
        self._categorical = categorical
        self._constant = constant
        self._labels_native = [native(c) for c in classes] if classes is not None else []
        self._booster: lgb.Booster | None = None
        self._single: _SingleRow | None = None
        self._iterations = -1
        self._coef = np.zeros(0)
        self._intercept: Any = 0.0
        self._binary_linear = False
        if engine == "lightgbm":
            self._booster = final.booster_
            best = int(getattr(self._booster, "best_iteration", 0) or 0)
            self._iterations = best if best > 0 else -1
            try:
                self._single = _SingleRow(final.booster_, self._iterations, width)
            except Exception:  # noqa: BLE001 - without the C entry point, Booster.predict serves
                self._single = None
        elif engine == "linear":
            coef = np.asarray(final.coef_, dtype=float)
            self._coef = coef.T if coef.ndim == 2 else coef
            self._intercept = final.intercept_
            self._binary_linear = classes is not None and coef.ndim == 2 and coef.shape[0] == 1

    def transform(self, record: Mapping[str, Any]) -> list[float]:
        """The model's input row for ``record`` (what the fitted preprocessing would output)."""
        out = [0.0] * self.width
        get = record.get
        for branch in self._affine:
            raw: list[float] = []
            for name, convert, width in branch.inputs:
                if width == 1:
                    raw.append(convert(get(name)))
                else:
                    raw.extend(convert(get(name)))
            for o, p, indicator, fill, mean, scale in branch.cells:
                x = raw[p]
                missing = x != x  # noqa: PLR0124 - NaN test without a function call
                v = (1.0 if missing else 0.0) if indicator else (fill if missing else x)
                out[o] = (v - mean) / scale
        for cat in self._categorical:
            for name, start, stop, table, unseen in cat.columns:
                out[start:stop] = table.get(_category(get(name)), unseen)
        return out

    def transform_many(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The model's input matrix (one row per record)."""
        rows = [self.transform(r) for r in records]
        return np.array(rows, dtype=float).reshape(len(records), self.width)

    def score(self, records: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray | None]:
        """``(predict(X), predict_proba(X) or None)`` as the pipeline gives them."""
        n = len(records)
        if self._constant is not None:
            labels, proba = self._constant
            return np.repeat(labels, n), None if proba is None else np.repeat(proba, n, axis=0)
        X = self.transform_many(records)
        if self._booster is not None:
            raw = np.asarray(
                self._booster.predict(X, num_threads=1, num_iteration=self._iterations)
            )
            if self.classes is None:
                return raw.astype(float), None
            proba = np.vstack((1.0 - raw, raw)).transpose() if raw.ndim == 1 else raw
            return self._labels(proba, None), proba
        decision = np.asarray(X @ self._coef + self._intercept, dtype=float)
        if self.classes is None:
            return decision.reshape(n), None
        if self._binary_linear:
            d = decision.reshape(n)
            p = expit(d)
            proba = np.stack([1 - p, p], axis=1)
            return self._labels(proba, d), proba
        proba = softmax(decision.copy(), copy=False)
        return self._labels(proba, decision), proba

    def score_one(self, record: Mapping[str, Any]) -> tuple[Any, list[float] | None]:
        """One record: ``(label or value, class probabilities or None)`` as plain Python values.

        The same answer as :meth:`score` (to rounding), without NumPy's per-call cost.
        """
        if self._constant is not None or (self._booster is not None and self._single is None):
            labels, probs = self.score([record])
            return native(labels[0]), None if probs is None else probs[0].tolist()
        row = self.transform(record)
        if self._single is not None:
            out = self._single.predict(row)
            if self.classes is None:
                return out[0], None
            proba = [1.0 - out[0], out[0]] if len(out) == 1 else out
            return self._label_one(proba, None), proba
        decision = np.atleast_1d(np.asarray(np.array(row) @ self._coef + self._intercept)).tolist()
        if self.classes is None:
            return float(decision[0]), None
        if self._binary_linear:
            p = float(expit(decision[0]))
            proba = [1 - p, p]
        else:
            proba = softmax(np.array([decision], dtype=float), copy=False)[0].tolist()
        return self._label_one(proba, decision), proba

    def _labels(self, proba: np.ndarray, decision: np.ndarray | None) -> np.ndarray:
        classes = np.asarray(self.classes)
        if self.threshold is not None:
            return np.asarray(np.where(proba[:, 1] >= self.threshold, classes[1], classes[0]))
        if decision is not None and decision.ndim == 1:
            # a linear binary classifier decides on the sign of its decision function
            return np.asarray(classes[(decision > 0).astype(int)])
        return np.asarray(classes[np.argmax(proba if decision is None else decision, axis=1)])

    def _label_one(self, proba: list[float], decision: list[float] | None) -> Any:
        labels = self._labels_native
        if self.threshold is not None:
            return labels[1] if proba[1] >= self.threshold else labels[0]
        if decision is not None and len(decision) == 1:
            return labels[1] if decision[0] > 0 else labels[0]
        scores = decision if decision is not None else proba
        return labels[max(range(len(scores)), key=scores.__getitem__)]


def compile_fast(model: Any, features: Sequence[str], *, check: bool = True) -> FastPredictor:
    """Compile a fitted assay model into a :class:`FastPredictor`.

    Args:
        model: a fitted ModelPipeline (or a ThresholdedClassifier around one).
        features: the model's input columns, in order.
        check: compare with the pipeline on probe rows (and warm it up); a
            difference above :data:`TOLERANCE` raises :class:`FastPathUnsupported`.

    Raises:
        FastPathUnsupported: a part of the model is not replayed; use the pipeline.
    """
    threshold: float | None = None
    inner = model
    if isinstance(model, ThresholdedClassifier):
        if not hasattr(model, "estimator_"):
            raise FastPathUnsupported("the thresholded classifier is not fitted")
        threshold = float(model.threshold_)
        inner = model.estimator_
    if not isinstance(inner, Pipeline):
        raise FastPathUnsupported(f"a {type(inner).__name__} is not a pipeline")
    steps = [step for _, step in inner.steps if step not in (None, "passthrough")]
    final = steps[-1]
    head = steps[:-1]
    if len(head) > 1 or (head and not isinstance(head[0], ColumnTransformer)):
        raise FastPathUnsupported(
            "the pipeline has preprocessing steps other than one ColumnTransformer"
        )
    classes = getattr(model, "classes_", None)
    classes = np.asarray(classes) if classes is not None else None
    engine: Engine = "constant"
    constant: tuple[np.ndarray, np.ndarray | None] | None = None
    affine: list[_Affine] = []
    categorical: list[_Categorical] = []
    width = 0
    if isinstance(final, (DummyClassifier, DummyRegressor)):
        probe = _probe_frame(features, [], []).iloc[:1]
        proba = np.asarray(model.predict_proba(probe)) if classes is not None else None
        constant = (np.asarray(model.predict(probe)), proba)
    elif not head:
        raise FastPathUnsupported("the model has no fitted preprocessing")
    else:
        engine = _engine(final, classification=classes is not None)
        affine, categorical, width = _compile_columns(head[0])
    predictor = FastPredictor(
        features=features,
        engine=engine,
        classes=classes,
        threshold=threshold,
        width=width,
        affine=affine,
        categorical=categorical,
        final=final,
        constant=constant,
    )
    if check and head:
        _self_check(predictor, model, head[0], features)
    return predictor


def _engine(final: Any, *, classification: bool) -> Engine:
    if isinstance(final, (lgb.LGBMClassifier, lgb.LGBMRegressor)):
        if callable(getattr(final, "objective", None)) or callable(
            getattr(final, "_objective", None)
        ):
            raise FastPathUnsupported("a LightGBM model with a custom objective")
        return "lightgbm"
    if isinstance(final, (LogisticRegression, Ridge, HuberRegressor, LinearRegression)):
        if np.ndim(final.coef_) == 2 and not classification:
            raise FastPathUnsupported("a multi-output linear regression")
        return "linear"
    raise FastPathUnsupported(f"the final model {type(final).__name__} has no fast path")


def _compile_columns(ct: ColumnTransformer) -> tuple[list[_Affine], list[_Categorical], int]:
    if not hasattr(ct, "transformers_"):
        raise FastPathUnsupported("the ColumnTransformer is not fitted")
    width = int(sum(s.stop - s.start for s in ct.output_indices_.values()))
    affine: list[_Affine] = []
    categorical: list[_Categorical] = []
    for name, transformer, columns in ct.transformers_:
        out = ct.output_indices_.get(name, slice(0, 0))
        if transformer == "drop" or out.stop == out.start:
            continue
        if transformer == "passthrough" or not isinstance(transformer, Pipeline):
            raise FastPathUnsupported(f"the column branch '{name}' is not a pipeline")
        cols = [str(c) for c in (columns if isinstance(columns, (list, tuple)) else [columns])]
        steps = [s for _, s in transformer.steps]
        first = steps[0]
        if type(first) is CategoryStrings and len(steps) == 2:
            categorical.append(_compile_categorical(name, cols, steps[1], out.start, out.stop))
            continue
        convert: Callable[[Any], Any]
        if type(first) is NumericCoercer:
            convert, each = _number, 1
        elif type(first) is BooleanEncoder:
            convert, each = _boolean, 1
        elif type(first) is DatetimeExpander:
            if first.mode == "parts":
                convert, each = _date_parts, 4
            elif first.mode == "epoch":
                convert, each = _date_epoch, 1
            else:
                raise FastPathUnsupported(f"datetime mode {first.mode!r}")
        else:
            raise FastPathUnsupported(
                f"the column branch '{name}' starts with {type(first).__name__}"
            )
        affine.append(_compile_affine(name, cols, convert, each, steps[1:], out.start, out.stop))
    return affine, categorical, width


def _compile_affine(
    name: str, cols: list[str], convert: Any, each: int, steps: list[Any], start: int, stop: int
) -> _Affine:
    n_raw = len(cols) * each
    fills = [_NAN] * n_raw
    keep = list(range(n_raw))
    indicators: list[int] = []
    rest = list(steps)
    if rest and isinstance(rest[0], SimpleImputer):
        imputer = rest.pop(0)
        missing = imputer.missing_values
        if not (isinstance(missing, float) and math.isnan(missing)):
            raise FastPathUnsupported(f"branch '{name}': an imputer of values other than NaN")
        stats = np.asarray(imputer.statistics_, dtype=float)
        if imputer.keep_empty_features and np.isnan(stats).any():
            raise FastPathUnsupported(f"branch '{name}': an imputer keeping empty features")
        fills = [float(s) for s in stats]
        keep = [i for i in range(n_raw) if not math.isnan(fills[i])]
        if getattr(imputer, "indicator_", None) is not None:
            indicators = [int(i) for i in imputer.indicator_.features_]
    means = [0.0] * (len(keep) + len(indicators))
    scales = [1.0] * len(means)
    if rest and isinstance(rest[0], StandardScaler):
        scaler = rest.pop(0)
        if scaler.with_mean:
            means = [float(m) for m in scaler.mean_]
        if scaler.with_std:
            scales = [float(s) for s in scaler.scale_]
    if rest:
        raise FastPathUnsupported(
            f"branch '{name}' has an unsupported step {type(rest[0]).__name__}"
        )
    if len(means) != stop - start or len(scales) != len(means):
        raise FastPathUnsupported(f"branch '{name}': unexpected output width")
    cells: list[_Cell] = []
    for j, p in enumerate(keep):
        cells.append((start + j, p, False, fills[p], means[j], scales[j]))
    for k, p in enumerate(indicators):
        j = len(keep) + k
        cells.append((start + j, p, True, _NAN, means[j], scales[j]))
    return _Affine([(c, convert, each) for c in cols], cells)


def _compile_categorical(
    name: str, cols: list[str], encoder: Any, start: int, stop: int
) -> _Categorical:
    if not isinstance(encoder, (OneHotEncoder, OrdinalEncoder)):
        raise FastPathUnsupported(f"branch '{name}': encoder {type(encoder).__name__}")
    levels = [[str(v) for v in cats] + [_UNSEEN] for cats in encoder.categories_]
    n_rows = max(len(v) for v in levels)
    probe = np.empty((n_rows, len(cols)), dtype=object)
    for j, values in enumerate(levels):
        probe[:, j] = values + [values[0]] * (n_rows - len(values))
    try:
        encoded = encoder.transform(probe)
    except ValueError as exc:
        raise FastPathUnsupported(
            f"branch '{name}': the encoder refuses unseen levels ({exc})"
        ) from None
    encoded = encoded.toarray() if hasattr(encoded, "toarray") else np.asarray(encoded)
    if encoded.shape[1] != stop - start:
        raise FastPathUnsupported(f"branch '{name}': unexpected output width")
    blocks = _encoder_blocks(encoder, len(cols))
    columns = []
    for j, col in enumerate(cols):
        a, b = blocks[j]
        table = {
            level: encoded[r, a:b].astype(float).tolist() for r, level in enumerate(levels[j][:-1])
        }
        unseen = encoded[len(levels[j]) - 1, a:b].astype(float).tolist()
        columns.append((col, start + a, start + b, table, unseen))
    return _Categorical(columns)


def _encoder_blocks(encoder: Any, n_inputs: int) -> list[tuple[int, int]]:
    """The output columns of each input of an encoder, from its output feature names."""
    prefixes = [f"\x1e{j}\x1f" for j in range(n_inputs)]
    names = [str(n) for n in encoder.get_feature_names_out(prefixes)]
    owners: list[int] = []
    for out_name in names:
        owner = next((j for j, p in enumerate(prefixes) if out_name.startswith(p)), None)
        if owner is None:
            raise FastPathUnsupported("cannot map the encoder's outputs to its inputs")
        owners.append(owner)
    blocks = []
    for j in range(n_inputs):
        positions = [i for i, o in enumerate(owners) if o == j]
        if not positions or positions != list(range(positions[0], positions[-1] + 1)):
            raise FastPathUnsupported("the encoder's outputs are not one block per input")
        blocks.append((positions[0], positions[-1] + 1))
    return blocks


def _probe_frame(
    features: Sequence[str], affine: list[_Affine], categorical: list[_Categorical]
) -> pd.DataFrame:
    """Rows that exercise missing values, unseen levels and edge dates for every column."""
    n = 6
    values: dict[str, list[Any]] = {name: [None] * n for name in features}
    for branch in affine:
        for name, convert, _ in branch.inputs:
            if convert is _number:
                values[name] = [0.5, None, -3.25, 1.0e3, 7.0, 0.0]
            elif convert is _boolean:
                values[name] = [True, False, None, True, False, True]
            else:
                stamps = [(2024, 3, 5, 13), (2021, 7, 1, 6), (2019, 12, 31, 23), (2030, 1, 1, 0)]
                values[name] = [None, *(datetime(*t, tzinfo=_UTC) for t in stamps), "2000-06-15"]
    for cat in categorical:
        for name, _, _, table, _ in cat.columns:
            known = sorted(table)
            values[name] = [known[0], _UNSEEN, None, known[-1], known[len(known) // 2], known[0]]
    return pd.DataFrame({name: pd.Series(values[name], dtype=object) for name in features})


def probe_rows(features: Sequence[str], predictors: Sequence[FastPredictor]) -> pd.DataFrame:
    """Rows that exercise missing values, unseen levels and edge dates for every column the
    ``predictors`` read (an ensemble's members may read the same column differently)."""
    affine = [branch for predictor in predictors for branch in predictor._affine]
    categorical = [cat for predictor in predictors for cat in predictor._categorical]
    return _probe_frame(features, affine, categorical)


def _self_check(
    predictor: FastPredictor, model: Any, ct: ColumnTransformer, features: Sequence[str]
) -> None:
    probe = probe_rows(features, [predictor])
    records = frame_records(probe, features)
    expected_X = ct.transform(probe)
    expected_X = expected_X.toarray() if hasattr(expected_X, "toarray") else np.asarray(expected_X)
    if not _close(predictor.transform_many(records), expected_X):
        raise FastPathUnsupported("the replayed preprocessing differs from the pipeline on probes")
    check_answers(predictor, model, probe, records)


def check_answers(
    predictor: Any, model: Any, probe: pd.DataFrame, records: Sequence[Mapping[str, Any]]
) -> None:
    """Raise :class:`FastPathUnsupported` unless ``predictor`` answers ``records`` (the rows of
    ``probe``) as ``model`` answers ``probe``, to :data:`TOLERANCE`, one by one and together.

    ``predictor`` has ``classes``, ``score`` and ``score_one`` (a :class:`FastPredictor`
    or a compiled ensemble).
    """
    labels, proba = predictor.score(records)
    expected = np.asarray(model.predict(probe))
    classifier = predictor.classes is not None
    same = np.array_equal(labels, expected) if classifier else _close(labels, expected)
    if not same or (proba is not None and not _close(proba, model.predict_proba(probe))):
        raise FastPathUnsupported("the fast predictions differ from the model on probes")
    for i, record in enumerate(records):
        value, probs = predictor.score_one(record)
        if classifier:
            same = value == native(labels[i]) and _close(
                probs, None if proba is None else proba[i]
            )
        else:
            same = _close(value, labels[i])
        if not same:
            raise FastPathUnsupported("the single-record path differs from the model on probes")


def _close(got: Any, expected: Any) -> bool:
    if got is None or expected is None:
        return got is None and expected is None
    a, b = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=0, atol=TOLERANCE))
