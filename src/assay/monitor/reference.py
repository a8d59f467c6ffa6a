"""The training reference that drift is measured against: one compact profile per column.

:func:`build_reference` reads the training rows once and keeps, per column, what the drift
tests of :mod:`assay.monitor.drift_tests` need, so that the training frame itself is never
needed again:

- numeric and integer columns: the quantile bin edges (deciles by default, deduplicated, the
  outer bins open-ended), the share of rows per bin, the missing share, and a sorted random
  sample of the non-missing values (for the Kolmogorov-Smirnov test);
- categorical and boolean columns: the share of each level, an ``unseen`` bin (0 in the
  reference; traffic values the training rows never had land there) and the missing share;
- the model's predictions (class shares, or numeric bins for regression) and confidences
  (numeric bins), under the reserved names ``__prediction__`` and ``__confidence__``.

Text and datetime columns are not profiled here; the profile lists them with the reason.
:func:`assay.monitor.text_drift.profile_text_columns` then gives each free-text column a
:class:`TextProfile` (lengths, unknown tokens, a sample of embeddings under the base
encoder), which needs the ``text`` extra. The profile is stored with each model version as
JSON (:meth:`ReferenceProfile.to_dict`).
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
import pandas as pd

from assay.data.schema import ColumnSchema
from assay.errors import ConfigError, DataError

__all__ = [
    "CONFIDENCE",
    "PREDICTION",
    "ColumnProfile",
    "ProfileKind",
    "ReferenceProfile",
    "Role",
    "SkippedColumn",
    "TextProfile",
    "build_reference",
    "frozen_embeddings",
    "level_codes",
    "numeric_values",
]

#: reserved profile name of the model's predictions
PREDICTION = "__prediction__"
#: reserved profile name of the model's confidence (top class probability)
CONFIDENCE = "__confidence__"
#: version of the ``to_dict`` layout; ``from_dict`` refuses other versions
PROFILE_FORMAT = 1
#: an integer-valued prediction with at most this many distinct values is a class label
MAX_PREDICTION_CLASSES = 50

ProfileKind = Literal["numeric", "categorical"]
Role = Literal["feature", "prediction", "confidence"]

_NUMERIC_KINDS = ("numeric", "integer")
_LEVEL_KINDS = ("categorical", "boolean")
_SKIP_REASONS = {
    "text": "free text is not profiled: its drift needs embeddings, not level shares",
    "datetime": "datetimes are not profiled: time moves forward, so its distribution "
    "always drifts; monitor derived features instead",
}
_SAMPLE_ENCODING = "float64-le-base64"
_RUNS_ENCODING = "runs-float64-le-base64"
_EMBEDDING_ENCODING = "float16-le-base64"


@dataclass(frozen=True, eq=False)
class ColumnProfile:
    """The reference distribution of one column.

    The binned distribution is ``shares`` followed by ``missing_share`` (they sum to 1):
    for a numeric profile ``len(edges) + 1`` value bins, ``(-inf, e0), [e0, e1), ...,
    [e_last, inf)``; for a categorical profile one bin per level, in ``levels`` order, then
    the ``unseen`` bin (share 0).

    Attributes:
        name: the column name (``__prediction__`` / ``__confidence__`` for the model outputs).
        role: ``feature``, ``prediction`` or ``confidence``.
        kind: ``numeric`` (binned by quantiles) or ``categorical`` (binned by level).
        column_kind: the schema kind the column had (``numeric``, ``integer``, ...).
        n: the number of reference rows.
        missing_share: the share of reference rows without a value.
        shares: the share of reference rows in each value bin (see above).
        edges: the inner bin edges of a numeric profile (ascending, distinct).
        levels: the levels of a categorical profile, most frequent first.
        sample: a sorted random sample of the non-missing reference values (numeric only).
    """

    name: str
    role: Role
    kind: ProfileKind
    column_kind: str
    n: int
    missing_share: float
    shares: tuple[float, ...]
    edges: tuple[float, ...] = ()
    levels: tuple[str, ...] = ()
    sample: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def distribution(self) -> np.ndarray:
        """The reference shares of every bin, the missing bin last (sums to 1)."""
        return np.array([*self.shares, self.missing_share], dtype=np.float64)

    @property
    def n_bins(self) -> int:
        """The number of bins of :attr:`distribution`, the missing bin included."""
        return len(self.shares) + 1

    def bin_counts(self, series: pd.Series) -> tuple[np.ndarray, np.ndarray | None]:
        """Count ``series`` on this profile's bins (the missing bin last).

        Returns the counts and, for a numeric profile, the values as float64, sorted, the
        missing ones (NaN) last: sorting once makes every later lookup (the bin counts here,
        the KS statistic) a binary search of a few points into the sorted values.
        """
        if self.kind == "numeric":
            values = np.sort(numeric_values(series))
            n_present = values.size - int(np.count_nonzero(np.isnan(values)))
            edges = np.asarray(self.edges, dtype=np.float64)
            # value bin i holds edges[i-1] <= x < edges[i]
            below = np.searchsorted(values[:n_present], edges, side="left")
            counts = np.diff(np.concatenate(([0], below, [n_present, values.size])))
            return counts.astype(np.int64), values
        codes = level_codes(series, self.levels)
        return np.bincount(codes, minlength=len(self.levels) + 2), None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form.

        The sample is stored as base64 of its little-endian float64 bytes (exact, about
        11 bytes per value); when it has few distinct values (an integer column), as the
        distinct values and their counts.
        """
        out: dict[str, Any] = {
            "name": self.name,
            "role": self.role,
            "kind": self.kind,
            "column_kind": self.column_kind,
            "n": self.n,
            "missing_share": self.missing_share,
            "shares": list(self.shares),
        }
        if self.kind == "numeric":
            out["edges"] = list(self.edges)
            out["sample"] = _encode_sample(self.sample)
        else:
            out["levels"] = list(self.levels)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnProfile:
        """Rebuild a profile from :meth:`to_dict` output."""
        sample = np.empty(0)
        if data["kind"] == "numeric":
            sample = _decode_sample(data["sample"])
        return cls(
            name=str(data["name"]),
            role=data["role"],
            kind=data["kind"],
            column_kind=str(data["column_kind"]),
            n=int(data["n"]),
            missing_share=float(data["missing_share"]),
            shares=tuple(float(s) for s in data["shares"]),
            edges=tuple(float(e) for e in data.get("edges", ())),
            levels=tuple(str(v) for v in data.get("levels", ())),
            sample=_frozen(sample),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ColumnProfile):
            return NotImplemented
        plain = (
            "name",
            "role",
            "kind",
            "column_kind",
            "n",
            "missing_share",
            "shares",
            "edges",
            "levels",
        )
        return all(getattr(self, k) == getattr(other, k) for k in plain) and bool(
            np.array_equal(self.sample, other.sample, equal_nan=True)
        )

    __hash__ = object.__hash__


@dataclass(frozen=True)
class SkippedColumn:
    """A column the reference does not profile, and why."""

    name: str
    kind: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return {"name": self.name, "kind": self.kind, "reason": self.reason}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SkippedColumn:
        """Rebuild from :meth:`to_dict` output."""
        return cls(name=str(data["name"]), kind=str(data["kind"]), reason=str(data["reason"]))


@dataclass(frozen=True, eq=False)
class TextProfile:
    """The reference of one free-text column, built by :mod:`assay.monitor.text_drift`.

    Attributes:
        name: the column.
        chars: the numeric profile of each text's length in characters (missing texts
            in its missing bin).
        tokens: the same for the length in tokens under the base tokenizer (no special
            tokens, no truncation).
        n_tokens: the tokens of all reference texts.
        n_unknown: how many of them are the tokenizer's unknown token.
        unknown_variance: the variance of ``unknown_share`` as an estimate over texts
            (a ratio estimator: the tokens of one text are not independent draws).
        embeddings: base-encoder embeddings of a seeded sample of the texts, float16.
        base: what ``model.base`` named when the profile was built.
        base_sha256: the SHA-256 of that checkpoint's weights; a window is only compared
            when embedded by the same weights.
        max_length: the tokens per text the encoder read.
    """

    name: str
    chars: ColumnProfile
    tokens: ColumnProfile
    n_tokens: int
    n_unknown: int
    unknown_variance: float
    embeddings: np.ndarray
    base: str
    base_sha256: str
    max_length: int

    @property
    def n(self) -> int:
        """The number of reference rows, missing texts included."""
        return self.tokens.n

    @property
    def missing_share(self) -> float:
        """The share of reference rows without a text."""
        return self.tokens.missing_share

    @property
    def unknown_share(self) -> float:
        """The share of reference tokens that are the unknown token (0 without tokens)."""
        return self.n_unknown / self.n_tokens if self.n_tokens else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form; the embeddings as base64 of little-endian float16."""
        rows, dim = self.embeddings.shape
        data = np.ascontiguousarray(self.embeddings, dtype="<f2").tobytes()
        return {
            "name": self.name,
            "chars": self.chars.to_dict(),
            "tokens": self.tokens.to_dict(),
            "n_tokens": self.n_tokens,
            "n_unknown": self.n_unknown,
            "unknown_variance": self.unknown_variance,
            "embeddings": {
                "encoding": _EMBEDDING_ENCODING,
                "shape": [rows, dim],
                "data": base64.b64encode(data).decode("ascii"),
            },
            "base": self.base,
            "base_sha256": self.base_sha256,
            "max_length": self.max_length,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TextProfile:
        """Rebuild from :meth:`to_dict` output."""
        encoded = data["embeddings"]
        if encoded["encoding"] != _EMBEDDING_ENCODING:
            raise ValueError(f"unknown embedding encoding {encoded['encoding']!r}")
        rows, dim = (int(v) for v in encoded["shape"])
        values = np.frombuffer(base64.b64decode(encoded["data"]), dtype="<f2")
        return cls(
            name=str(data["name"]),
            chars=ColumnProfile.from_dict(data["chars"]),
            tokens=ColumnProfile.from_dict(data["tokens"]),
            n_tokens=int(data["n_tokens"]),
            n_unknown=int(data["n_unknown"]),
            unknown_variance=float(data["unknown_variance"]),
            embeddings=frozen_embeddings(values.reshape(rows, dim)),
            base=str(data["base"]),
            base_sha256=str(data["base_sha256"]),
            max_length=int(data["max_length"]),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TextProfile):
            return NotImplemented
        plain = ("name", "chars", "tokens", "n_tokens", "n_unknown", "unknown_variance")
        more = ("base", "base_sha256", "max_length")
        return all(getattr(self, k) == getattr(other, k) for k in (*plain, *more)) and bool(
            np.array_equal(self.embeddings, other.embeddings)
        )

    __hash__ = object.__hash__


def frozen_embeddings(values: np.ndarray) -> np.ndarray:
    """``values`` as a read-only 2-d float16 array (how a :class:`TextProfile` keeps them)."""
    out = np.array(values, dtype=np.float16, ndmin=2, order="C")
    out.flags.writeable = False
    return out


@dataclass(frozen=True)
class ReferenceProfile:
    """The training reference of a model version: one :class:`ColumnProfile` per column.

    Attributes:
        columns: the profiles, features first (in the order given), then the prediction
            and the confidence when they were given.
        n_rows: the number of training rows profiled.
        bins: the number of quantile bins asked for numeric columns (ties may give fewer).
        sample_size: the largest reference sample kept per numeric column.
        seed: the seed of the samples.
        skipped: the columns not profiled, with the reason.
        text: the profiles of the free-text columns, when they were built.
    """

    columns: tuple[ColumnProfile, ...]
    n_rows: int
    bins: int = 10
    sample_size: int = 20_000
    seed: int = 0
    skipped: tuple[SkippedColumn, ...] = ()
    text: tuple[TextProfile, ...] = ()

    def __getitem__(self, name: str) -> ColumnProfile:
        for profile in self.columns:
            if profile.name == name:
                return profile
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(profile.name == name for profile in self.columns)

    def __iter__(self) -> Iterator[ColumnProfile]:
        return iter(self.columns)

    @property
    def features(self) -> tuple[ColumnProfile, ...]:
        """The profiles of the input features (not the model outputs)."""
        return tuple(p for p in self.columns if p.role == "feature")

    @property
    def prediction(self) -> ColumnProfile | None:
        """The profile of the predictions, if one was built."""
        return next((p for p in self.columns if p.role == "prediction"), None)

    @property
    def confidence(self) -> ColumnProfile | None:
        """The profile of the confidences, if one was built."""
        return next((p for p in self.columns if p.role == "confidence"), None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form, stored with the model version."""
        return {
            "format": PROFILE_FORMAT,
            "n_rows": self.n_rows,
            "bins": self.bins,
            "sample_size": self.sample_size,
            "seed": self.seed,
            "columns": [p.to_dict() for p in self.columns],
            "skipped": [s.to_dict() for s in self.skipped],
            "text": [t.to_dict() for t in self.text],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReferenceProfile:
        """Rebuild a profile from :meth:`to_dict` output; a :class:`DataError` if malformed."""
        found = data.get("format") if isinstance(data, dict) else None
        if found != PROFILE_FORMAT:
            raise DataError(
                "the reference profile has an unknown format",
                where="reference profile",
                expected=f"format {PROFILE_FORMAT}",
                received=found,
                fix="Rebuild it with assay.monitor.build_reference from the training rows.",
            )
        try:
            return cls(
                columns=tuple(ColumnProfile.from_dict(c) for c in data["columns"]),
                n_rows=int(data["n_rows"]),
                bins=int(data["bins"]),
                sample_size=int(data["sample_size"]),
                seed=int(data["seed"]),
                skipped=tuple(SkippedColumn.from_dict(s) for s in data.get("skipped", ())),
                text=tuple(TextProfile.from_dict(t) for t in data.get("text", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(
                "the reference profile is malformed",
                where="reference profile",
                expected="the output of ReferenceProfile.to_dict()",
                received=f"{type(exc).__name__}: {exc}",
                fix="Rebuild it with assay.monitor.build_reference from the training rows.",
            ) from None


def build_reference(
    frame: pd.DataFrame,
    columns: Sequence[ColumnSchema],
    *,
    prediction: Sequence[Any] | np.ndarray | pd.Series | None = None,
    confidence: Sequence[float] | np.ndarray | pd.Series | None = None,
    bins: int = 10,
    sample: int = 20_000,
    seed: int = 0,
    max_levels: int = 200,
) -> ReferenceProfile:
    """Profile the training rows once, for every later drift check of the model.

    Args:
        frame: the training rows.
        columns: the schema of the columns to profile (usually the model's features).
            Numeric, integer, categorical and boolean columns are profiled; text and
            datetime columns are listed in ``skipped``.
        prediction: the model's predictions on ``frame``'s rows (class labels, or values
            for regression), one per row; profiled as ``__prediction__``.
        confidence: the model's confidence (top class probability) per row; profiled as
            ``__confidence__``.
        bins: the number of quantile bins of a numeric column (10 = deciles); tied
            quantiles are merged, so a column with few distinct values gets fewer bins.
        sample: the largest number of reference values kept per numeric column for the
            Kolmogorov-Smirnov test (a seeded random sample without replacement).
        seed: the seed of those samples (each column draws from its own stream, derived
            from the seed and the column name, so adding a column changes no other sample).
        max_levels: a categorical column with more distinct levels is skipped (level
            shares of an ID-like column say nothing).

    Raises:
        ConfigError: ``bins``, ``sample`` or ``max_levels`` out of range.
        DataError: an empty frame, a column missing from it, or model outputs whose length
            is not the frame's.
    """
    _check_positive("bins", bins, 2)
    _check_positive("sample", sample, 1)
    _check_positive("max_levels", max_levels, 1)
    if len(frame) == 0:
        raise DataError(
            "the reference frame has no rows",
            where="reference frame",
            expected="the training rows of the model",
            received="0 rows",
            fix="Build the reference from the rows the model was trained on.",
        )
    missing = [c.name for c in columns if c.name not in frame.columns]
    if missing:
        raise DataError(
            f"column '{missing[0]}' is in the schema but not in the reference frame",
            column=missing[0],
            expected="every schema column in the frame",
            received="columns: " + ", ".join(map(str, frame.columns)),
            fix="Pass the schema of this frame (Dataset.schema) or drop the column from it.",
        )
    profiles: list[ColumnProfile] = []
    skipped: list[SkippedColumn] = []
    for schema in columns:
        if schema.name in (PREDICTION, CONFIDENCE):
            raise DataError(
                f"column name '{schema.name}' is reserved for the model outputs",
                column=schema.name,
                expected=f"a feature name other than {PREDICTION} and {CONFIDENCE}",
                received=schema.name,
                fix="Rename the column, and pass model outputs as prediction= / confidence=.",
            )
        series = frame[schema.name]
        if schema.kind in _NUMERIC_KINDS:
            profiles.append(
                _numeric_profile(schema.name, "feature", schema.kind, series, bins, sample, seed)
            )
        elif schema.kind in _LEVEL_KINDS:
            made = _categorical_profile(schema.name, "feature", schema.kind, series, max_levels)
            if isinstance(made, SkippedColumn):
                skipped.append(made)
            else:
                profiles.append(made)
        else:
            reason = _SKIP_REASONS.get(
                schema.kind, f"columns of kind '{schema.kind}' are not profiled"
            )
            skipped.append(SkippedColumn(schema.name, schema.kind, reason))
    if prediction is not None:
        series = _output_series(prediction, "prediction", len(frame))
        kind = _prediction_kind(series)
        if kind == "numeric":
            profiles.append(
                _numeric_profile(PREDICTION, "prediction", "numeric", series, bins, sample, seed)
            )
        else:
            made = _categorical_profile(PREDICTION, "prediction", "categorical", series, max_levels)
            if isinstance(made, SkippedColumn):
                skipped.append(made)
            else:
                profiles.append(made)
    if confidence is not None:
        series = _output_series(confidence, "confidence", len(frame))
        profiles.append(
            _numeric_profile(CONFIDENCE, "confidence", "numeric", series, bins, sample, seed)
        )
    return ReferenceProfile(
        columns=tuple(profiles),
        n_rows=len(frame),
        bins=bins,
        sample_size=sample,
        seed=seed,
        skipped=tuple(skipped),
    )


def numeric_values(series: pd.Series) -> np.ndarray:
    """The values of ``series`` as float64, NaN where missing or not a number."""
    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype == np.float64:
        return np.asarray(series.to_numpy(), dtype=np.float64)
    if not (pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype)):
        series = pd.to_numeric(series, errors="coerce")
    return np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def level_codes(series: pd.Series, levels: Sequence[str]) -> np.ndarray:
    """The bin of each value against reference ``levels``.

    Codes ``0 .. len(levels) - 1`` are the levels, ``len(levels)`` the unseen bin and
    ``len(levels) + 1`` the missing bin. Values are matched by their level string
    (:func:`_level_names`), so ``1``, ``1.0`` and ``"1"`` are the same level.
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    names = _level_names(uniques)
    index = pd.Index(list(levels), dtype=object).get_indexer(pd.Index(names, dtype=object))
    unseen, missing = len(levels), len(levels) + 1
    lookup = np.append(np.where(index < 0, unseen, index), missing)
    # code -1 (missing) takes the last entry of lookup
    return np.asarray(lookup[codes], dtype=np.int64)


# -- helpers ------------------------------------------------------------------------------


def _numeric_profile(
    name: str, role: Role, column_kind: str, series: pd.Series, bins: int, sample: int, seed: int
) -> ColumnProfile:
    values = np.sort(numeric_values(series))
    n = values.size
    present = values[: n - int(np.count_nonzero(np.isnan(values)))]
    finite = present[np.isfinite(present)]
    if finite.size:
        edges = np.unique(np.quantile(finite, np.arange(1, bins) / bins))
    else:
        edges = np.empty(0)
    below = np.searchsorted(present, edges, side="left")
    counts = np.diff(np.concatenate(([0], below, [present.size])))
    if present.size > sample:
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        kept = present[np.sort(rng.choice(present.size, size=sample, replace=False))]
    else:
        kept = present
    return ColumnProfile(
        name=name,
        role=role,
        kind="numeric",
        column_kind=column_kind,
        n=int(n),
        missing_share=float((n - present.size) / n),
        shares=tuple(float(c / n) for c in counts),
        edges=tuple(float(e) for e in edges),
        sample=_frozen(kept),
    )


def _categorical_profile(
    name: str, role: Role, column_kind: str, series: pd.Series, max_levels: int
) -> ColumnProfile | SkippedColumn:
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    names = _level_names(uniques)
    counts = np.bincount(codes[codes >= 0], minlength=len(names))
    merged: dict[str, int] = {}
    for level, count in zip(names, counts.tolist()):
        merged[level] = merged.get(level, 0) + count
    if len(merged) > max_levels:
        return SkippedColumn(
            name,
            column_kind,
            f"{len(merged)} distinct levels (more than max_levels={max_levels}): level shares "
            "of an ID-like column say nothing; bucket it into fewer levels to monitor it",
        )
    ordered = sorted(merged.items(), key=lambda item: (-item[1], item[0]))
    n = len(series)
    n_missing = n - int(counts.sum())
    return ColumnProfile(
        name=name,
        role=role,
        kind="categorical",
        column_kind=column_kind,
        n=n,
        missing_share=float(n_missing / n),
        shares=(*(float(count / n) for _, count in ordered), 0.0),
        levels=tuple(level for level, _ in ordered),
    )


def _level_names(uniques: Any) -> list[str]:
    """One string per distinct value: booleans as True/False, integral numbers without '.0'."""
    out = []
    for value in np.asarray(uniques, dtype=object).tolist():
        if isinstance(value, (bool, np.bool_)):
            out.append(str(bool(value)))
        elif isinstance(value, (int, float, np.integer, np.floating)):
            number = float(value)
            out.append(str(int(number)) if number.is_integer() else repr(number))
        else:
            out.append(str(value))
    return out


def _prediction_kind(series: pd.Series) -> ProfileKind:
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
        return "categorical"
    values = series.dropna().to_numpy(dtype=np.float64)
    integral = bool(values.size) and bool(np.all(np.mod(values, 1) == 0))
    if integral and np.unique(values).size <= MAX_PREDICTION_CLASSES:
        return "categorical"
    return "numeric"


def _output_series(values: Any, name: str, n_rows: int) -> pd.Series:
    series = (
        values.reset_index(drop=True)
        if isinstance(values, pd.Series)
        else pd.Series(np.asarray(values))
    )
    if series.ndim != 1 or len(series) != n_rows:
        raise DataError(
            f"the model's {name}s do not match the reference rows",
            where=f"build_reference({name}=...)",
            expected=f"one value per reference row ({n_rows})",
            received=f"{len(series)} values",
            fix=f"Pass the model's {name} for every row of the reference frame, in order.",
        )
    return series


def _check_positive(key: str, value: int, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ConfigError(
            f"build_reference's {key} is out of range",
            key=key,
            expected=f"an integer >= {least}",
            received=value,
            fix=f"Pass {key}={least} or more.",
        )


def _b64(values: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f8").tobytes()).decode("ascii")


def _unb64(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f8").astype(np.float64)


def _encode_sample(sample: np.ndarray) -> dict[str, Any]:
    values, counts = np.unique(sample, return_counts=True)
    if values.size * 2 <= sample.size:
        return {
            "encoding": _RUNS_ENCODING,
            "size": int(sample.size),
            "values": _b64(values),
            "counts": counts.tolist(),
        }
    return {"encoding": _SAMPLE_ENCODING, "size": int(sample.size), "data": _b64(sample)}


def _decode_sample(encoded: dict[str, Any]) -> np.ndarray:
    if encoded["encoding"] == _SAMPLE_ENCODING:
        sample = _unb64(encoded["data"])
    elif encoded["encoding"] == _RUNS_ENCODING:
        sample = np.repeat(_unb64(encoded["values"]), np.asarray(encoded["counts"], dtype=np.int64))
    else:
        raise ValueError(f"unknown sample encoding {encoded['encoding']!r}")
    if sample.size != encoded["size"]:
        raise ValueError("the sample size does not match its data")
    return sample


def _frozen(values: np.ndarray) -> np.ndarray:
    out = np.ascontiguousarray(values, dtype=np.float64)
    out.flags.writeable = False
    return cast(np.ndarray, out)
