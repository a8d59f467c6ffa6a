"""The data-quality checks: planted defects are found with their column named, and a
clean make_classification frame raises nothing."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from assay.audit import CHECKS, AuditContext, AuditReport, Finding, run_audit
from assay.audit.checks.quality import (
    ConstantColumnCheck,
    HighCardinalityCheck,
    IdLikeColumnCheck,
    MissingValuesCheck,
    MixedTypesCheck,
    OutliersCheck,
)
from assay.data import Dataset, load_dataset

QUALITY = [
    "missing_values",
    "constant_column",
    "id_like_column",
    "mixed_types",
    "high_cardinality",
    "outliers",
]
N = 2000


def _audit(frame: pd.DataFrame, **kw: object) -> AuditReport:
    kw.setdefault("target", "target")
    kw.setdefault("task", "binary")
    ctx = AuditContext(dataset=Dataset.from_frame(frame), **kw)  # type: ignore[arg-type]
    return run_audit(ctx, only=QUALITY)


def _one(report: AuditReport, check: str, column: str) -> Finding:
    found = [f for f in report.by_check(check) if column in f.columns]
    assert len(found) == 1, [f.to_dict() for f in report.findings]
    return found[0]


def _columns(report: AuditReport, check: str) -> set[str]:
    return {c for f in report.by_check(check) for c in f.columns}


@pytest.fixture
def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture
def defects(clean_frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The clean frame plus one column per planted defect."""
    frame = clean_frame.copy()
    frame["holes"] = np.where(rng.random(N) < 0.3, np.nan, rng.normal(size=N))
    frame["mostly_empty"] = np.where(rng.random(N) < 0.7, np.nan, rng.normal(size=N))
    frame["few_holes"] = np.where(np.arange(N) < 40, np.nan, rng.normal(size=N))
    frame["constant"] = "same"
    frame["nothing"] = np.nan
    frame["almost_constant"] = np.where(np.arange(N) == 5, "rare", "usual")
    frame["uid"] = [str(uuid.UUID(int=int(v))) for v in rng.integers(0, 2**63, N)]
    frame["row_number"] = np.arange(1, N + 1)
    price = rng.normal(50, 5, N).round(2).astype(str).astype(object)
    price[:30], price[30:40], price[40:45] = "n/a", "?", "12 kg"
    frame["price"] = price
    frame["city"] = [f"city_{v}" for v in rng.integers(0, 1500, N)]
    income = rng.lognormal(10, 0.5, N)
    income[[3, 300, 1700]] = 999999
    frame["income"] = income
    frame["small_ints"] = rng.integers(0, 5, N)
    frame.loc[:9, "target"] = np.nan
    return frame


@pytest.fixture
def report(defects: pd.DataFrame) -> AuditReport:
    return _audit(defects)


def test_the_six_checks_are_registered_in_order() -> None:
    assert [name for name in CHECKS.names() if name in QUALITY] == QUALITY
    classes = [
        MissingValuesCheck,
        ConstantColumnCheck,
        IdLikeColumnCheck,
        MixedTypesCheck,
        HighCardinalityCheck,
        OutliersCheck,
    ]
    assert [CHECKS.get(name) for name in QUALITY] == classes


def test_clean_frame_has_no_finding(clean_frame: pd.DataFrame) -> None:
    ctx = AuditContext(dataset=Dataset.from_frame(clean_frame), target="target", task="binary")
    for name in QUALITY:
        assert CHECKS.get(name)().run(ctx) == [], name
    assert run_audit(ctx, only=QUALITY).findings == ()


def test_defects_leave_the_clean_columns_alone(report: AuditReport) -> None:
    named = {c for f in report.findings for c in f.columns}
    assert not named & {f"x{i}" for i in range(8)}
    assert "small_ints" not in named
    assert {f.severity for f in report.findings} <= {"warn", "info"}


def test_findings_are_json_safe_and_round_trip(report: AuditReport) -> None:
    data = json.loads(json.dumps(report.to_dict()))
    assert AuditReport.from_dict(data).findings == report.findings
    for finding in report.findings:
        assert finding.message and finding.fix and finding.evidence
        assert all(name in finding.message for name in finding.columns[:1])


# ---------------------------------------------------------------- missing_values


def test_missing_values_warns_on_a_column_with_30_percent_missing(report: AuditReport) -> None:
    finding = _one(report, "missing_values", "holes")
    assert finding.severity == "warn"
    assert finding.columns == ("holes",)
    assert finding.evidence["share"] == pytest.approx(0.3, abs=0.04)
    assert "Impute 'holes' inside the pipeline" in finding.fix


def test_missing_values_advises_dropping_above_half(report: AuditReport) -> None:
    finding = _one(report, "missing_values", "mostly_empty")
    assert finding.severity == "warn"
    assert finding.evidence["share"] > 0.5
    assert finding.fix.startswith("Drop 'mostly_empty'")


def test_missing_values_lists_small_shares_as_info(report: AuditReport) -> None:
    finding = _one(report, "missing_values", "few_holes")
    assert finding.severity == "info"
    assert finding.evidence["share"]["few_holes"] == pytest.approx(0.02)
    assert finding.evidence["missing"]["few_holes"] == 40


def test_missing_values_reports_rows_missing_the_target(report: AuditReport) -> None:
    finding = _one(report, "missing_values", "target")
    assert finding.severity == "warn"
    assert finding.evidence["missing"] == 10
    assert "dropped from training" in finding.message


def test_missing_values_counts_blank_strings(rng: np.random.Generator) -> None:
    values = rng.choice(["red", "green", "blue"], N).astype(object)
    values[:150], values[150:250] = "", "   "
    frame = pd.DataFrame(
        {"colour": pd.Series(values, dtype="str"), "target": rng.integers(0, 2, N)}
    )
    finding = _one(_audit(frame), "missing_values", "colour")
    assert finding.severity == "warn"
    assert finding.evidence["missing"] == 250
    assert finding.evidence["blank_strings"] == 250


def test_missing_values_ignores_dropped_columns(defects: pd.DataFrame) -> None:
    report = _audit(defects, dropped=("holes",))
    assert "holes" not in _columns(report, "missing_values")


# ---------------------------------------------------------------- constant_column


def test_constant_column_warns_on_a_single_value_and_an_empty_column(report: AuditReport) -> None:
    same = _one(report, "constant_column", "constant")
    assert same.severity == "warn"
    assert "'same'" in same.message
    assert "Drop 'constant'" in same.fix
    empty = _one(report, "constant_column", "nothing")
    assert empty.severity == "warn"
    assert "entirely missing" in empty.message


def test_constant_column_notes_a_quasi_constant_column(report: AuditReport) -> None:
    finding = _one(report, "constant_column", "almost_constant")
    assert finding.severity == "info"
    assert finding.evidence["value"] == "usual"
    assert finding.evidence["count"] == N - 1


def test_constant_column_suggests_an_indicator_when_the_rest_is_missing(
    rng: np.random.Generator,
) -> None:
    frame = pd.DataFrame(
        {"flag": np.where(rng.random(N) < 0.4, "yes", None), "target": rng.integers(0, 2, N)}
    )
    finding = _one(_audit(frame), "constant_column", "flag")
    assert "0/1 indicator" in finding.fix


# ---------------------------------------------------------------- id_like_column


def test_id_like_column_finds_a_uuid_and_a_row_counter(report: AuditReport) -> None:
    assert _columns(report, "id_like_column") == {"uid", "row_number"}
    uid = _one(report, "id_like_column", "uid")
    assert uid.severity == "warn"
    assert uid.evidence["distinct"] == N
    assert "data.id" in uid.fix and "data.drop" in uid.fix
    counter = _one(report, "id_like_column", "row_number")
    assert counter.evidence["row_counter"] is True
    assert "counts rows" in counter.message


def test_id_like_column_skips_the_configured_id_time_and_target(defects: pd.DataFrame) -> None:
    frame = defects.assign(target=np.arange(N))
    report = _audit(frame, id_column="uid", time_column="row_number", task="regression")
    assert _columns(report, "id_like_column") == set()


def test_id_like_column_skips_float_measurements_and_free_text(rng: np.random.Generator) -> None:
    words = np.array(["the", "parcel", "came", "late", "and", "broken", "great", "service"])
    frame = pd.DataFrame(
        {
            "weight": rng.normal(70, 10, N),
            "weight_text": rng.normal(70, 10, N).round(3).astype(str),
            "review": [" ".join(rng.choice(words, 8)) + f" #{i}" for i in range(N)],
            "target": rng.integers(0, 2, N),
        }
    )
    frame.loc[:9, "weight_text"] = "n/a"
    report = _audit(frame)
    assert _columns(report, "id_like_column") == set()
    assert _columns(report, "high_cardinality") == set()
    assert _columns(report, "mixed_types") == {"weight_text"}


# ---------------------------------------------------------------- mixed_types


def test_mixed_types_finds_text_in_a_numeric_column(report: AuditReport) -> None:
    finding = _one(report, "mixed_types", "price")
    assert finding.severity == "warn"
    assert finding.evidence["non_numeric"] == 45
    assert finding.evidence["numeric_share"] == pytest.approx(1 - 45 / N)
    assert finding.evidence["non_numeric_examples"][:3] == ["n/a", "?", "12 kg"]
    assert "'n/a'" in finding.message


def test_mixed_types_finds_a_rare_placeholder_beyond_the_sample(rng: np.random.Generator) -> None:
    n = 20_000
    values = pd.Series(rng.normal(size=n).round(4).astype(str), dtype="str")
    values.iloc[12_345] = "unknown"
    frame = pd.DataFrame({"reading": values, "target": rng.integers(0, 2, n)})
    finding = _one(_audit(frame), "mixed_types", "reading")
    assert finding.evidence["non_numeric"] == 1
    assert finding.evidence["non_numeric_examples"] == ["unknown"]


def test_mixed_types_finds_dates_that_do_not_parse_in_a_string_column(
    rng: np.random.Generator,
) -> None:
    days = pd.date_range("2020-01-01", periods=N, freq="D").strftime("%Y-%m-%d").to_numpy(object)
    days[7], days[8], days[9] = "2020-02-31", "unknown", "03/04/2021"
    frame = pd.DataFrame({"signup": days, "target": rng.integers(0, 2, N)})
    finding = _one(_audit(frame), "mixed_types", "signup")
    assert finding.severity == "warn"
    assert finding.evidence["unparseable"] == 2
    assert set(finding.evidence["examples"]) == {"2020-02-31", "unknown"}


def test_mixed_types_reports_unparseable_dates_of_the_time_column_loaded_from_csv(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    n = 300
    when = pd.date_range("2021-01-01", periods=n, freq="h").strftime("%Y-%m-%d %H:%M").tolist()
    when[4], when[90], when[91] = "not a date", "2021-13-45 10:00", "not a date"
    path = tmp_path / "events.csv"
    pd.DataFrame(
        {"when": when, "amount": rng.normal(size=n), "label": rng.integers(0, 2, n)}
    ).to_csv(path, index=False)
    dataset = load_dataset(path, parse_dates=["when"])
    assert pd.api.types.is_datetime64_any_dtype(dataset.frame["when"])
    ctx = AuditContext(dataset=dataset, target="label", task="binary", time_column="when")
    findings = MixedTypesCheck().run(ctx)
    assert [f.columns for f in findings] == [("when",)]
    assert findings[0].severity == "warn"
    assert findings[0].evidence["missing_after_parse"] == 3
    assert set(findings[0].evidence["examples"]) == {"not a date", "2021-13-45 10:00"}
    assert "the time column 'when'" in findings[0].message


def test_mixed_types_checks_an_unparsed_time_column(tmp_path: Path) -> None:
    when = pd.date_range("2021-01-01", periods=100, freq="D").strftime("%d/%m/%Y").tolist()
    when[50] = "sometime"
    path = tmp_path / "days.csv"
    pd.DataFrame({"when": when, "label": [0, 1] * 50}).to_csv(path, index=False)
    ctx = AuditContext(
        dataset=load_dataset(path), target="label", task="binary", time_column="when"
    )
    (finding,) = MixedTypesCheck().run(ctx)
    assert finding.columns == ("when",)
    assert finding.evidence["unparseable"] == 1
    assert finding.evidence["examples"] == ["sometime"]


# ---------------------------------------------------------------- high_cardinality


def test_high_cardinality_finds_a_1500_level_category(report: AuditReport) -> None:
    finding = _one(report, "high_cardinality", "city")
    assert finding.severity == "warn"
    levels = finding.evidence["levels"]
    assert 1000 < levels <= 1500
    assert finding.evidence["rows"] == N
    assert finding.evidence["median_rows_per_level"] < 5
    assert "target-encode" in finding.fix


def test_high_cardinality_leaves_id_like_columns_to_their_check(report: AuditReport) -> None:
    assert _columns(report, "high_cardinality") == {"city"}


def test_high_cardinality_accepts_a_category_with_enough_rows_per_level(
    rng: np.random.Generator,
) -> None:
    frame = pd.DataFrame(
        {"shop": [f"shop_{v}" for v in rng.integers(0, 60, N)], "target": rng.integers(0, 2, N)}
    )
    assert _columns(_audit(frame), "high_cardinality") == set()


# ---------------------------------------------------------------- outliers


def test_outliers_warns_on_999999_sentinels(report: AuditReport) -> None:
    finding = _one(report, "outliers", "income")
    assert finding.severity == "warn"
    assert finding.evidence["sentinels"] == {"999999": 3}
    assert finding.evidence["outlier_max"] == 999999
    assert "Replace 999999 in 'income' with missing" in finding.fix


def test_outliers_warns_on_minus_one_in_a_positive_column(rng: np.random.Generator) -> None:
    age = rng.integers(18, 90, N).astype(float)
    age[[1, 2, 3, 4]] = -1
    frame = pd.DataFrame({"age": age, "target": rng.integers(0, 2, N)})
    finding = _one(_audit(frame), "outliers", "age")
    assert finding.severity == "warn"
    assert finding.evidence["sentinels"] == {"-1": 4}


def test_outliers_grades_extreme_values_and_mild_ones(rng: np.random.Generator) -> None:
    mild = rng.normal(size=N)
    mild[10] = 12.0
    typo = rng.normal(size=N)
    typo[20] = 5e4
    frame = pd.DataFrame({"mild": mild, "typo": typo, "target": rng.integers(0, 2, N)})
    report = _audit(frame)
    info = _one(report, "outliers", "mild")
    assert info.severity == "info"
    assert info.evidence["outliers"] == 1 and info.evidence["outlier_min"] == 12.0
    warn = _one(report, "outliers", "typo")
    assert warn.severity == "warn"
    assert warn.evidence["extreme"] == 1


def test_outliers_does_not_warn_on_a_skewed_column(rng: np.random.Generator) -> None:
    n = 50_000
    frame = pd.DataFrame(
        {
            "spend": rng.lognormal(3, 1, n),
            "counts": rng.poisson(2, n),
            "target": rng.integers(0, 2, n),
        }
    )
    report = _audit(frame)
    assert all(f.severity == "info" for f in report.by_check("outliers"))
    assert "counts" not in _columns(report, "outliers")


def test_outliers_looks_at_the_target_for_regression_only(rng: np.random.Generator) -> None:
    target = rng.normal(size=N)
    target[0] = 1e5
    frame = pd.DataFrame({"x": rng.normal(size=N), "target": target})
    assert _columns(_audit(frame, task="regression"), "outliers") == {"target"}
    assert _columns(_audit(frame, task="binary"), "outliers") == set()


# ---------------------------------------------------------------- string dtype frames


def test_pandas_str_columns(rng: np.random.Generator) -> None:
    amount = rng.normal(100, 20, N).round(1).astype(str).astype(object)
    amount[:25] = "?"
    label = rng.choice(["a", "b", "c"], N).astype(object)
    label[:200] = " "
    frame = pd.DataFrame(
        {
            "amount": pd.Series(amount, dtype="str"),
            "label": pd.Series(label, dtype="str"),
            "code": pd.Series([f"K{v}" for v in rng.integers(0, 900, N)], dtype="str"),
            "key": pd.Series([f"row-{i:06d}" for i in rng.permutation(N)], dtype="str"),
            "target": rng.integers(0, 2, N),
        }
    )
    assert isinstance(frame["amount"].dtype, pd.StringDtype)
    report = _audit(frame)
    assert _one(report, "mixed_types", "amount").evidence["non_numeric"] == 25
    assert _one(report, "missing_values", "label").evidence["blank_strings"] == 200
    assert _columns(report, "high_cardinality") == {"code"}
    assert _columns(report, "id_like_column") == {"key"}


# ---------------------------------------------------------------- id_like_column on messy tables


def _with_copies(
    frame: pd.DataFrame, rng: np.random.Generator, exact: int, near: int
) -> pd.DataFrame:
    """``frame`` plus ``exact`` verbatim copies and ``near`` re-cased, re-padded copies of rows."""
    copies = frame.iloc[rng.choice(len(frame), exact + near, replace=False)].copy()
    messy = copies.iloc[exact:]
    copies.loc[messy.index, "customer"] = [
        f" {v.lower()} " if i % 2 else v.replace("-0", "-")
        for i, v in enumerate(messy["customer"])
    ]
    copies.loc[messy.index, "plan"] = messy["plan"].str.upper()
    return pd.concat([frame, copies], ignore_index=True).sample(frac=1.0, random_state=1)


@pytest.fixture
def customers(rng: np.random.Generator) -> pd.DataFrame:
    n = N
    return pd.DataFrame(
        {
            "customer": [f"C-{i:05d}" for i in rng.permutation(n)],
            "account": rng.permutation(n) + 700_000,
            "surname": [f"name{v}" for v in rng.integers(0, 2600, n)],
            "plan": rng.choice(["basic", "pro", "team"], n),
            "spend": rng.lognormal(3, 1, n),
            "target": rng.integers(0, 2, n),
        }
    )


def test_id_like_column_is_found_despite_duplicate_rows_and_ids_written_two_ways(
    customers: pd.DataFrame, rng: np.random.Generator
) -> None:
    frame = _with_copies(customers, rng, exact=80, near=60)
    assert frame["customer"].nunique() / len(frame) < 0.99  # the old rule no longer sees them
    assert frame["account"].nunique() / len(frame) < 0.99
    report = _audit(frame.reset_index(drop=True))
    assert _columns(report, "id_like_column") == {"customer", "account"}
    customer = _one(report, "id_like_column", "customer")
    assert customer.evidence["records"] == N
    assert customer.evidence["repeats_in_copied_rows"] == 140
    assert customer.evidence["written_several_ways"] == 60
    assert "repeats are all in exact or near copies of rows" in customer.message
    assert "written in more than one way (case, spaces or leading zeros)" in customer.message
    assert "Normalise 'customer'" in customer.fix
    variants = customer.evidence["variant_examples"][0]
    assert len(variants) >= 2
    assert len({re.sub(r"-0*", "-", v.strip().lower()) for v in variants}) == 1
    account = _one(report, "id_like_column", "account")
    assert account.evidence["repeats_in_copied_rows"] == 140
    assert "written_several_ways" not in account.evidence


def test_repeats_in_different_rows_are_not_an_identifier(
    customers: pd.DataFrame, rng: np.random.Generator
) -> None:
    # surname is ~54% distinct and its repeats belong to different people: not an id,
    # even in a table that also has copied rows; nor are the category and the float
    frame = _with_copies(customers, rng, exact=80, near=0).reset_index(drop=True)
    report = _audit(frame)
    assert frame["surname"].nunique() / len(frame) > 0.5
    assert not _columns(report, "id_like_column") & {"surname", "plan", "spend"}
    # a customer id repeated over several orders of each customer is a group, not a row id
    orders = pd.concat([customers.assign(spend=customers["spend"] * k) for k in (1, 2)])
    assert "customer" not in _columns(_audit(orders.reset_index(drop=True)), "id_like_column")
