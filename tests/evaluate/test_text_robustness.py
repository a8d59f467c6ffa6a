"""Text robustness and length slices: known answers from a model that reads one word."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from assay.evaluate import evaluate
from assay.evaluate.robustness import robustness


class _SaysGood:
    """Predicts "pos" when the text contains the exact, case-sensitive word "good"."""

    classes_ = np.array(["neg", "pos"])

    def __init__(self, column: str = "review") -> None:
        self.column = column

    def _hits(self, X: pd.DataFrame) -> np.ndarray:
        return np.array(
            [isinstance(t, str) and "good" in t.replace(".", " ").split() for t in X[self.column]]
        )

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.where(self._hits(X), "pos", "neg")

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        hits = self._hits(X).astype(float)
        return np.column_stack([1 - hits, hits])


def _rows(n: int = 200) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    texts, labels = [], []
    for i in range(n):
        positive = i % 2 == 0
        filler = " ".join(rng.choice(["the", "plot", "was", "acting", "film"], size=i % 7 + 1))
        # the deciding word comes last: truncating to half the words removes it
        texts.append(f"{filler} {'good' if positive else 'poor'}.")
        labels.append("pos" if positive else "neg")
    return pd.DataFrame({"review": texts, "stars": rng.integers(1, 5, n)}), np.array(labels)


def _case(report: Any, name: str) -> Any:
    return report.case(name)


def test_each_text_case_moves_the_score_the_way_the_model_says_it_must() -> None:
    X, y = _rows()
    report = robustness(_SaysGood(), X, y, "binary", "accuracy", text_columns=["review"])
    assert report.clean == 1.0
    assert _case(report, "lowercase:review").value == 1.0  # already lower case
    assert _case(report, "no_punctuation:review").value == 1.0  # the word survives
    # upper case hides "good": every positive becomes negative
    assert _case(report, "uppercase:review").value == 0.5
    assert _case(report, "truncated:review").value == 0.5
    typo = _case(report, "typos:review").value
    assert 0.5 <= typo <= 1.0  # "good" has 4 letters, so some are misspelt
    assert report.worst_case in {"uppercase:review", "truncated:review", "missing:review"}
    # the numeric column gets its numeric cases, the text column none of them
    assert "noise" in {c.name for c in report.cases}
    assert all(c.kind == "text" for c in report.cases if c.name.endswith(":review") and
               not c.name.startswith("missing"))


def test_typos_are_reproducible_with_the_seed() -> None:
    X, y = _rows()
    first = robustness(_SaysGood(), X, y, "binary", "accuracy", text_columns=["review"], seed=3)
    again = robustness(_SaysGood(), X, y, "binary", "accuracy", text_columns=["review"], seed=3)
    assert _case(first, "typos:review").value == _case(again, "typos:review").value


def test_evaluation_slices_text_by_length() -> None:
    X, y = _rows()
    result = evaluate(
        _SaysGood(), X, y, task="binary", n_boot=0, text_columns=["review"], min_slice_size=5
    )
    lengths = [s for s in result.slices if s.column == "length:review"]
    assert lengths, [s.column for s in result.slices]
    assert {lv.level for lv in lengths[0].levels} == {"short", "long"}
    assert result.latency is not None and result.latency.batch_size == 32
