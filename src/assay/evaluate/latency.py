"""How fast a model answers: one row at a time (as the server calls it) and in batches."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from assay.errors import DataError

__all__ = ["LatencyReport", "measure_latency"]


@dataclass(frozen=True)
class LatencyReport:
    """Single-row latency percentiles and batch throughput.

    ``method`` is the call that was timed: ``predict_proba`` for classifiers, else
    ``predict``. Times are wall-clock on the machine that ran the evaluation. Each sampled
    row is timed ``single_repeats`` times and its fastest call kept, so a percentile
    describes the rows (a slow row stays slow) rather than moments when another process had
    the CPU.
    """

    method: str
    n_single: int
    single_p50_ms: float
    single_p99_ms: float
    single_mean_ms: float
    batch_size: int
    batch_rows_per_s: float
    batch_ms_per_row: float
    single_repeats: int = 1

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyReport:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


def measure_latency(
    model: Any,
    X: pd.DataFrame,
    n_single: int = 200,
    batch_size: int = 1000,
    seed: int = 0,
    batch_repeats: int = 3,
    single_repeats: int = 3,
) -> LatencyReport:
    """Time ``n_single`` one-row calls and ``batch_repeats`` calls on ``batch_size`` rows.

    Rows are drawn from ``X`` with ``seed`` (with replacement when ``X`` is smaller).
    Each row is called ``single_repeats`` times in turn (row 1, row 2, ..., then again) and
    its fastest call kept; the fastest batch call is kept too. On a shared machine the other
    calls mostly measure interference: a latency gate judged on them fails a model for what
    the machine was doing, while a row that is slow every time still counts in full.
    """
    if not isinstance(X, pd.DataFrame) or len(X) == 0:
        raise DataError(
            "latency is measured on a non-empty DataFrame of features",
            column="X",
            expected="a pandas DataFrame with at least one row",
            received=type(X).__name__ if not isinstance(X, pd.DataFrame) else "0 rows",
            fix="Pass some evaluation rows.",
        )
    method = "predict_proba" if hasattr(model, "predict_proba") else "predict"
    call = getattr(model, method)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(X), size=max(n_single, 1))
    singles = [X.iloc[[int(i)]] for i in picks]
    call(singles[0])  # warm-up: lazy initialisation is not latency
    repeats = max(single_repeats, 1)
    timings = np.full(len(singles), np.inf)
    for _ in range(repeats):
        for k, row in enumerate(singles):
            start = time.perf_counter()
            call(row)
            timings[k] = min(timings[k], (time.perf_counter() - start) * 1000.0)
    batch = X.iloc[rng.integers(0, len(X), size=max(batch_size, 1))]
    best = np.inf
    for _ in range(max(batch_repeats, 1)):
        start = time.perf_counter()
        call(batch)
        best = min(best, time.perf_counter() - start)
    best = max(best, 1e-9)
    return LatencyReport(
        method=method,
        n_single=len(singles),
        single_p50_ms=float(np.percentile(timings, 50)),
        single_p99_ms=float(np.percentile(timings, 99)),
        single_mean_ms=float(timings.mean()),
        batch_size=len(batch),
        batch_rows_per_s=float(len(batch) / best),
        batch_ms_per_row=float(best * 1000.0 / len(batch)),
        single_repeats=repeats,
    )
