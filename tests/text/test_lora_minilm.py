"""LoRA on the real MiniLM encoder: one epoch on short reviews beats chance, the artifact is small."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from assay.text.checkpoint import resolve_base
from assay.train.text_models import TransformerTextClassifier

_POSITIVE = ["wonderful", "excellent", "delightful", "brilliant", "lovely", "superb", "fantastic"]
_NEGATIVE = ["terrible", "awful", "horrible", "dreadful", "boring", "disappointing", "miserable"]
_SUBJECTS = [
    "the movie",
    "this restaurant",
    "our hotel stay",
    "the concert",
    "the service",
    "that book",
    "my new phone",
    "the trip",
]
_TEMPLATES = [
    "{s} was {w}.",
    "honestly, {s} felt {w}",
    "I thought {s} was {w}",
    "{s} is {w} overall",
]


def reviews(rows: int, seed: int) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(rows):
        positive = bool(rng.integers(0, 2))
        word = rng.choice(_POSITIVE if positive else _NEGATIVE)
        texts.append(str(rng.choice(_TEMPLATES)).format(s=rng.choice(_SUBJECTS), w=word))
        labels.append("positive" if positive else "negative")
    return texts, np.array(labels)


@pytest.mark.slow
def test_lora_on_minilm_beats_chance_in_one_epoch_and_pickles_under_5_mb() -> None:
    X, y = reviews(200, seed=0)
    X_test, y_test = reviews(100, seed=1)
    # one thread: the test machines' two cores are shared, and a second thread mostly waits
    model = TransformerTextClassifier(
        resolve_base(None), epochs=1, validation_fraction=0.0, threads=1
    ).fit(X, y)
    assert np.mean(model.predict(X_test) == y_test) >= 0.7
    # rank 8 on query, key and value of 6 layers of width 384, and the head
    assert model.n_trainable_params_ == 6 * 3 * 8 * (384 + 384) + 384 * 2 + 2
    assert model.n_trainable_params_ < 0.01 * model.n_params_
    raw = pickle.dumps(model)
    assert len(raw) < 5 * 1024 * 1024
    copy = pickle.loads(raw)
    np.testing.assert_array_equal(copy.predict_proba(X_test), model.predict_proba(X_test))
