"""Text classifiers on a tiny random-weight checkpoint: they learn, stop early, pickle small."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from assay.errors import DataError, IntegrityError
from assay.testing.checkpoints import tiny_checkpoint
from assay.text.checkpoint import resolve_base
from assay.text.encoder import load_model
from assay.train.curves import curve_from_estimator, diagnose
from assay.train.text_models import (
    EmbeddingLinearClassifier,
    TransformerTextClassifier,
    _frozen_encoder,
    clear_embedding_cache,
)

WORDS = [
    *("the", "a", "movie", "film", "was", "is", "good", "great", "bad", "awful"),
    *("not", "very", "plot", "acting"),
]
_POSITIVE, _NEGATIVE = ["good", "great"], ["bad", "awful"]
_FILLER = ["the", "movie", "film", "was", "very", "plot", "acting", "a"]


def toy(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Short sentences whose one sentiment word ("good"/"great" vs "bad"/"awful") is the label."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(rows):
        positive = bool(rng.integers(0, 2))
        words = list(rng.choice(_FILLER, size=int(rng.integers(2, 6))))
        words.insert(
            int(rng.integers(0, len(words) + 1)),
            str(rng.choice(_POSITIVE if positive else _NEGATIVE)),
        )
        texts.append(" ".join(words))
        labels.append("pos" if positive else "neg")
    return pd.DataFrame({"note": texts, "stars": rng.integers(1, 6, rows)}), np.array(labels)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("bases") / "tiny", WORDS)


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]:
    X, y = toy(160, seed=0)
    X_val, y_val = toy(60, seed=1)
    return X, y, X_val, y_val


def _model(base: Path, **kw: object) -> TransformerTextClassifier:
    options: dict[str, object] = {
        "text_column": "note",
        "learning_rate": 2e-2,
        "epochs": 6,
        "patience": 6,
        "seed": 0,
    }
    options.update(kw)
    return TransformerTextClassifier(str(base), **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def lora(base: Path, data: tuple) -> TransformerTextClassifier:
    X, y, X_val, y_val = data
    return _model(base, method="lora").fit(X, y, eval_set=(X_val, y_val))


@pytest.fixture(scope="module")
def full(base: Path, data: tuple) -> TransformerTextClassifier:
    X, y, X_val, y_val = data
    return _model(base, method="full", learning_rate=2e-3).fit(X, y, eval_set=(X_val, y_val))


def test_lora_learns_a_separable_task_training_only_adapters_and_head(
    lora: TransformerTextClassifier, data: tuple
) -> None:
    _, _, X_val, y_val = data
    assert np.mean(lora.predict(X_val) == y_val) >= 0.9
    assert list(lora.classes_) == ["neg", "pos"]
    # rank 8 on query, key and value of 2 layers of width 32, and a 32 -> 2 head
    assert lora.n_trainable_params_ == 2 * 3 * 8 * (32 + 32) + (32 * 2 + 2)
    assert lora.n_trainable_params_ < 0.15 * lora.n_params_


def test_lora_leaves_every_base_weight_as_it_was(
    lora: TransformerTextClassifier, base: Path
) -> None:
    fresh = load_model(resolve_base(str(base))).state_dict()
    tuned = {
        name.replace("base_model.model.", "").replace(".base_layer", ""): value
        for name, value in lora._net.encoder.state_dict().items()
        if "lora_" not in name
    }
    assert set(tuned) == set(fresh)
    for name, value in fresh.items():
        assert np.array_equal(tuned[name].numpy(), value.numpy()), name


def test_a_full_fine_tune_learns_and_trains_every_weight(
    full: TransformerTextClassifier, data: tuple
) -> None:
    _, _, X_val, y_val = data
    assert np.mean(full.predict(X_val) == y_val) >= 0.9
    assert full.n_trainable_params_ == full.n_params_


def test_epochs_report_their_loss_and_record_a_curve_the_diagnosis_reads(
    base: Path, data: tuple
) -> None:
    X, y, X_val, y_val = data
    steps: list[tuple[int, float]] = []
    model = _model(base, epochs=3, stopping_metric="log_loss").fit(
        X, y, eval_set=(X_val, y_val), on_step=lambda s, loss: steps.append((s, loss))
    )
    assert [s for s, _ in steps] == [1, 2, 3]
    assert [loss for _, loss in steps] == pytest.approx(model.history_["validation"])
    curve = curve_from_estimator(model)
    assert curve is not None and curve.kind == "epoch" and curve.metric == "log_loss"
    assert len(curve.train) == len(curve.validation) == 3
    assert diagnose(curve, higher_is_better=False).verdict in (
        "good",
        "overfitting",
        "underfitting",
    )


def test_early_stopping_restores_the_best_epoch(base: Path, data: tuple) -> None:
    X, y, X_val, y_val = data
    flipped = np.where(y_val == "pos", "neg", "pos")  # learning makes these rows worse
    model = _model(
        base, epochs=6, patience=2, stopping_metric="log_loss", quantize="none"
    ).fit(X, y, eval_set=(X_val, flipped))
    losses = model.history_["validation"]
    assert model.best_epoch_ == int(np.argmin(losses)) + 1
    assert model.n_epochs_ == model.best_epoch_ + 2 < 6
    # the restored weights are the best epoch's: they reproduce its validation loss
    proba = model.predict_proba(X_val)
    codes = np.searchsorted(model.classes_, flipped)
    restored = float(-np.mean(np.log(proba[np.arange(len(codes)), codes])))
    assert restored == pytest.approx(losses[model.best_epoch_ - 1], rel=1e-6)
    assert restored != pytest.approx(losses[-1], rel=1e-3)


@pytest.fixture(scope="module")
def top(base: Path, data: tuple) -> TransformerTextClassifier:
    X, y, X_val, y_val = data
    # float32 scoring: the whole network must reproduce the cached path's numbers exactly
    return _model(
        base, method="lora", layers=1, stopping_metric="log_loss", quantize="none"
    ).fit(X, y, eval_set=(X_val, y_val))


def test_lora_on_the_top_block_trains_from_cached_lower_states_and_learns(
    top: TransformerTextClassifier, lora: TransformerTextClassifier, data: tuple
) -> None:
    _, _, X_val, y_val = data
    assert top.lower_cached_ and not lora.lower_cached_
    assert np.mean(top.predict(X_val) == y_val) >= 0.9
    # adapters in the second (top) block only: half of those on both blocks
    adapters = [k for k in top._trainable_state() if "lora_" in k]
    assert adapters and all(".layer.1." in k for k in adapters)
    assert top.n_trainable_params_ == 3 * 8 * (32 + 32) + (32 * 2 + 2)


def test_the_cached_path_scores_what_the_whole_network_scores(
    top: TransformerTextClassifier, data: tuple
) -> None:
    # the validation loss of the best epoch was computed from the cached lower states;
    # the restored model scoring through the whole network reproduces it
    _, _, X_val, y_val = data
    proba = top.predict_proba(X_val)
    codes = np.searchsorted(top.classes_, y_val)
    whole = float(-np.mean(np.log(proba[np.arange(len(codes)), codes])))
    assert whole == pytest.approx(top.history_["validation"][top.best_epoch_ - 1], rel=1e-5)


def test_the_top_block_path_is_seeded_and_pickles(
    base: Path, top: TransformerTextClassifier, data: tuple
) -> None:
    X, y, X_val, y_val = data
    again = _model(
        base, method="lora", layers=1, stopping_metric="log_loss", quantize="none"
    ).fit(X, y, eval_set=(X_val, y_val))
    np.testing.assert_array_equal(again.predict_proba(X_val), top.predict_proba(X_val))
    copy = pickle.loads(pickle.dumps(top))
    np.testing.assert_array_equal(copy.predict_proba(X_val), top.predict_proba(X_val))


def test_the_same_seed_gives_the_same_model(base: Path, data: tuple) -> None:
    X, y, X_val, _ = data
    first = _model(base, epochs=2, seed=5).fit(X, y)
    second = _model(base, epochs=2, seed=5).fit(X, y)
    other = _model(base, epochs=2, seed=6).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X_val), second.predict_proba(X_val))
    assert not np.array_equal(first.predict_proba(X_val), other.predict_proba(X_val))


def test_a_pickle_round_trip_scores_the_same_and_lora_keeps_only_what_it_trained(
    lora: TransformerTextClassifier, full: TransformerTextClassifier, data: tuple
) -> None:
    _, _, X_val, _ = data
    lora_bytes, full_bytes = pickle.dumps(lora), pickle.dumps(full)
    for model, raw in ((lora, lora_bytes), (full, full_bytes)):
        copy = pickle.loads(raw)
        np.testing.assert_array_equal(copy.predict_proba(X_val), model.predict_proba(X_val))
        np.testing.assert_array_equal(copy.predict(X_val), model.predict(X_val))
        # a loaded copy pickles again (from its live weights)
        again = pickle.loads(pickle.dumps(copy))
        np.testing.assert_array_equal(again.predict_proba(X_val), model.predict_proba(X_val))
    # adapters and head: a fraction of the whole encoder the full fine-tune keeps
    assert len(lora_bytes) < 0.3 * len(full_bytes)


def test_a_base_with_other_weights_refuses_to_load(base: Path, data: tuple, tmp_path: Path) -> None:
    X, y, _, _ = data
    copy = tmp_path / "base"
    shutil.copytree(base, copy)
    model = _model(copy, epochs=1).fit(X, y)
    raw = pickle.dumps(model)
    expected = resolve_base(str(copy)).sha256
    other = tiny_checkpoint(tmp_path / "other", WORDS, seed=1)
    shutil.copy(other / "model.safetensors", copy / "model.safetensors")
    with pytest.raises(IntegrityError, match="other weights than the model was trained on") as info:
        pickle.loads(raw)
    assert str(copy) in str(info.value) and expected in str(info.value)
    shutil.rmtree(copy)
    with pytest.raises(IntegrityError, match="base checkpoint of this model is gone"):
        pickle.loads(raw)


def test_texts_come_from_a_frame_a_series_or_a_list(
    lora: TransformerTextClassifier, data: tuple
) -> None:
    _, _, X_val, _ = data
    proba = lora.predict_proba(X_val)
    np.testing.assert_array_equal(lora.predict_proba(list(X_val["note"])), proba)
    np.testing.assert_array_equal(lora.predict_proba(X_val["note"]), proba)
    assert lora.predict_proba(["a great film"]).shape == (1, 2)
    assert lora.predict_proba([]).shape == (0, 2)
    # missing texts read as empty ones
    assert np.isfinite(lora.predict_proba(pd.DataFrame({"note": [None, np.nan, ""]}))).all()
    assert lora.prefers_batches_ is True


def test_non_string_texts_are_a_data_error_naming_the_column(
    lora: TransformerTextClassifier, base: Path
) -> None:
    with pytest.raises(DataError, match="text column 'note' holds a int at row 1") as info:
        lora.predict_proba(pd.DataFrame({"note": ["fine", 3]}))
    assert info.value.column == "note"
    with pytest.raises(DataError, match="'note' is not in the frame"):
        lora.predict_proba(pd.DataFrame({"a": ["x"], "b": ["y"]}))


def test_labels_of_one_class_or_mixed_types_are_a_data_error(base: Path, data: tuple) -> None:
    X, _, _, _ = data
    with pytest.raises(DataError, match="single class"):
        _model(base).fit(X, ["pos"] * len(X))
    mixed = np.array(["pos", 1] * (len(X) // 2), dtype=object)
    with pytest.raises(DataError, match="mix types"):
        _model(base).fit(X, mixed)
    with pytest.raises(DataError, match="single class"):
        EmbeddingLinearClassifier(str(base), text_column="note").fit(X, [1] * len(X))


def test_integer_labels_and_no_validation_rows(base: Path, data: tuple) -> None:
    X, y, X_val, _ = data
    codes = (y == "pos").astype(int) * 7
    model = _model(base, epochs=2, validation_fraction=0.0).fit(X, codes)
    assert list(model.classes_) == [0, 7]
    assert set(model.predict(X_val).tolist()) <= {0, 7}
    assert model.best_epoch_ == 2 and model.history_["validation"] == []
    assert curve_from_estimator(model) is None


def test_embedding_linear_learns_and_encodes_each_row_set_once(
    base: Path, data: tuple, tmp_path: Path
) -> None:
    X, y, X_val, y_val = data
    clear_embedding_cache()
    first = EmbeddingLinearClassifier(str(base), text_column="note", C=10.0, cache_dir=tmp_path)
    first.fit(X, y)
    assert np.mean(first.predict(X_val) == y_val) >= 0.9
    checkpoint = resolve_base(str(base))
    encoder = _frozen_encoder(checkpoint, 64, "cpu")
    batches = encoder.batches
    assert batches > 0
    # another C on the same rows: every text comes from memory
    second = EmbeddingLinearClassifier(str(base), text_column="note", C=0.1, cache_dir=tmp_path)
    second.fit(X, y)
    assert encoder.batches == batches
    # a new process (memory forgotten) reads the row set's file
    assert len(list(tmp_path.rglob("*.npy"))) == 1
    clear_embedding_cache()
    third = EmbeddingLinearClassifier(str(base), text_column="note", C=10.0, cache_dir=tmp_path)
    third.fit(X, y)
    assert _frozen_encoder(checkpoint, 64, "cpu").batches == 0
    np.testing.assert_allclose(third.predict_proba(X_val), first.predict_proba(X_val))
    copy = pickle.loads(pickle.dumps(third))
    np.testing.assert_array_equal(copy.predict_proba(X_val), third.predict_proba(X_val))
    assert len(pickle.dumps(third)) < 10_000
    assert third.prefers_batches_ is True


def test_threads_follow_the_work(base: Path) -> None:
    import dataclasses
    import os

    from assay.train.text_inputs import thread_count

    tiny = resolve_base(str(base))
    wide = dataclasses.replace(tiny, hidden_size=384)
    cores = len(os.sched_getaffinity(0))
    assert thread_count(tiny) == 1  # a narrow encoder's products are too small to split
    assert thread_count(wide) == cores
    assert thread_count(wide, tokens=30) == 1  # scoring one short text
    assert thread_count(wide, tokens=16 * 128 * 4) == cores


def test_a_frame_of_one_column_needs_no_column_name() -> None:
    from assay.train.text_inputs import read_texts

    frame = pd.DataFrame({"review": ["a good film", None]})
    assert read_texts(frame, None) == ["a good film", ""]
    assert read_texts(frame, "note") == ["a good film", ""]  # the only column is the text
    assert read_texts("one text", "note") == ["one text"]
    assert read_texts(np.array([["x"], ["y"]], dtype=object), None) == ["x", "y"]


def test_int8_scoring_is_close_to_float32_and_does_not_depend_on_batchmates(
    base: Path, data: tuple
) -> None:
    X, y, X_val, y_val = data
    plain = _model(base, method="lora", layers=1, epochs=3, quantize="none").fit(
        X, y, eval_set=(X_val, y_val)
    )
    int8 = _model(base, method="lora", layers=1, epochs=3, quantize="int8").fit(
        X, y, eval_set=(X_val, y_val)
    )
    # the same training (quantisation only changes scoring), so the answers are close
    np.testing.assert_allclose(int8.predict_proba(X_val), plain.predict_proba(X_val), atol=0.05)
    assert np.mean(int8.predict(X_val) == y_val) >= 0.9
    # a text's answer alone equals its answer among others
    alone = np.vstack([int8.predict_proba(X_val.iloc[[i]]) for i in range(5)])
    np.testing.assert_array_equal(alone, int8.predict_proba(X_val)[:5])
    # a pickled copy rebuilds the same int8 scorer
    copy = pickle.loads(pickle.dumps(int8))
    np.testing.assert_array_equal(copy.predict_proba(X_val), int8.predict_proba(X_val))
    assert copy._scorer is not None and plain._scorer is None


def test_texts_the_audit_embedded_are_not_encoded_again_by_the_family(
    base: Path, data: tuple
) -> None:
    from assay.text.encoder import TextEncoder

    X, _, _, _ = data
    texts = list(X["note"])
    clear_embedding_cache()
    checkpoint = resolve_base(str(base))
    audited = TextEncoder(checkpoint, max_length=64).encode(texts)  # what the audit does
    family = _frozen_encoder(checkpoint, 64, "cpu")
    again = family.embed(texts, None)
    assert family.batches == 0
    np.testing.assert_allclose(again, audited, atol=1e-6)
    # another token limit is another embedding: encoded anew
    _frozen_encoder(checkpoint, 32, "cpu").embed(texts[:5], None)
    assert _frozen_encoder(checkpoint, 32, "cpu").batches > 0
