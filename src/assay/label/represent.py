"""A numeric picture of rows in which distance means "similar": what the queue diversifies in.

It does not depend on the model family, so the queue behaves the same for a linear model,
boosted trees or a fine-tuned transformer, and it never runs a transformer over the pool:

* **text**: TF-IDF of the text (sublinear term frequencies, words and word pairs) reduced
  by truncated SVD (latent semantic analysis), each row scaled to unit length, so distance
  follows the angle between documents;
* **tabular**: numbers (integers, booleans, dates as seconds) centred on the median and
  divided by the spread (the interquartile range, else the standard deviation), clipped at
  +-5 so an outlier does not own an axis, missing values at the centre; categories one-hot
  (the 30 most frequent levels), each level scaled so that a change of category weighs
  about as much as one spread of a number; reduced by truncated SVD when wider than ``dims``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["representation", "text_representation", "tabular_representation"]

#: the most frequent category levels one-hot encoded per column
MAX_LEVELS = 30


def representation(
    frame: pd.DataFrame,
    columns: Sequence[str],
    *,
    text_column: str | None = None,
    dims: int = 32,
    seed: int = 0,
) -> np.ndarray:
    """The rows of ``frame`` as a (rows, <= dims) float array: text when ``text_column``
    is given, else the tabular ``columns``."""
    if text_column is not None:
        return text_representation(frame[text_column], dims=dims, seed=seed)
    return tabular_representation(frame, columns, dims=dims, seed=seed)


def text_representation(texts: pd.Series, *, dims: int = 32, seed: int = 0) -> np.ndarray:
    """TF-IDF + truncated SVD of ``texts``, rows of unit length."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs = texts.fillna("").astype(str).to_numpy()
    n = docs.size
    if n == 0:
        return np.zeros((0, 1))
    vectorizer = TfidfVectorizer(
        sublinear_tf=True, min_df=2 if n >= 50 else 1, ngram_range=(1, 2), max_features=50_000
    )
    try:
        matrix = vectorizer.fit_transform(docs)
    except ValueError:  # no word in any text
        return np.zeros((n, 1))
    k = min(dims, matrix.shape[1] - 1, n - 1)
    if k < 1:
        dense = np.asarray(matrix.todense(), dtype=np.float64)
    else:
        dense = TruncatedSVD(n_components=k, random_state=seed).fit_transform(matrix)
    return _unit_rows(dense)


def tabular_representation(
    frame: pd.DataFrame, columns: Sequence[str], *, dims: int = 32, seed: int = 0
) -> np.ndarray:
    """Robustly standardised numbers and one-hot categories (see the module doc)."""
    parts: list[np.ndarray] = []
    for name in columns:
        series = frame[name]
        numeric = _as_number(series)
        if numeric is not None:
            parts.append(_standardised(numeric)[:, None])
        else:
            parts.append(_one_hot(series))
    if not parts:
        return np.zeros((len(frame), 1))
    matrix = np.hstack(parts)
    if matrix.shape[1] > dims and len(frame) > dims:
        from sklearn.decomposition import TruncatedSVD

        matrix = TruncatedSVD(n_components=dims, random_state=seed).fit_transform(matrix)
    return np.asarray(matrix, dtype=np.float64)


def _as_number(series: pd.Series) -> np.ndarray | None:
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return np.asarray(series.astype(float).to_numpy(), dtype=np.float64)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        values = series.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(np.float64)
        values[series.isna().to_numpy()] = np.nan
        return np.asarray(values / 1e9)
    if pd.api.types.is_numeric_dtype(dtype):
        return np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan))
    return None


def _standardised(values: np.ndarray) -> np.ndarray:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.zeros(values.size)
    centre = float(np.median(finite))
    q1, q3 = np.percentile(finite, [25, 75])
    spread = float(q3 - q1) or float(finite.std()) or 1.0
    out = (values - centre) / spread
    out[~np.isfinite(out)] = 0.0
    return np.asarray(np.clip(out, -5.0, 5.0))


def _one_hot(series: pd.Series) -> np.ndarray:
    text = series.astype("string").fillna("<missing>")
    levels = text.value_counts().index[:MAX_LEVELS]
    codes = pd.Categorical(text, categories=levels).codes
    out = np.zeros((len(series), len(levels)))
    rows = np.flatnonzero(codes >= 0)
    out[rows, codes[rows]] = 1.0 / np.sqrt(2.0)  # two changed entries: distance 1
    return out


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.asarray(matrix / np.where(norms > 0, norms, 1.0), dtype=np.float64)
