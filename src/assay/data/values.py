"""One home for value coercion: NumPy scalars to Python values, and the boolean vocabulary.

Preprocessing, validation, the fast path, the audit, evaluation and monitoring all turn
NumPy and pandas values into plain Python ones (labels in JSON answers, evidence in
reports, class keys) and read the same words as true or false. They do it here, so a
label or a boolean means the same thing at every stage boundary.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["FALSE_WORDS", "TRUE_WORDS", "label_text", "native", "native_array", "parse_bool"]

#: Texts read as true (after trimming and lower-casing), by preprocessing and validation.
TRUE_WORDS: frozenset[str] = frozenset({"true", "1", "1.0", "yes", "y", "t"})
#: Texts read as false (after trimming and lower-casing).
FALSE_WORDS: frozenset[str] = frozenset({"false", "0", "0.0", "no", "n", "f"})


def parse_bool(text: str) -> bool | None:
    """``text`` as a boolean by :data:`TRUE_WORDS` and :data:`FALSE_WORDS`; None if neither.

    Case and surrounding space do not matter: ``" Yes "`` is True, ``"F"`` is False.
    """
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def label_text(value: object) -> str:
    """The text form of a label or item id: ``3``, ``3.0`` and ``"3"`` are one class.

    Annotation files, the store and the project data meet on this form: an item id read
    as the integer 17 from the data and as the text ``"17"`` from an export is one item.
    """
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return str(value).strip()


def native(
    value: Any,
    *,
    missing_as_none: bool = False,
    iso_timestamps: bool = False,
    sequences: bool = False,
) -> Any:
    """``value`` as a plain Python value: a NumPy scalar becomes the matching Python one.

    ``np.int64(3)`` gives ``3`` (an ``int``), ``np.bool_(True)`` gives ``True``, a NumPy
    float gives a ``float`` (NaN stays NaN); anything else is returned unchanged unless
    an option says otherwise:

    - ``missing_as_none``: a missing value (None, NaN of any float type, ``pd.NA``,
      ``pd.NaT``, as :func:`pandas.isna` sees a scalar) becomes None;
    - ``iso_timestamps``: a :class:`pandas.Timestamp` becomes its ISO text;
    - ``sequences``: a list or tuple becomes a list of converted items (recursively).
    """
    if missing_as_none and _isna(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    if iso_timestamps and isinstance(value, pd.Timestamp):
        return value.isoformat()
    if sequences and isinstance(value, (list, tuple)):
        return [
            native(
                v,
                missing_as_none=missing_as_none,
                iso_timestamps=iso_timestamps,
                sequences=True,
            )
            for v in value
        ]
    return value


def native_array(values: np.ndarray) -> np.ndarray:
    """An object array as the array NumPy infers for its items (int, float, str, bool).

    scikit-learn's metrics reject object arrays of labels; other arrays pass unchanged.
    """
    return np.asarray(values.tolist()) if values.dtype == object else values


def _isna(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # an array-like cell: not a single missing value
        return False
