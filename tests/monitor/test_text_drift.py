"""Drift of free-text inputs: the text tests' contract, their statistics, known answers on
texts read by a tiny random-weight checkpoint, and the route from a reference to a report."""

from __future__ import annotations

import inspect
import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from assay.data.schema import ColumnSchema
from assay.errors import ConfigError, DataError
from assay.monitor import build_reference, detect_drift, text_drift
from assay.monitor.drift import DriftReport, DriftThresholds
from assay.monitor.reference import ReferenceProfile, TextProfile
from assay.monitor.text_drift import (
    TEXT_DRIFT_TESTS,
    BaseTextDriftTest,
    LengthDriftTest,
    MMDTest,
    TextDriftConfig,
    TextFeatures,
    UnknownTokenTest,
    add_text_drift,
    mmd_permutation_test,
    profile_text_columns,
    text_column_drift,
    text_columns,
    text_features,
    text_profile,
    unknown_ratio,
)
from assay.testing.checkpoints import tiny_checkpoint
from assay.testing.drift import TextDriftTestContract, text_drift_sample, text_profile_of
from assay.text.checkpoint import BaseCheckpoint, resolve_base
from assay.text.encoder import TextEncoder

ALIASES = TEXT_DRIFT_TESTS.names()

MOVIES = "the a movie film was is good great bad awful not very plot acting".split()
COOKING = "recipe oven flour sugar bake salt butter dish taste sweet pan".split()
# scripts the tiny tokenizer has no piece for: each word is one unknown token
FOREIGN = ["привет", "мир", "δρόμος", "λόγος", "книга", "θάλασσα"]


# -- the contract ------------------------------------------------------------------------------


def test_every_text_drift_test_is_registered_and_covered() -> None:
    concrete = [
        obj
        for _, obj in inspect.getmembers(text_drift, inspect.isclass)
        if issubclass(obj, BaseTextDriftTest) and not inspect.isabstract(obj)
    ]
    assert {cls.alias for cls in concrete} == set(ALIASES) == {
        "mmd",
        "text_length",
        "unknown_tokens",
    }
    assert TestEveryTextDriftTest.covered == tuple(ALIASES)


class TestEveryTextDriftTest(TextDriftTestContract):
    covered = tuple(ALIASES)

    @pytest.fixture(params=ALIASES)
    def text_drift_test(self, request: pytest.FixtureRequest) -> BaseTextDriftTest:
        return TEXT_DRIFT_TESTS.get(str(request.param))()


# -- the statistics ----------------------------------------------------------------------------


def _direct_mmd(x: np.ndarray, y: np.ndarray, sides: np.ndarray) -> float:
    """The biased squared MMD of rows ``sides`` (reference) vs the rest, by the definition."""
    pool = np.vstack([x, y])
    d2 = ((pool[:, None, :] - pool[None, :, :]) ** 2).sum(axis=2)
    upper = d2[np.triu_indices(len(pool), 1)]
    kernel = np.exp(-d2 / (2 * np.median(upper)))
    a = np.zeros(len(pool), dtype=bool)
    a[sides] = True
    return float(
        kernel[a][:, a].mean() + kernel[~a][:, ~a].mean() - 2 * kernel[a][:, ~a].mean()
    )


def test_the_mmd_test_is_the_definition_evaluated_for_every_permutation() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(30, 5))
    y = rng.normal(0.4, 1.0, size=(20, 5))
    result = mmd_permutation_test(x, y, permutations=250, seed=3)
    observed = _direct_mmd(x, y, np.arange(30))
    assert result.statistic == pytest.approx(observed, rel=1e-10)
    # the same permutations, one at a time
    orders = np.random.default_rng(3).permuted(np.tile(np.arange(50), (250, 1)), axis=1)
    reached = sum(_direct_mmd(x, y, order[:30]) >= observed - 1e-10 for order in orders)
    assert result.p_value == (1 + reached) / 251
    pool = np.vstack([x, y])
    d2 = ((pool[:, None, :] - pool[None, :, :]) ** 2).sum(axis=2)
    assert result.bandwidth == pytest.approx(math.sqrt(np.median(d2[np.triu_indices(50, 1)])))
    # identical samples: 0, and no permutation does better
    same = mmd_permutation_test(x, x, permutations=100)
    assert same.statistic == pytest.approx(0.0, abs=1e-12) and same.p_value == 1.0


def test_the_unknown_share_has_the_variance_of_a_ratio_over_texts() -> None:
    # r = 2/20; residuals u - r t = -1, +1; 2/(2-1) * 2 / 20^2
    n_tokens, n_unknown, variance = unknown_ratio(
        np.array([10.0, 10.0, np.nan]), np.array([0.0, 2.0, np.nan])
    )
    assert (n_tokens, n_unknown) == (20, 2)
    assert variance == pytest.approx(0.01)
    assert unknown_ratio(np.array([5.0]), np.array([1.0])) == (5, 1, 0.0)


def _clustered(n: int, seed: int) -> TextFeatures:
    """Texts of 20 tokens; one in 20 is foreign (every token unknown): unknowns come in
    clumps, so tokens are far from independent draws."""
    rng = np.random.default_rng(seed)
    tokens = np.full(n, 20.0)
    unknown = np.where(rng.random(n) < 0.05, 20.0, 0.0)
    embeddings = rng.normal(size=(n, 4)).astype(np.float16).astype(np.float32)
    return TextFeatures(tokens * 5, tokens, unknown, embeddings)


def test_the_unknown_token_test_holds_its_level_when_unknowns_come_in_clumps() -> None:
    test = UnknownTokenTest(alpha=0.05, min_change=1e-9)  # only the p-value decides
    flagged = naive = 0
    for seed in range(20):
        reference, window = _clustered(400, 2 * seed), _clustered(400, 2 * seed + 1)
        check = test.compute(text_profile_of(reference), window)
        flagged += check.drifted
        # a two-proportion test that counts tokens as independent draws
        p1 = np.nansum(reference.unknown) / np.nansum(reference.tokens)
        p2 = np.nansum(window.unknown) / np.nansum(window.tokens)
        pooled = (p1 + p2) / 2
        z = abs(p1 - p2) / math.sqrt(pooled * (1 - pooled) * 2 / 8000)
        naive += math.erfc(z / math.sqrt(2)) < 0.05
    assert flagged <= 2
    assert naive >= 8  # what texts-as-draws standard errors avoid


def test_the_text_drift_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="alpha is out of range") as info:
        TextDriftConfig(alpha=0.002, permutations=300).validate()
    assert "smallest permutation p-value" in (info.value.fix or "")
    with pytest.raises(ConfigError, match="permutations"):
        TextDriftConfig(permutations=0).validate()
    with pytest.raises(ConfigError, match="min_unknown_change"):
        TextDriftConfig(min_unknown_change=0.0).validate()


# -- known answers on texts read by a tiny checkpoint -------------------------------------------


def corpus(
    n: int, seed: int, *, words: list[str] = MOVIES, length: tuple[int, int] = (4, 14),
    foreign: float = 0.0,
) -> list[str]:
    """``n`` texts of ``length`` words drawn from ``words``; a ``foreign`` share of them
    also carries two words of other scripts."""
    rng = np.random.default_rng(seed)
    texts = []
    for _ in range(n):
        chosen = list(rng.choice(words, int(rng.integers(*length))))
        if foreign and rng.random() < foreign:
            chosen[1:1] = list(rng.choice(FOREIGN, 2))
        texts.append(" ".join(chosen))
    return texts


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> BaseCheckpoint:
    path = tiny_checkpoint(tmp_path_factory.mktemp("text-drift") / "tiny", MOVIES + COOKING)
    return resolve_base(str(path))


@pytest.fixture(scope="module")
def single_thread() -> Iterator[None]:
    """Encode on one thread: on a shared two-core machine extra threads only wait."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def measured(tiny: BaseCheckpoint, single_thread: None) -> dict[str, TextFeatures]:
    """The corpora, measured once: a pool of movie reviews, and three altered windows."""
    encoder = TextEncoder(tiny)
    corpora = {
        "pool": corpus(1200, 0),
        "topic": corpus(300, 1, words=COOKING),
        "longer": corpus(300, 2, length=(12, 42)),
        "foreign": corpus(300, 3, foreign=0.5),
    }
    return {
        name: text_features(texts, encoder, sample=len(texts)) for name, texts in corpora.items()
    }


def test_measures_follow_the_rows_whatever_order_they_are_encoded_in(
    tiny: BaseCheckpoint, single_thread: None
) -> None:
    texts = [*corpus(40, 5, length=(1, 30)), None, "", float("nan"), "привет film"]
    encoder = TextEncoder(tiny)
    features = text_features(texts, encoder, sample=100)
    assert features.n == 44 and features.n_missing == 2
    assert np.isnan(features.tokens[[40, 42]]).all() and features.tokens[41] == 0
    assert (features.tokens[43], features.unknown[43], features.chars[43]) == (2, 1, 11)
    assert features.embeddings.shape == (42, 32)
    present = [t for t in texts if isinstance(t, str)]
    one_by_one = np.vstack([TextEncoder(tiny).encode([t]) for t in present])
    np.testing.assert_allclose(features.embeddings, one_by_one, atol=2e-3)
    # a seeded sample of the texts is embedded, in row order
    sampled = text_features(texts, encoder, sample=10, seed=4)
    rows = np.sort(np.random.default_rng(4).choice(42, 10, replace=False))
    np.testing.assert_allclose(sampled.embeddings, one_by_one[rows], atol=2e-3)


def _take(features: TextFeatures, rows: np.ndarray) -> TextFeatures:
    """Rows of measures with no missing text (so the embeddings line up with the rows)."""
    return TextFeatures(
        features.chars[rows], features.tokens[rows], features.unknown[rows],
        features.embeddings[rows],
    )


def _profile(features: TextFeatures, base: BaseCheckpoint) -> TextProfile:
    return text_profile(
        "review", features, base=base.source, base_sha256=base.sha256, max_length=64
    )


def _checks(profile: TextProfile, window: TextFeatures, **config: float) -> dict[str, object]:
    thresholds = DriftThresholds()
    column = text_column_drift(
        profile, window, TextDriftConfig(**config).tests(thresholds), thresholds
    )
    return {"column": column, **{c.test: c for c in column.checks}}


@pytest.mark.slow
def test_two_samples_of_one_corpus_rarely_drift(
    measured: dict[str, TextFeatures], tiny: BaseCheckpoint
) -> None:
    pool = measured["pool"]
    thresholds = DriftThresholds()
    at_05 = at_defaults = 0
    p_values = []
    for seed in range(20):
        order = np.random.default_rng(seed).permutation(pool.n)
        profile = _profile(_take(pool, order[:200]), tiny)
        window = _take(pool, order[200:400])
        tests = TextDriftConfig(alpha=0.05, seed=seed).tests(thresholds)
        mmd, length, unknown = (t.compute(profile, window) for t in tests)
        assert mmd.p_value is not None and unknown.p_value is not None
        p_values.append(mmd.p_value)
        at_05 += mmd.drifted
        # the whole column at the default alpha, 0.01 (the length test has no alpha)
        at_defaults += mmd.p_value < 0.01 or length.drifted or unknown.p_value < 0.01
    assert at_05 <= 2, p_values  # nominal: 1 in 20 at alpha 0.05
    assert at_defaults <= 1
    assert 0.3 < float(np.mean(p_values)) < 0.7  # p-values spread over (0, 1]


def test_a_new_topic_is_flagged_by_mmd_alone(
    measured: dict[str, TextFeatures], tiny: BaseCheckpoint
) -> None:
    profile = _profile(_take(measured["pool"], np.arange(300)), tiny)
    checks = _checks(profile, measured["topic"])
    mmd = checks["mmd"]
    assert mmd.drifted and mmd.p_value == pytest.approx(1 / 301)  # no permutation reached it
    assert not checks["text_length"].drifted and not checks["unknown_tokens"].drifted
    column = checks["column"]
    assert column.drifted and column.kind == "text" and column.test == "mmd"
    assert column.severity == "significant"
    # the same corpus, other texts: nothing
    same = _checks(profile, _take(measured["pool"], np.arange(300, 600)))
    assert not same["column"].drifted


def test_longer_texts_are_flagged_by_their_length(
    measured: dict[str, TextFeatures], tiny: BaseCheckpoint
) -> None:
    profile = _profile(_take(measured["pool"], np.arange(300)), tiny)
    length = _checks(profile, measured["longer"])["text_length"]
    assert length.drifted and length.statistic >= 0.2 and length.evidence["js"] >= 0.1
    assert length.p_value < 1e-6  # the reported KS test agrees
    assert length.evidence["median_tokens_current"] > 2 * length.evidence["median_tokens_reference"]
    assert length.evidence["chars_psi"] >= 0.2


def test_foreign_words_raise_the_share_of_unknown_tokens(
    measured: dict[str, TextFeatures], tiny: BaseCheckpoint
) -> None:
    profile = _profile(_take(measured["pool"], np.arange(300)), tiny)
    assert profile.n_unknown == 0
    unknown = _checks(profile, measured["foreign"])["unknown_tokens"]
    assert unknown.drifted and unknown.p_value < 1e-6
    # half the texts carry two unknown words among ~11 tokens
    assert 0.05 < unknown.evidence["share_current"] < 0.2
    assert unknown.statistic == pytest.approx(unknown.evidence["share_current"])


# -- the reference -------------------------------------------------------------------------------


def _frame(texts: list[str], seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=len(texts)), "review": texts})


SCHEMA = [
    ColumnSchema("x", "numeric", "float64", False, 0),
    ColumnSchema("review", "text", "str", True, 0),
]


def _reference(tiny: BaseCheckpoint, texts: list[str], **options: object) -> ReferenceProfile:
    frame = _frame(texts)
    frame.loc[3, "review"] = None
    plain = build_reference(frame, SCHEMA, prediction=(frame["x"] > 0).astype(int), seed=5)
    return profile_text_columns(
        plain, frame, text_columns(SCHEMA), base=str(tiny.path), **options  # type: ignore[arg-type]
    )


def test_the_reference_keeps_lengths_unknown_tokens_and_a_sample_of_embeddings(
    tiny: BaseCheckpoint, single_thread: None
) -> None:
    reference = _reference(tiny, corpus(400, 0), sample=250, max_length=32)
    assert [s.name for s in reference.skipped] == []
    assert [p.name for p in reference.columns] == ["x", "__prediction__"]
    (profile,) = reference.text
    assert profile.name == "review" and profile.n == 400
    assert profile.missing_share == pytest.approx(1 / 400)
    assert profile.embeddings.dtype == np.float16 and profile.embeddings.shape == (250, 32)
    assert profile.base == str(tiny.path) and profile.base_sha256 == tiny.sha256
    assert profile.max_length == 32
    assert profile.n_unknown == 0 and 4 * 399 <= profile.n_tokens <= 13 * 399
    # stored as JSON, float16 bytes in base64: about 2 bytes per value, and exact
    text = json.dumps(reference.to_dict(), allow_nan=False)
    stored = json.loads(text)["text"][0]["embeddings"]["data"]
    assert len(stored) == math.ceil(250 * 32 * 2 / 3) * 4
    assert ReferenceProfile.from_dict(json.loads(text)) == reference
    # a profile stored before text profiles existed still loads
    older = reference.to_dict()
    del older["text"]
    assert ReferenceProfile.from_dict(older).text == ()


def test_the_data_text_column_is_profiled_as_text_whatever_kind_it_was_inferred(
    tiny: BaseCheckpoint, single_thread: None
) -> None:
    frame = pd.DataFrame({"review": ["good film", "bad film", "good plot"] * 20})
    schema = [ColumnSchema("review", "categorical", "str", False, 3)]
    plain = build_reference(frame, schema)
    assert [p.name for p in plain.columns] == ["review"]
    names = text_columns(schema, text_column="review")
    reference = profile_text_columns(plain, frame, names, base=str(tiny.path))
    assert reference.columns == () and [t.name for t in reference.text] == ["review"]


def test_a_base_that_cannot_be_loaded_leaves_the_column_skipped_with_the_reason(
    tiny: BaseCheckpoint,
) -> None:
    frame = _frame(corpus(50, 0))
    plain = build_reference(frame, SCHEMA)
    reference = profile_text_columns(plain, frame, ["review"], base="/no/such/checkpoint")
    assert reference.text == () and [p.name for p in reference.columns] == ["x"]
    (skipped,) = reference.skipped
    assert skipped.name == "review" and "model.base" in skipped.reason
    assert "does not exist" in skipped.reason
    with pytest.raises(DataError, match="text column 'notes' is not in the reference frame"):
        profile_text_columns(plain, frame, ["notes"], base=str(tiny.path))


# -- a window against the reference ------------------------------------------------------------


@pytest.fixture(scope="module")
def reference(tiny: BaseCheckpoint, single_thread: None) -> ReferenceProfile:
    return _reference(tiny, corpus(400, 0))


def _report(reference: ReferenceProfile, window: pd.DataFrame, **options: object) -> DriftReport:
    window = window.assign(prediction=(window["x"] > 0).astype(int))
    drift = detect_drift(reference, window, confidence=None)
    return add_text_drift(drift, reference, window, **options)  # type: ignore[arg-type]


def test_a_drifted_text_column_is_reported_like_any_drifted_feature(
    reference: ReferenceProfile,
) -> None:
    report = _report(reference, _frame(corpus(300, 9, words=COOKING), seed=1))
    assert [c.name for c in report.columns] == ["x", "review", "__prediction__"]
    review = report["review"]
    assert review.kind == "text" and review.role == "feature" and review.drifted
    assert [c.test for c in review.checks] == ["mmd", "text_length", "unknown_tokens"]
    assert review.test == "mmd" and review.p_value == pytest.approx(1 / 301)
    assert report.ranked == ("review",) and report.share_drifted == 0.5
    assert "review" not in {s.name for s in report.skipped}
    text = json.dumps(report.to_dict(), allow_nan=False)
    assert DriftReport.from_dict(json.loads(text)) == report
    # other reviews of the same corpus
    quiet = _report(reference, _frame(corpus(300, 10), seed=2))
    assert not quiet["review"].drifted and quiet.ranked == ()


def test_a_window_too_small_adds_nothing(reference: ReferenceProfile) -> None:
    report = _report(reference, _frame(corpus(10, 9, words=COOKING)))
    assert not report.checked and report.columns == ()


def test_a_window_embedded_by_other_weights_is_not_compared(
    reference: ReferenceProfile, tmp_path: Path
) -> None:
    other = resolve_base(str(tiny_checkpoint(tmp_path / "other", MOVIES, seed=1)))
    report = _report(reference, _frame(corpus(100, 9)), base=other)
    assert "review" not in [c.name for c in report.columns]
    (skipped,) = [s for s in report.skipped if s.name == "review"]
    assert f"sha256 {reference.text[0].base_sha256[:12]}" in skipped.reason
    assert f"sha256 {other.sha256[:12]}" in skipped.reason
    assert "re-register the model" in skipped.reason


def test_a_reference_base_that_is_gone_is_named_in_the_skip(
    tiny: BaseCheckpoint, tmp_path: Path, single_thread: None
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny.path, copy)
    frame = _frame(corpus(60, 0))
    reference = profile_text_columns(
        build_reference(frame, SCHEMA), frame, ["review"], base=str(copy)
    )
    shutil.rmtree(copy)
    report = _report(reference, _frame(corpus(60, 1)))
    (skipped,) = [s for s in report.skipped if s.name == "review"]
    assert f"the base checkpoint '{copy}'" in skipped.reason
    assert "cannot be loaded" in skipped.reason


def test_a_window_without_the_text_column_is_refused(reference: ReferenceProfile) -> None:
    window = _frame(corpus(50, 1)).drop(columns="review")
    drift = detect_drift(reference, window, prediction=None, confidence=None)
    with pytest.raises(DataError, match="text column 'review' of the reference is not in"):
        add_text_drift(drift, reference, window)


def test_the_length_test_reads_the_report_thresholds() -> None:
    tests = TextDriftConfig().tests(DriftThresholds(psi_moderate=0.05, psi_significant=0.5))
    length = next(t for t in tests if isinstance(t, LengthDriftTest))
    assert (length.psi_significant, length.js_threshold) == (0.5, 0.1)
    assert isinstance(tests[0], MMDTest)  # the primary test first
    sample = text_drift_sample(300, seed=1)
    assert not length.compute(text_profile_of(sample), text_drift_sample(300, seed=2)).drifted


# -- a monitoring pass over a text project ---------------------------------------------------


def _reviews(n: int, seed: int, *, words: list[str] = MOVIES) -> pd.DataFrame:
    """Reviews whose label is whether they praise more than they pan."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        label = int(rng.integers(0, 2))
        mood = ["good", "great"] if label else ["bad", "awful"]
        chosen = [*rng.choice(words, int(rng.integers(4, 12))), *rng.choice(mood, 2)]
        rng.shuffle(chosen)
        texts.append(" ".join(str(w) for w in chosen))
        labels.append(label)
    return pd.DataFrame({"review": texts, "label": labels})


@pytest.mark.slow
def test_a_monitoring_pass_checks_the_text_column_and_alerts_on_its_drift(
    tiny: BaseCheckpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, single_thread: None
) -> None:
    import yaml

    import assay.candidate
    from assay.monitor.monitor import monitor_project
    from assay.pipeline import open_registry, run_project
    from assay.project import Project

    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(tiny.path, root / "base")
    _reviews(300, 0).to_csv(root / "data.csv", index=False)
    (root / "assay.yaml").write_text(yaml.safe_dump({
        "task": "text-classification",
        "data": {"source": "data.csv", "target": "label", "text": "review"},
        "search": {"families": ["dummy", "tfidf_linear"], "trials": 2, "cv_folds": 2},
        "serving": {"latency_p99_ms": 1000},
        "model": {"base": "base"},
    }))
    project = Project.open(root / "assay.yaml")

    # registered without a stored reference, monitoring builds it from the training rows,
    # the text profile with the version's model.base (relative to the project)
    def no_reference(*args: object, **kwargs: object) -> ReferenceProfile:
        raise RuntimeError("no reference at registration")

    monkeypatch.setattr(assay.candidate, "build_reference", no_reference)
    registry = open_registry(project)
    try:
        result = run_project(project, registry=registry, write_report=False)
        if not result.promoted:
            registry.promote(
                result.version, gate_passed=result.gate.passed, force=not result.gate.passed,
                reason="test",
            )
        assert registry.get(result.version).lineage.reference is None
    finally:
        registry.store.close()

    quiet = monitor_project(project, current=_reviews(200, 1), record=False)
    review = quiet.drift["review"]
    assert review.kind == "text" and not review.drifted
    assert [c.test for c in review.checks] == ["mmd", "text_length", "unknown_tokens"]
    assert "data_drift" not in quiet.alert_kinds

    moved = monitor_project(project, current=_reviews(200, 2, words=COOKING))
    assert moved.drift["review"].drifted and moved.verdict == "data_drift"
    (alert,) = [a for a in moved.alerts.raised if a.kind == "data_drift"]
    assert "1 of 1 input feature(s) drifted" in alert.message
    assert "review (text: mmd " in alert.message and "p=0.0033" in alert.message
    assert alert.evidence["features"][0]["checks"][0]["test"] == "mmd"

    # the base's weights changed under the same path: the column is skipped, and said so
    shutil.rmtree(root / "base")
    tiny_checkpoint(root / "base", MOVIES, seed=3)
    changed = monitor_project(project, current=_reviews(200, 1), record=False)
    assert "review" not in [c.name for c in changed.drift.columns]
    assert any(
        note.startswith("text column 'review' was not checked for drift")
        and "re-register the model" in note
        for note in changed.notes
    )
