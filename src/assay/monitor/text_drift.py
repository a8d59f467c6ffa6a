"""Drift of free-text inputs: their length, their unknown tokens and their embeddings.

A free-text column has no bins to count, so the tests of :mod:`assay.monitor.drift_tests`
do not apply to it. It is read through the base checkpoint (``model.base``) instead:

- **Reference** (:func:`profile_text_columns`, when a version is registered): per text
  column a :class:`~assay.monitor.reference.TextProfile`: the length of each text in
  characters and in tokens of the base tokenizer (numeric profiles, as for a tabular
  column), the share of unknown tokens, and base-encoder embeddings of up to 1,000 texts
  (a seeded sample, stored as float16), with the SHA-256 of the base's weights.
- **Window** (:func:`text_features`): the same measures of the window's texts; only a
  seeded sample of up to 1,000 texts is embedded, since encoding is the costly part.
- **Tests** (:data:`TEXT_DRIFT_TESTS`, each a :class:`BaseTextDriftTest` that returns a
  :class:`~assay.monitor.drift.DriftCheck`):

  - ``mmd`` (:class:`MMDTest`, the primary test): maximum mean discrepancy between the
    reference and window embeddings, RBF kernel whose bandwidth is the median distance of
    the pooled sample, p-value from seeded permutations; drifted when ``p < alpha``. Both
    samples are capped at 1,000 texts, so a large window does not make every difference
    significant (the reason tabular drift decides on effect sizes);
  - ``text_length`` (:class:`LengthDriftTest`): PSI of the length in tokens on the
    reference bins, drifted with the tabular thresholds (PSI >= ``psi_significant`` and
    JS >= ``js_threshold``); the KS p-value is reported, not used;
  - ``unknown_tokens`` (:class:`UnknownTokenTest`): the change in the share of unknown
    tokens, drifted when it reaches ``min_change`` and is significant at ``alpha`` by a
    z-test whose standard errors take texts, not tokens, as the draws.

- **Routing** (:func:`add_text_drift`): after :func:`~assay.monitor.drift.detect_drift`,
  each profiled text column becomes one :class:`~assay.monitor.drift.ColumnDrift` of kind
  ``text`` (its PSI and JS are those of the length in tokens) carrying the three checks,
  drifted when any check is; so alerts and reports show it as any drifted feature. A
  window is only embedded by the weights the reference was: when the base checkpoint
  cannot be found or its hash changed, the column is skipped with the reason.

Tokenising and embedding need the ``text`` extra (torch, transformers); they are loaded
only when a text column is profiled or checked.
"""

from __future__ import annotations

import abc
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from assay.aliases import AliasTable
from assay.data.schema import ColumnSchema
from assay.errors import ConfigError, DataError, MissingDependencyError
from assay.monitor.drift import ColumnDrift, DriftCheck, DriftReport, DriftThresholds
from assay.monitor.drift_tests import CurrentColumn, js_distance, ks_2samp_sorted, psi
from assay.monitor.reference import (
    ReferenceProfile,
    SkippedColumn,
    TextProfile,
    build_reference,
    frozen_embeddings,
)
from assay.text.checkpoint import BaseCheckpoint, resolve_base
from assay.text.encoder import TextEncoder

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "TEXT_DRIFT_TESTS",
    "BaseTextDriftTest",
    "LengthDriftTest",
    "MMDResult",
    "MMDTest",
    "TextDriftConfig",
    "TextFeatures",
    "UnknownTokenTest",
    "add_text_drift",
    "mmd_permutation_test",
    "profile_text_columns",
    "text_column_drift",
    "text_columns",
    "text_features",
    "text_profile",
    "unknown_ratio",
]

#: tokens per text the encoder reads when ``model.max_length`` is not set
DEFAULT_MAX_LENGTH = 128
#: texts tokenised per call of the tokenizer
_TOKENIZE_BATCH = 1_000
#: a permutation statistic this close to the observed one counts as reaching it
_TIE = 1e-10


@dataclass(frozen=True, eq=False)
class TextFeatures:
    """What the text tests read of a batch of texts (the reference's or a window's).

    Attributes:
        chars: each row's length in characters, float64, NaN where the text is missing.
        tokens: each row's length in tokens of the base tokenizer (no special tokens, no
            truncation), NaN where missing.
        unknown: each row's count of the tokenizer's unknown token, NaN where missing.
        embeddings: base-encoder embeddings of a seeded sample of the present texts,
            float32 rounded to float16 precision, so that a window and a reference (stored
            as float16) are compared at the same precision.
    """

    chars: np.ndarray
    tokens: np.ndarray
    unknown: np.ndarray
    embeddings: np.ndarray

    @property
    def n(self) -> int:
        """The number of rows, missing texts included."""
        return int(self.tokens.size)

    @property
    def n_missing(self) -> int:
        """The number of rows without a text."""
        return int(np.count_nonzero(np.isnan(self.tokens)))


@dataclass(frozen=True)
class MMDResult:
    """The outcome of :func:`mmd_permutation_test`.

    Attributes:
        statistic: the squared MMD (biased V-statistic, >= 0, 0 for equal samples).
        p_value: ``(1 + #permutations reaching it) / (1 + permutations)``.
        bandwidth: the RBF kernel's bandwidth (median pairwise distance of the pool).
    """

    statistic: float
    p_value: float
    bandwidth: float


# -- the tests ------------------------------------------------------------------------------


class BaseTextDriftTest(abc.ABC):
    """A test of one free-text column's window against its :class:`TextProfile`.

    A different kind of plug-in from :class:`~assay.monitor.drift_tests.BaseDriftTest`:
    a text column has no bins to count, its window is texts turned into
    :class:`TextFeatures` by a model, and each test decides by itself (no PSI band fits an
    embedding), so it returns a :class:`DriftCheck` with its threshold and verdict.

    Call order, per profiled text column of a drift check:

    1. the window's texts are measured once, with the base the profile names
       (:func:`text_features`);
    2. each test's :meth:`compute` ``(profile, current)`` returns a :class:`DriftCheck`
       whose statistic is None when there is nothing to compare (no text in the window),
       and which is then never drifted.

    A test reads only the profile and the features, never the training texts or the
    encoder, and changes neither. Subclasses are small frozen dataclasses (their fields
    are the test's parameters) registered with ``@TEXT_DRIFT_TESTS.register("alias")``;
    :class:`assay.testing.drift.TextDriftTestContract` is their contract.
    """

    alias: ClassVar[str]

    @abc.abstractmethod
    def compute(self, profile: TextProfile, current: TextFeatures) -> DriftCheck:
        """The verdict on ``current`` against ``profile``."""


#: alias -> text drift test class
TEXT_DRIFT_TESTS: AliasTable[type[BaseTextDriftTest]] = AliasTable("text drift test")


@TEXT_DRIFT_TESTS.register("mmd")
@dataclass(frozen=True)
class MMDTest(BaseTextDriftTest):
    """Maximum mean discrepancy of the embeddings, with a permutation p-value.

    The statistic is the squared MMD between the reference sample and the window's
    embeddings (:func:`mmd_permutation_test`); drifted when ``p < alpha`` (the check's
    threshold). With ``permutations`` draws the smallest p-value is
    ``1 / (permutations + 1)``, so ``alpha`` must be above it.
    """

    alpha: float = 0.01
    permutations: int = 300
    seed: int = 0

    def compute(self, profile: TextProfile, current: TextFeatures) -> DriftCheck:
        """The squared MMD and its p-value; None for both when either side is empty."""
        reference = np.asarray(profile.embeddings, dtype=np.float64)
        window = np.asarray(current.embeddings, dtype=np.float64)
        evidence: dict[str, float | int | str | None] = {
            "n_reference": int(reference.shape[0]),
            "n_current": int(window.shape[0]),
            "permutations": self.permutations,
        }
        if reference.shape[0] == 0 or window.shape[0] == 0:
            return DriftCheck(self.alias, None, None, self.alpha, False, evidence)
        if reference.shape[1] != window.shape[1]:
            raise DataError(
                f"the embeddings of text column '{profile.name}' have "
                f"{window.shape[1]} dimensions, the reference's {reference.shape[1]}",
                column=profile.name,
                expected="a window embedded by the reference's base checkpoint",
                received=f"{window.shape[1]}-dimensional embeddings",
                fix="Embed the window with the base the reference names "
                f"({profile.base}), or rebuild the reference.",
            )
        result = mmd_permutation_test(
            reference, window, permutations=self.permutations, seed=self.seed
        )
        evidence["bandwidth"] = result.bandwidth
        drifted = result.p_value < self.alpha
        return DriftCheck(
            self.alias, result.statistic, result.p_value, self.alpha, drifted, evidence
        )


@TEXT_DRIFT_TESTS.register("text_length")
@dataclass(frozen=True)
class LengthDriftTest(BaseTextDriftTest):
    """PSI of the length in tokens, judged with the tabular thresholds.

    The statistic is the PSI of the window's token lengths on the reference's bins (the
    missing bin included); drifted when it reaches ``psi_significant`` (the check's
    threshold) and the JS distance reaches ``js_threshold``, as a numeric feature would.
    The KS test of the lengths is the reported p-value; the PSI of the length in
    characters is in the evidence.
    """

    psi_significant: float = 0.2
    js_threshold: float = 0.1

    def compute(self, profile: TextProfile, current: TextFeatures) -> DriftCheck:
        """The PSI of the token lengths; None on an empty window."""
        if current.n == 0:
            return DriftCheck(self.alias, None, None, self.psi_significant, False, {})
        tokens = CurrentColumn.from_series(profile.tokens, pd.Series(current.tokens))
        chars = CurrentColumn.from_series(profile.chars, pd.Series(current.chars))
        value = psi(profile.tokens.distribution, tokens.distribution)
        js = js_distance(profile.tokens.distribution, tokens.distribution)
        ks, ks_p = (None, None)
        if tokens.values is not None:  # always, for the numeric profile of the lengths
            ks, ks_p = ks_2samp_sorted(profile.tokens.sample, tokens.values)
        present = current.tokens[~np.isnan(current.tokens)]
        sample = profile.tokens.sample
        evidence: dict[str, float | int | str | None] = {
            "js": js,
            "ks": ks,
            "chars_psi": psi(profile.chars.distribution, chars.distribution),
            "median_tokens_reference": float(np.median(sample)) if sample.size else None,
            "median_tokens_current": float(np.median(present)) if present.size else None,
        }
        drifted = value >= self.psi_significant and js >= self.js_threshold
        return DriftCheck(self.alias, value, ks_p, self.psi_significant, drifted, evidence)


@TEXT_DRIFT_TESTS.register("unknown_tokens")
@dataclass(frozen=True)
class UnknownTokenTest(BaseTextDriftTest):
    """The change in the share of tokens the base tokenizer does not know.

    The statistic is ``|share now - share in the reference|``; drifted when it reaches
    ``min_change`` (the check's threshold) and a two-sided z-test gives ``p < alpha``.
    Each share is a ratio of sums over texts, and its variance is that of a ratio
    estimator with texts as the draws (:func:`unknown_ratio`): the tokens of one text are
    not independent, so a test counting tokens as draws would flag noise.
    """

    alpha: float = 0.01
    min_change: float = 0.01

    def compute(self, profile: TextProfile, current: TextFeatures) -> DriftCheck:
        """The absolute change and its p-value; None when either side has no token."""
        n_tokens, n_unknown, variance = unknown_ratio(current.tokens, current.unknown)
        evidence: dict[str, float | int | str | None] = {
            "alpha": self.alpha,
            "tokens_reference": profile.n_tokens,
            "tokens_current": n_tokens,
        }
        if n_tokens == 0 or profile.n_tokens == 0:
            return DriftCheck(self.alias, None, None, self.min_change, False, evidence)
        before = profile.unknown_share
        now = n_unknown / n_tokens
        change = now - before
        error = math.sqrt(profile.unknown_variance + variance)
        if error > 0:
            p_value = math.erfc(abs(change) / error / math.sqrt(2.0))
        else:
            p_value = 1.0 if change == 0 else 0.0
        evidence.update(share_reference=before, share_current=now, change=change)
        drifted = abs(change) >= self.min_change and p_value < self.alpha
        return DriftCheck(self.alias, abs(change), p_value, self.min_change, drifted, evidence)


# -- the statistics, on plain arrays ----------------------------------------------------------


def mmd_permutation_test(
    reference: np.ndarray, current: np.ndarray, *, permutations: int = 300, seed: int = 0
) -> MMDResult:
    """Squared MMD of two samples (rows), RBF kernel, p-value by seeded permutations.

    The kernel is ``exp(-|x - y|^2 / (2 s^2))`` with ``s^2`` the median squared distance
    between distinct points of the pooled sample (the median heuristic; it depends only on
    the pool, so it is the same under every permutation). The statistic is the biased
    estimate ``mean K(X, X) + mean K(Y, Y) - 2 mean K(X, Y)``, 0 for equal samples. Every
    permutation reassigns the pooled rows to the two sides; all of them are evaluated at
    once as ``a' K a`` for the indicator vectors ``a`` of the reference side (one matrix
    product per 100 permutations): 1,000 x 1,000 rows of 384 dimensions with 300
    permutations take 0.2 to 0.7 s on two shared cores (``benchmarks/text_drift.py``).
    """
    x = np.asarray(reference, dtype=np.float64)
    y = np.asarray(current, dtype=np.float64)
    m, n = x.shape[0], y.shape[0]
    if m == 0 or n == 0:
        raise ValueError("both samples need at least one row")
    pool = np.vstack([x, y])
    size = m + n
    kernel = pool @ pool.T
    norms = np.einsum("ij,ij->i", pool, pool)
    kernel *= -2.0
    kernel += norms[:, None]
    kernel += norms[None, :]
    np.maximum(kernel, 0.0, out=kernel)
    scale = _median_off_diagonal(kernel)
    if scale == 0.0:  # every row equal: nothing tells the two samples apart
        return MMDResult(0.0, 1.0, 0.0)
    np.exp(kernel * (-0.5 / scale), out=kernel)
    rows = kernel.sum(axis=1)
    total = float(rows.sum())

    def statistics(sides: np.ndarray) -> np.ndarray:
        within = np.einsum("pn,pn->p", sides @ kernel, sides)
        mixed = sides @ rows - within
        other = total - 2.0 * (sides @ rows) + within
        out: np.ndarray = within / m**2 + other / n**2 - 2.0 * mixed / (m * n)
        return out

    observed_side = np.zeros((1, size))
    observed_side[0, :m] = 1.0
    observed = float(statistics(observed_side)[0])
    rng = np.random.default_rng(seed)
    reached = 0
    for start in range(0, permutations, 100):
        count = min(100, permutations - start)
        order = rng.permuted(np.tile(np.arange(size), (count, 1)), axis=1)
        sides = np.zeros((count, size))
        np.put_along_axis(sides, order[:, :m], 1.0, axis=1)
        reached += int(np.count_nonzero(statistics(sides) >= observed - _TIE))
    p_value = (1 + reached) / (1 + permutations)
    return MMDResult(max(observed, 0.0), float(p_value), math.sqrt(scale))


def _median_off_diagonal(squared: np.ndarray) -> float:
    """The median of the off-diagonal entries of a symmetric matrix with a zero diagonal.

    Each distinct pair appears twice and the ``size`` zeros of the diagonal sort first,
    so the pairs' median sits at fixed ranks of the whole matrix: one ``np.partition``.
    Falls back to the mean of the positive entries when that median is 0 (more than half
    the pairs equal), and to 0 when every entry is.
    """
    size = squared.shape[0]
    if size < 2:
        return 0.0
    half = size * (size - 1) // 2
    ranks = [size + half - 1, size + half]
    parted = np.partition(squared.ravel(), ranks)
    median = float(parted[ranks].mean())
    if median > 0.0:
        return median
    positive = squared[squared > 0.0]
    return float(positive.mean()) if positive.size else 0.0


def unknown_ratio(tokens: np.ndarray, unknown: np.ndarray) -> tuple[int, int, float]:
    """Tokens, unknown tokens and the variance of their ratio, over the present rows.

    The ratio ``r = sum(u) / sum(t)`` is estimated from texts; its variance (linearised,
    with the ``n / (n - 1)`` correction) is ``n / (n - 1) * sum((u - r t)^2) / sum(t)^2``,
    0 with fewer than two texts.
    """
    present = ~np.isnan(tokens)
    t = np.asarray(tokens[present], dtype=np.float64)
    u = np.asarray(unknown[present], dtype=np.float64)
    n_tokens, n_unknown = int(t.sum()), int(u.sum())
    if n_tokens == 0 or t.size < 2:
        return n_tokens, n_unknown, 0.0
    ratio = n_unknown / n_tokens
    residual = u - ratio * t
    variance = t.size / (t.size - 1) * float(residual @ residual) / n_tokens**2
    return n_tokens, n_unknown, variance


# -- measuring texts ------------------------------------------------------------------------


def text_columns(columns: Sequence[ColumnSchema], text_column: str | None = None) -> list[str]:
    """The free-text columns among ``columns``: of kind ``text``, or the ``data.text``
    column (read as text by the model whatever kind its values suggested)."""
    return [c.name for c in columns if c.kind == "text" or c.name == text_column]


def text_features(
    texts: pd.Series | Sequence[Any], encoder: TextEncoder, *, sample: int = 1000, seed: int = 0
) -> TextFeatures:
    """Measure ``texts`` with ``encoder``'s tokenizer, and embed a seeded sample of them.

    Missing values (None, NaN) are missing texts; other values are read as strings.
    At most ``sample`` present texts are embedded, chosen with ``seed``.
    """
    values = list(texts)
    size = len(values)
    present = [i for i, v in enumerate(values) if not _is_missing(v)]
    strings = [str(values[i]) for i in present]
    chars = np.full(size, np.nan)
    tokens = np.full(size, np.nan)
    unknown = np.full(size, np.nan)
    tokenizer = encoder.tokenizer
    unk = tokenizer.unk_token_id
    for start in range(0, len(strings), _TOKENIZE_BATCH):
        batch = strings[start : start + _TOKENIZE_BATCH]
        ids = tokenizer(
            batch,
            add_special_tokens=False,
            truncation=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )["input_ids"]
        rows = present[start : start + _TOKENIZE_BATCH]
        chars[rows] = [len(text) for text in batch]
        tokens[rows] = [len(row) for row in ids]
        unknown[rows] = [row.count(unk) if unk is not None else 0 for row in ids]
    chosen = _sample_rows(len(strings), sample, seed)
    # encoded shortest first, so that each batch pads to a similar length, then put back
    lengths = tokens[np.asarray(present, dtype=np.int64)[chosen]]
    order = np.argsort(lengths, kind="stable")
    embedded = np.empty((chosen.size, encoder.dimension), dtype=np.float32)
    embedded[order] = encoder.encode([strings[i] for i in chosen[order]])
    embeddings = embedded.astype(np.float16).astype(np.float32)
    return TextFeatures(chars, tokens, unknown, embeddings)


def text_profile(
    name: str,
    features: TextFeatures,
    *,
    base: str,
    base_sha256: str,
    max_length: int,
    bins: int = 10,
    sample: int = 1000,
    seed: int = 0,
) -> TextProfile:
    """The reference of text column ``name`` from its measured training texts.

    The lengths are profiled as numeric columns (:func:`build_reference`, ``bins``
    quantile bins); at most ``sample`` embeddings are kept (a seeded sample), as float16.

    Raises:
        DataError: ``features`` has no row.
    """
    if features.n == 0:
        raise DataError(
            f"text column '{name}' has no reference rows",
            column=name,
            expected="the training texts of the model",
            received="0 rows",
            fix="Build the reference from the rows the model was trained on.",
        )
    lengths = pd.DataFrame({f"{name}.chars": features.chars, f"{name}.tokens": features.tokens})
    schema = [ColumnSchema(str(c), "numeric", "float64", True, 0) for c in lengths.columns]
    profiled = build_reference(lengths, schema, bins=bins, seed=seed)
    n_tokens, n_unknown, variance = unknown_ratio(features.tokens, features.unknown)
    kept = _sample_rows(features.embeddings.shape[0], sample, seed)
    return TextProfile(
        name=name,
        chars=profiled[f"{name}.chars"],
        tokens=profiled[f"{name}.tokens"],
        n_tokens=n_tokens,
        n_unknown=n_unknown,
        unknown_variance=variance,
        embeddings=frozen_embeddings(features.embeddings[kept]),
        base=base,
        base_sha256=base_sha256,
        max_length=max_length,
    )


def profile_text_columns(
    reference: ReferenceProfile,
    frame: pd.DataFrame,
    names: Sequence[str],
    *,
    base: BaseCheckpoint | str | None = None,
    root: Path | None = None,
    max_length: int | None = None,
    device: str | None = None,
    sample: int = 1000,
) -> ReferenceProfile:
    """``reference`` with a :class:`TextProfile` for each text column in ``names``.

    Builds on the training rows ``frame`` with the checkpoint ``base`` names
    (``model.base``, relative to ``root``; None for the default; a checkpoint already
    resolved and hashed is used as it is), reading ``max_length``
    tokens per text (default 128, capped by the base's own maximum); the seed and the bins
    are the reference's. The columns leave ``columns`` and ``skipped``.

    Registering a model never fails on its monitoring profile: when the ``text`` extra is
    missing or the base cannot be loaded, the columns stay in ``skipped`` with the reason.

    Raises:
        DataError: a column of ``names`` is not in ``frame``.
    """
    names = list(dict.fromkeys(names))
    if not names:
        return reference
    absent = [n for n in names if n not in frame.columns]
    if absent:
        raise DataError(
            f"text column '{absent[0]}' is not in the reference frame",
            column=absent[0],
            expected="every text column in the frame",
            received="columns: " + ", ".join(map(str, frame.columns)),
            fix="Pass the training rows with their text columns.",
        )
    columns = tuple(c for c in reference.columns if c.name not in names)
    kept = [s for s in reference.skipped if s.name not in names]
    try:
        checkpoint = base if isinstance(base, BaseCheckpoint) else resolve_base(base, root=root)
        length = min(max_length or DEFAULT_MAX_LENGTH, checkpoint.max_length)
        encoder = TextEncoder(checkpoint, max_length=length, device=device)
        profiles = [
            text_profile(
                name,
                text_features(
                    frame[name], encoder, sample=sample, seed=_stream(reference.seed, name)
                ),
                base=checkpoint.source,
                base_sha256=checkpoint.sha256,
                max_length=length,
                bins=reference.bins,
                sample=sample,
                seed=reference.seed,
            )
            for name in names
        ]
    except (ConfigError, MissingDependencyError) as exc:
        reason = f"free text is not profiled: its drift needs the base checkpoint ({exc})"
        skipped = (*kept, *(SkippedColumn(name, "text", reason) for name in names))
        return replace(reference, columns=columns, skipped=skipped)
    text = (*(t for t in reference.text if t.name not in names), *profiles)
    return replace(reference, columns=columns, skipped=tuple(kept), text=text)


# -- a window against the reference -------------------------------------------------------------


@dataclass(frozen=True)
class TextDriftConfig:
    """How free-text columns are tested (the text part of a drift check's configuration).

    Attributes:
        alpha: the significance level of the MMD and unknown-token tests.
        permutations: the permutations of the MMD test (its smallest p-value is
            ``1 / (permutations + 1)``).
        sample: the most window texts embedded per column (a seeded sample).
        min_unknown_change: the change in the unknown-token share that counts as drift.
        seed: the seed of the window sample and of the permutations.
    """

    alpha: float = 0.01
    permutations: int = 300
    sample: int = 1000
    min_unknown_change: float = 0.01
    seed: int = 0

    def validate(self) -> None:
        """Raise a :class:`ConfigError` naming the field when a value is out of range."""
        floor = 1.0 / (self.permutations + 1) if self.permutations >= 1 else 1.0
        checks = (
            ("permutations", self.permutations >= 1, "an integer >= 1"),
            ("alpha", floor < self.alpha < 1, f"a number in ({floor:.3g}, 1)"),
            ("sample", self.sample >= 2, "an integer >= 2"),
            ("min_unknown_change", 0 < self.min_unknown_change <= 1, "a number in (0, 1]"),
        )
        for key, ok, expected in checks:
            if not ok:
                raise ConfigError(
                    f"text drift setting {key} is out of range",
                    key=key,
                    expected=expected,
                    received=getattr(self, key),
                    fix=f"Pass {key} as {expected}"
                    + (" (alpha must exceed the smallest permutation p-value)."
                       if key == "alpha" else "."),
                )

    def tests(self, thresholds: DriftThresholds) -> tuple[BaseTextDriftTest, ...]:
        """The tests of a text column, the primary (``mmd``) first."""
        return (
            MMDTest(alpha=self.alpha, permutations=self.permutations, seed=self.seed),
            LengthDriftTest(
                psi_significant=thresholds.psi_significant, js_threshold=thresholds.js_threshold
            ),
            UnknownTokenTest(alpha=self.alpha, min_change=self.min_unknown_change),
        )


def text_column_drift(
    profile: TextProfile,
    current: TextFeatures,
    tests: Sequence[BaseTextDriftTest],
    thresholds: DriftThresholds,
) -> ColumnDrift:
    """One text column's drift: every test's check, in a :class:`ColumnDrift` of kind text.

    ``psi``/``js``/``severity`` are those of the length in tokens; ``test``,
    ``statistic`` and ``p_value`` those of the first drifted check, else of the first;
    drifted (and then ``significant``) when any check drifted.
    """
    if not tests:
        raise ValueError("a text column needs at least one test")
    checks = tuple(test.compute(profile, current) for test in tests)
    lead = next((c for c in checks if c.drifted), checks[0])
    lengths = CurrentColumn.from_series(profile.tokens, pd.Series(current.tokens))
    value = psi(profile.tokens.distribution, lengths.distribution) if current.n else 0.0
    js = js_distance(profile.tokens.distribution, lengths.distribution) if current.n else 0.0
    drifted = any(c.drifted for c in checks)
    return ColumnDrift(
        name=profile.name,
        role="feature",
        kind="text",
        psi=value,
        js=js,
        test=lead.test,
        statistic=lead.statistic,
        p_value=lead.p_value,
        severity="significant" if drifted else thresholds.severity(value),
        drifted=drifted,
        missing_reference=profile.missing_share,
        missing_current=current.n_missing / current.n if current.n else 0.0,
        checks=checks,
    )


def add_text_drift(
    report: DriftReport,
    reference: ReferenceProfile,
    current: pd.DataFrame,
    *,
    base: BaseCheckpoint | str | None = None,
    root: Path | None = None,
    device: str | None = None,
    config: TextDriftConfig | None = None,
) -> DriftReport:
    """``report`` with the drift of every profiled text column of ``reference`` added.

    Each text column of the window ``current`` is measured with the base checkpoint
    (``base``, or the one the profile names, resolved relative to ``root``) and tested
    (:meth:`TextDriftConfig.tests`, with the report's thresholds); its row joins the
    features, before the model outputs. Nothing is added to a report whose window was too
    small. A column whose base cannot be loaded, or whose weights differ from those the
    reference was embedded with, is added to ``skipped`` with the reason instead.

    Raises:
        ConfigError: a setting of ``config`` out of range.
        DataError: a profiled text column is not in ``current``.
    """
    config = config or TextDriftConfig()
    config.validate()
    if not reference.text or not report.checked:
        return report
    absent = [t.name for t in reference.text if t.name not in current.columns]
    if absent:
        raise DataError(
            f"text column '{absent[0]}' of the reference is not in the current window",
            column=absent[0],
            expected="every profiled text column",
            received="columns: " + ", ".join(map(str, current.columns)),
            fix="Pass the logged inputs with the training column names.",
        )
    tests = config.tests(report.thresholds)
    added: list[ColumnDrift] = []
    skipped = list(report.skipped)
    encoders: dict[tuple[str, int], TextEncoder] = {}
    for profile in reference.text:
        try:
            encoder = _encoder(profile, base, root, device, encoders)
            features = text_features(
                current[profile.name],
                encoder,
                sample=config.sample,
                seed=_stream(config.seed, profile.name),
            )
        except _BaseChanged as exc:
            skipped.append(SkippedColumn(profile.name, "text", str(exc)))
            continue
        except (ConfigError, MissingDependencyError) as exc:
            reason = (
                f"the base checkpoint '{profile.base}' the text reference was embedded "
                f"with cannot be loaded ({exc})"
            )
            skipped.append(SkippedColumn(profile.name, "text", reason))
            continue
        added.append(text_column_drift(profile, features, tests, report.thresholds))
    features_end = sum(1 for c in report.columns if c.role == "feature")
    columns = (*report.columns[:features_end], *added, *report.columns[features_end:])
    return replace(report, columns=columns, skipped=tuple(skipped))


class _BaseChanged(Exception):
    """The window would be embedded by other weights than the reference was."""


def _encoder(
    profile: TextProfile,
    base: BaseCheckpoint | str | None,
    root: Path | None,
    device: str | None,
    cache: dict[tuple[str, int], TextEncoder],
) -> TextEncoder:
    checkpoint = (
        base if isinstance(base, BaseCheckpoint) else resolve_base(base or profile.base, root=root)
    )
    if checkpoint.sha256 != profile.base_sha256:
        raise _BaseChanged(
            f"the reference embeddings come from base '{profile.base}' (weights sha256 "
            f"{profile.base_sha256[:12]}), the window would be embedded by "
            f"'{checkpoint.source}' (sha256 {checkpoint.sha256[:12]}): embeddings of two "
            "models are not comparable. Point model.base back at the reference's "
            "checkpoint, or re-register the model to rebuild its reference"
        )
    key = (checkpoint.sha256, profile.max_length)
    if key not in cache:
        cache[key] = TextEncoder(checkpoint, max_length=profile.max_length, device=device)
    return cache[key]


def _sample_rows(size: int, sample: int, seed: int) -> np.ndarray:
    """Up to ``sample`` of ``range(size)``, seeded, in order."""
    if size <= sample:
        return np.arange(size)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(size, size=sample, replace=False))


def _stream(seed: int, name: str) -> int:
    """A seed of its own for column ``name``: adding a column changes no other sample."""
    return int(np.random.SeedSequence([seed, zlib.crc32(name.encode())]).generate_state(1)[0])


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)
