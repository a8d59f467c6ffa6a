"""Which raw input column each output of a fitted preprocessing step comes from.

The model sees the preprocessed matrix (one-hot levels, missing indicators, date parts,
TF-IDF terms); a user asks about the raw columns. :func:`column_map` names, for each
preprocessed column, the raw column it derives from, so attributions computed on the
matrix are summed back to the columns of the request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer

from assay.errors import AssayError

__all__ = ["column_map", "group_matrix"]

_MARK = re.compile("\x1f(\\d+)\x1f")


def _mark(index: int) -> str:
    # a name no real column or category holds: the unit separator around the column's index
    return f"\x1f{index}\x1f"


def column_map(preprocess: Any, features: Sequence[str], width: int) -> np.ndarray:
    """For each of the ``width`` columns ``preprocess`` outputs, the index in ``features`` of
    the raw column it comes from.

    Each branch of the fitted ColumnTransformer is asked for its output names with every
    input column renamed to a unique mark: one-hot levels, missing indicators and date
    parts carry their column's mark; a branch of one column (TF-IDF terms) maps wholly to it.
    """
    index = {name: i for i, name in enumerate(features)}
    if not isinstance(preprocess, ColumnTransformer):
        raise _unmappable(f"a {type(preprocess).__name__} preprocessing step")
    owners: list[int] = []
    for name, transformer, columns in preprocess.transformers_:
        if name == "remainder" or transformer == "drop":
            continue
        cols = [str(c) for c in np.atleast_1d(columns)]
        positions = [index[c] for c in cols if c in index]
        if len(positions) != len(cols):
            raise _unmappable(f"branch {name!r} reads columns that are not model inputs")
        marks = [_mark(p) for p in positions]
        try:
            outputs = [str(o) for o in transformer.get_feature_names_out(marks)]
        except Exception as exc:  # noqa: BLE001 - a step without output names cannot be mapped
            raise _unmappable(f"branch {name!r} ({type(exc).__name__}: {exc})") from exc
        for out in outputs:
            if len(positions) == 1:
                owners.append(positions[0])
                continue
            found = _MARK.search(out)
            if found is None:
                raise _unmappable(f"branch {name!r} output {out!r} names no input column")
            owners.append(int(found.group(1)))
    if len(owners) != width:
        raise _unmappable(f"{len(owners)} named outputs for a matrix of {width} columns")
    return np.asarray(owners, dtype=int)


def group_matrix(owners: np.ndarray, n_features: int) -> np.ndarray:
    """The 0/1 matrix (preprocessed columns x raw columns) that sums attributions per column."""
    matrix = np.zeros((len(owners), n_features))
    matrix[np.arange(len(owners)), owners] = 1.0
    return matrix


def _unmappable(detail: str) -> AssayError:
    return AssayError(
        "the model's preprocessing cannot be traced back to its input columns",
        where="explanation",
        received=detail,
        fix="Explain a model built by assay's model families (its preprocessing is traceable).",
    )
