"""The class_imbalance, label_errors and target_leakage checks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from assay.audit import CHECKS, AuditContext, Finding, run_audit
from assay.audit.checks import target as target_checks
from assay.audit.checks.target import _rank_auc, label_text, positive_class
from assay.data import Dataset

CHECK_NAMES = ["class_imbalance", "label_errors", "target_leakage"]


def _ctx(frame: pd.DataFrame, **kw: object) -> AuditContext:
    kw.setdefault("target", "target")
    kw.setdefault("task", "binary")
    return AuditContext(dataset=Dataset.from_frame(frame), **kw)  # type: ignore[arg-type]


def _audit(frame: pd.DataFrame, only: list[str], **kw: object) -> list[Finding]:
    report = run_audit(_ctx(frame, **kw), only=only)
    json.dumps(report.to_dict())  # every finding is JSON-serialisable
    for finding in report.findings:
        assert Finding.from_dict(finding.to_dict()) == finding
        assert not finding.message.startswith("the check could not run"), finding.message
    return list(report.findings)


def _imbalanced(seed: int, n: int, minority: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = np.zeros(n, dtype=int)
    y[rng.choice(n, minority, replace=False)] = 1
    return pd.DataFrame({"x": rng.normal(size=n) + y, "target": y})


def _flip(frame: pd.DataFrame, share: float, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    flipped = rng.choice(len(frame), int(share * len(frame)), replace=False)
    noisy = frame.copy()
    noisy.loc[flipped, "target"] = 1 - noisy.loc[flipped, "target"]
    return noisy, flipped


def test_registered_in_order() -> None:
    names = CHECKS.names()
    positions = [names.index(n) for n in CHECK_NAMES]
    assert positions == sorted(positions)


def test_clean_frame_raises_no_block_and_no_warn(clean_frame: pd.DataFrame) -> None:
    findings = _audit(clean_frame, CHECK_NAMES)
    assert [f for f in findings if f.severity in ("block", "warn")] == []
    # the best single feature of make_classification is far from leakage: nothing at all
    assert [f for f in findings if f.check == "target_leakage"] == []


def test_target_checks_do_not_apply_without_a_target(clean_frame: pd.DataFrame) -> None:
    report = run_audit(_ctx(clean_frame, target=None, task=None), only=CHECK_NAMES)
    assert report.checks_run == ()


def test_class_checks_do_not_apply_to_regression(clean_frame: pd.DataFrame) -> None:
    report = run_audit(_ctx(clean_frame, task="regression"), only=CHECK_NAMES)
    assert report.checks_run == ("target_leakage",)


# ----------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0, 1, 1, 0, 0], 1),
        ([1, 1, 1, 0], 1),  # label 1 wins over the minority
        (["no", "yes", "no"], "yes"),
        (["Yes", "No", "No"], "Yes"),
        ([False, True, True], True),
        (["cat", "dog", "dog", "dog"], "cat"),  # no conventional name: the minority
        ([1.0, 0.0, np.nan], 1.0),
    ],
)
def test_positive_class(values: list[object], expected: object) -> None:
    assert positive_class(pd.Series(values)) == expected


def test_label_text_drops_float_zeros() -> None:
    assert [label_text(v) for v in (1.0, np.int64(3), "a", 2.5, True)] == [
        "1",
        "3",
        "a",
        "2.5",
        "True",
    ]


def test_rank_auc_matches_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.random(500) < 0.3
    score = np.round(rng.normal(size=500) + labels, 1)  # rounded: many ties
    assert _rank_auc(labels, score) == pytest.approx(roc_auc_score(labels, score), abs=1e-12)


# ----------------------------------------------------------------------------- class_imbalance


def test_five_percent_minority_warns_with_balanced_metric_advice(seed: int) -> None:
    frame = _imbalanced(seed, 2000, 100)
    [finding] = _audit(frame, ["class_imbalance"])
    assert finding.severity == "warn"
    assert finding.columns == ("target",)
    assert "minority class '1' is 5.0%" in finding.message
    assert "always predicting '0' would be 95.0%" in finding.message
    assert "balanced accuracy" in finding.fix and "PR AUC" in finding.fix
    assert "class weights" in finding.fix
    assert finding.evidence["counts"] == {"0": 1900, "1": 100}
    assert finding.evidence["majority_baseline_accuracy"] == pytest.approx(0.95)
    assert finding.evidence["imbalance_ratio"] == pytest.approx(19.0)


def test_twenty_percent_minority_is_info(seed: int) -> None:
    [finding] = _audit(_imbalanced(seed, 1000, 200), ["class_imbalance"])
    assert finding.severity == "info"
    assert finding.evidence["minority_share"] == pytest.approx(0.2)


def test_balanced_target_raises_nothing(clean_frame: pd.DataFrame) -> None:
    assert _audit(clean_frame, ["class_imbalance"]) == []


def test_balanced_multiclass_target_is_not_imbalanced(seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x": rng.normal(size=1000), "target": np.tile(list("abcdefghij"), 100)})
    assert _audit(frame, ["class_imbalance"], task="multiclass") == []


def test_class_with_few_rows_warns_naming_it(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = np.array(["a"] * 300 + ["b"] * 300 + ["rare"] * 4)
    frame = pd.DataFrame({"x": rng.normal(size=len(labels)), "target": labels})
    findings = _audit(frame, ["class_imbalance"], task="multiclass")
    rare = [f for f in findings if "fewer than 10 rows" in f.message]
    assert len(rare) == 1
    assert rare[0].severity == "warn"
    assert "'rare' (4 rows)" in rare[0].message
    assert rare[0].evidence["rare_classes"] == {"rare": 4}


def test_single_class_target_blocks(seed: int) -> None:
    frame = pd.DataFrame({"x": np.arange(50.0), "target": ["no"] * 50})
    [finding] = _audit(frame, ["class_imbalance"])
    assert finding.severity == "block"
    assert "single class ('no')" in finding.message


# ----------------------------------------------------------------------------- label_errors


def test_clean_frame_has_no_label_error_warning(clean_frame: pd.DataFrame) -> None:
    findings = _audit(clean_frame, ["label_errors"])
    assert all(f.severity == "info" for f in findings)


def test_flipped_labels_warn_and_the_listed_rows_are_the_flipped_ones(
    clean_frame: pd.DataFrame, seed: int
) -> None:
    noisy, flipped = _flip(clean_frame, 0.08, seed)
    [finding] = _audit(noisy, ["label_errors"])
    assert finding.severity == "warn"
    assert finding.columns == ("target",)
    evidence = finding.evidence
    assert 0.04 < evidence["estimated_share"] < 0.15
    rows = set(evidence["rows"])
    assert len(rows) >= 40
    precision = len(rows & set(flipped.tolist())) / len(rows)
    assert precision >= 0.7
    for example in evidence["examples"]:
        given = noisy.loc[example["row"], "target"]
        assert example["given"] == str(given)
        assert example["suggested"] == str(1 - given)
    assert f"row {evidence['examples'][0]['row']}" in finding.message


def test_label_errors_samples_at_most_the_configured_rows(
    clean_frame: pd.DataFrame, seed: int
) -> None:
    noisy, _ = _flip(clean_frame, 0.08, seed)
    # unlabelled rows first: positions must still point into the original frame
    noisy.loc[:9, "target"] = np.nan
    [finding] = _audit(noisy, ["label_errors"], label_errors_max_rows=800, seed=3)
    evidence = finding.evidence
    assert evidence["sampled"] is True
    assert evidence["rows_checked"] == 800
    assert evidence["labelled_rows"] == 1990
    assert "sample of 800 of 1,990" in finding.message
    for example in evidence["examples"]:
        assert example["row"] >= 10
        assert label_text(noisy.loc[example["row"], "target"]) == example["given"]


def test_label_errors_are_deterministic(clean_frame: pd.DataFrame, seed: int) -> None:
    noisy, _ = _flip(clean_frame, 0.05, seed)
    first = _audit(noisy, ["label_errors"], label_errors_max_rows=600)
    second = _audit(noisy, ["label_errors"], label_errors_max_rows=600)
    assert first == second


def test_uninformative_features_with_a_rare_class_do_not_warn(seed: int) -> None:
    # labels independent of the features: disagreement comes from the class shares alone
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(1000, 4)), columns=list("abcd"))
    frame["target"] = (rng.random(1000) < 0.1).astype(int)
    findings = _audit(frame, ["label_errors"])
    assert all(f.severity == "info" for f in findings)


def test_text_classification_uses_tfidf_and_finds_flipped_labels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    vocab = {
        0: ["refund", "broken", "late", "angry", "poor", "slow"],
        1: ["great", "fast", "love", "perfect", "happy"],
    }
    filler = ["the", "a", "order", "item", "product", "service", "it", "was", "and", "very"]
    y = rng.integers(0, 2, 1000)
    texts = [
        " ".join(rng.permutation([*rng.choice(vocab[c], 3), *rng.choice(filler, 6)])) for c in y
    ]
    frame = pd.DataFrame({"review": texts, "target": y})
    noisy, flipped = _flip(frame, 0.08, seed)
    [finding] = _audit(noisy, ["label_errors"], task="text-classification")
    assert "TF-IDF" in finding.evidence["method"]
    assert finding.severity == "warn"
    rows = set(finding.evidence["rows"])
    assert rows and len(rows & set(flipped.tolist())) / len(rows) >= 0.7


# ----------------------------------------------------------------------------- target_leakage


def test_post_outcome_copy_of_the_target_blocks(clean_frame: pd.DataFrame, seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = clean_frame.copy()
    frame["refund_amount"] = frame["target"] * 40.0 + rng.normal(0, 8.0, len(frame))
    [finding] = _audit(frame, ["target_leakage"])
    assert finding.severity == "block"
    assert finding.columns == ("refund_amount",)
    assert "'refund_amount'" in finding.message and "'target'" in finding.message
    assert finding.evidence["metric"] == "roc_auc"
    assert finding.evidence["score"] >= 0.98
    assert "data.drop" in finding.fix and "prediction time" in finding.fix


def test_column_missing_only_when_target_is_one_blocks(
    clean_frame: pd.DataFrame, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    frame = clean_frame.copy()
    frame["cancellation_date"] = np.where(
        frame["target"] == 1, np.nan, rng.normal(100, 10, len(frame))
    )
    [finding] = _audit(frame, ["target_leakage"])
    assert finding.severity == "block"
    assert finding.columns == ("cancellation_date",)
    assert "whether 'cancellation_date' is missing" in finding.message
    assert finding.evidence["missing_indicator_auc"] == pytest.approx(1.0)
    assert finding.evidence["missing_share"] == pytest.approx(frame["target"].mean())


def test_suspiciously_strong_feature_warns(clean_frame: pd.DataFrame, seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = clean_frame.copy()
    # two unit-variance normals 2.5 sd apart: ROC AUC = Phi(2.5 / sqrt 2) = 0.96
    frame["score"] = frame["target"] * 2.5 + rng.normal(0, 1, len(frame))
    [finding] = _audit(frame, ["target_leakage"])
    assert finding.severity == "warn"
    assert finding.columns == ("score",)
    assert "suspiciously" in finding.message
    assert 0.93 < finding.evidence["score"] < 0.98


def test_id_like_columns_are_not_leakage(clean_frame: pd.DataFrame) -> None:
    frame = clean_frame.copy()
    frame["customer"] = [f"c{i:05d}" for i in range(len(frame))]
    frame["code"] = pd.Categorical(frame["customer"])
    assert _audit(frame, ["target_leakage"]) == []


def test_target_column_roles_are_not_scored(clean_frame: pd.DataFrame) -> None:
    frame = clean_frame.copy()
    frame["label_copy"] = frame["target"]
    assert _audit(frame, ["target_leakage"], dropped=("label_copy",)) == []
    [finding] = _audit(frame, ["target_leakage"])
    assert finding.columns == ("label_copy",) and finding.evidence["score"] == 1.0


def test_multiclass_leak_blocks(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.choice(["low", "mid", "high"], 1500)
    frame = pd.DataFrame({"x": rng.normal(size=1500), "target": y})
    frame["status"] = np.where(y == "high", "closed", np.where(y == "mid", "open", "new"))
    [finding] = _audit(frame, ["target_leakage"], task="multiclass")
    assert finding.severity == "block"
    assert finding.columns == ("status",)
    assert finding.evidence["metric"] == "roc_auc_ovr_macro"


def test_regression_copy_blocks_and_noise_does_not(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 3000
    frame = pd.DataFrame({"x": rng.normal(size=n), "noise": rng.normal(size=n)})
    frame["target"] = frame["x"] + rng.normal(size=n)
    frame["final_price"] = np.exp(frame["target"] / 3) + rng.normal(0, 0.01, n)
    [finding] = _audit(frame, ["target_leakage"], task="regression")
    assert finding.severity == "block"
    assert finding.columns == ("final_price",)
    assert finding.evidence["metric"] == "r2"
    assert "R^2" in finding.message


def test_leakage_samples_large_frames(
    clean_frame: pd.DataFrame, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(target_checks, "LEAKAGE_MAX_ROWS", 500)
    frame = clean_frame.copy()
    frame["leak"] = frame["target"] * 10.0
    [finding] = _audit(frame, ["target_leakage"])
    assert finding.evidence["sampled"] is True
    assert finding.evidence["rows"] == 500
    assert "sample of 500 of 2,000 rows" in finding.evidence["method"]


def test_label_errors_leave_out_leaking_columns(clean_frame: pd.DataFrame, seed: int) -> None:
    # a post-outcome field copied from the (partly wrong) given labels predicts them
    # perfectly: a model using it would agree with every flip and find none
    noisy, flipped = _flip(clean_frame, 0.08, seed)
    noisy["resolution_code"] = np.where(noisy["target"] == 1, "R1", "R0")
    report = run_audit(_ctx(noisy), only=["label_errors", "target_leakage"])
    [leak] = report.by_check("target_leakage")
    assert leak.severity == "block" and leak.columns == ("resolution_code",)
    [finding] = report.by_check("label_errors")
    assert finding.severity == "warn"
    assert finding.evidence["left_out_leaking_columns"] == ["resolution_code"]
    assert "left out as target leakage: resolution_code" in finding.evidence["method"]
    assert "left out 'resolution_code'" in finding.message
    rows = set(finding.evidence["rows"])
    assert len(rows) >= 40
    assert len(rows & set(flipped.tolist())) / len(rows) >= 0.7
    # run on its own, the check still scans for leakage first
    [alone] = _audit(noisy, ["label_errors"])
    assert alone.evidence["rows"] == finding.evidence["rows"]


# ----------------------------------------------------------------- target_leakage: pure regions


def _churn_frame(share: float, seed: int, n: int = 3000) -> pd.DataFrame:
    """Noisy genuine features; a fee paid by ``share`` of all rows, every one a leaver."""
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=n, n_features=4, n_informative=3, n_redundant=0,
                               weights=[0.6], flip_y=0.2, random_state=seed)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(4)])
    rng = np.random.default_rng(seed)
    leavers = rng.choice(np.flatnonzero(y == 1), int(share * n), replace=False)
    frame["cancellation_fee_paid"] = 0.0
    frame.loc[leavers, "cancellation_fee_paid"] = rng.uniform(20, 200, len(leavers)).round(2)
    frame["target"] = y
    return frame


@pytest.mark.parametrize(("share", "severity"), [(0.03, "warn"), (0.12, "block"), (0.30, "block")])
def test_partial_leak_is_found_as_a_pure_region(share: float, severity: str, seed: int) -> None:
    frame = _churn_frame(share, seed)
    [finding] = _audit(frame, ["target_leakage"])
    assert finding.severity == severity
    assert finding.columns == ("cancellation_fee_paid",)
    assert finding.message.startswith("'cancellation_fee_paid > 0' implies 'target' = '1': 100.0%")
    region = finding.evidence["pure_region"]
    assert region["region"] == "cancellation_fee_paid > 0"
    assert region["share"] == pytest.approx(share, abs=0.002) and region["purity"] == 1.0
    assert region["label"] == "1" and region["p_value"] < 1e-6
    assert "data.drop" in finding.fix and "only known after the outcome" in finding.fix
    # the column as a whole is far from the 0.90 a warning by strength needs
    assert finding.evidence["score"] < 0.9


def test_a_near_pure_region_warns_rather_than_blocks(seed: int) -> None:
    frame = _churn_frame(0.2, seed)
    stayers = np.flatnonzero(frame["target"].to_numpy() == 0)
    frame.loc[stayers[:3], "cancellation_fee_paid"] = 99.0
    [finding] = _audit(frame, ["target_leakage"])
    assert finding.severity == "warn" and finding.evidence["pure_region"]["purity"] < 1.0


def test_categorical_level_leak_blocks(seed: int) -> None:
    frame = _churn_frame(0.12, seed)
    rng = np.random.default_rng(seed)
    status = rng.choice(["active", "paused", "trial"], len(frame)).astype(object)
    status[frame["cancellation_fee_paid"].to_numpy() > 0] = "closed"
    frame["status"] = status
    frame = frame.drop(columns="cancellation_fee_paid")
    [finding] = _audit(frame, ["target_leakage"])
    assert finding.severity == "block" and finding.columns == ("status",)
    assert finding.evidence["pure_region"]["region"] == "status = closed"


def test_a_region_joins_a_strength_finding_of_the_same_column(seed: int) -> None:
    frame = _churn_frame(0.3, seed)
    rng = np.random.default_rng(seed)
    fee = frame["cancellation_fee_paid"].to_numpy()
    # also strong outside the region: one finding, by strength, with the region added
    frame["cancellation_fee_paid"] = np.where(
        fee > 0, fee, frame["target"] * 2.5 + rng.normal(0, 1, len(frame)) - 10
    )
    findings = _audit(frame, ["target_leakage"])
    [finding] = [f for f in findings if f.columns == ("cancellation_fee_paid",)]
    assert finding.message.startswith("feature 'cancellation_fee_paid' alone predicts")
    assert "'cancellation_fee_paid > " in finding.message and "pure_region" in finding.evidence


def test_clean_data_sets_raise_nothing_new() -> None:
    from sklearn.datasets import load_breast_cancer

    bc = load_breast_cancer(as_frame=True).frame
    findings = _audit(bc, ["target_leakage"])
    # its strongest measurements warn by strength as before; no region is added or reported
    assert findings and all(f.severity == "warn" for f in findings)
    assert all("pure_region" not in f.evidence for f in findings)
    assert all(f.message.startswith("feature '") for f in findings)


def test_rare_categories_and_ids_are_not_pure_regions(clean_frame: pd.DataFrame, seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = clean_frame.copy()
    # a few rows per store: some are pure by chance, none is material
    frame["store"] = rng.integers(0, 400, len(frame)).astype(str)
    assert _audit(frame, ["target_leakage"]) == []
    # a customer number handed out in order of the target: 'customer_no <= 11003' is pure,
    # but no region is searched in an identifier (the strength score still blocks it)
    order = np.argsort(frame["target"].to_numpy(), kind="stable")
    ids = np.empty(len(frame), dtype=np.int64)
    ids[order] = np.arange(10_000, 10_000 + len(frame))
    frame["customer_no"] = ids
    [finding] = _audit(frame, ["target_leakage"])
    assert finding.columns == ("customer_no",) and "pure_region" not in finding.evidence
    assert [f.check for f in _audit(frame, ["id_like_column"])] == ["id_like_column"]


def test_natural_clusters_of_a_small_table_warn_rather_than_block() -> None:
    from sklearn.datasets import load_wine

    wine = load_wine(as_frame=True).frame
    # 'color_intensity <= 3.4' holds 55 of 178 wines, all of one cultivar: a real cluster
    [finding] = _audit(wine, ["target_leakage"], task="multiclass")
    assert finding.severity == "warn" and finding.columns == ("color_intensity",)
    assert finding.evidence["pure_region"]["region"] == "color_intensity <= 3.4"
