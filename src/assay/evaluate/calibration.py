"""Calibration of a classifier's probabilities: the ECE of a set of rows, and what
recalibration changed.

:func:`probability_ece` measures the expected calibration error exactly as the
evaluation's reliability curve does (binary: the positive class's probability;
more classes: the top label's). :class:`Recalibration` records the error before and
after recalibration on the validation rows (where the decision was taken) and on the
sealed test rows (what the calibration gate judges).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from assay.evaluate.curves import expected_calibration_error

__all__ = ["Recalibration", "probability_ece"]


def probability_ece(y_true: Any, proba: Any, classes: Sequence[Any]) -> float | None:
    """The expected calibration error of ``proba`` (columns in ``classes`` order) on ``y_true``.

    None when there are no rows or the probabilities do not have one column per class.
    """
    yt = np.asarray(y_true, dtype=object)
    pr = np.asarray(proba, dtype=float)
    labels = np.asarray(list(classes), dtype=object)
    if len(yt) == 0 or pr.ndim != 2 or pr.shape != (len(yt), len(labels)):
        return None
    if len(labels) == 2:
        positive, prob = yt == labels[1], pr[:, 1]
    else:
        top = pr.argmax(axis=1)
        positive, prob = yt == labels[top], pr[np.arange(len(yt)), top]
    return expected_calibration_error(positive, np.clip(prob, 0.0, 1.0))


@dataclass(frozen=True)
class Recalibration:
    """What recalibrating the chosen classifier did to its expected calibration error.

    Attributes:
        max_ece: the configured limit (``calibration.max_ece``).
        method: the calibrator fitted (``isotonic`` or ``sigmoid``).
        adopted: whether the recalibrated model is the registered one (it lowered the
            cross-validated error on the validation rows).
        validation_before: the chosen model's ECE on the validation rows.
        validation_after: the recalibrated ECE on the validation rows, out of fold (each
            fold scored by a calibrator fitted on the other folds).
        test_before, test_after: the ECE on the sealed test rows of the chosen model and
            of the registered one (equal when not adopted).
        note: why nothing was adopted, or how the method was picked.
    """

    max_ece: float
    method: str
    adopted: bool
    validation_before: float | None
    validation_after: float | None
    test_before: float | None = None
    test_after: float | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recalibration:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)
