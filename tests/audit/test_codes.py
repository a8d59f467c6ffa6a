"""numeric_code: planted postal codes and account numbers are found; integer measures are not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assay.audit import CHECKS, AuditContext, AuditReport, run_audit
from assay.audit.checks.codes import NumericCodeCheck
from assay.data import Dataset

N = 2000


def _audit(frame: pd.DataFrame) -> AuditReport:
    ctx = AuditContext(dataset=Dataset.from_frame(frame), target="target", task="binary")
    return run_audit(ctx, only=["numeric_code", "id_like_column"])


def _codes(report: AuditReport) -> set[str]:
    return {c for f in report.by_check("numeric_code") for c in f.columns}


@pytest.fixture
def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture
def measures(rng: np.random.Generator) -> pd.DataFrame:
    """Ordinary integer quantities that must not be taken for codes."""
    return pd.DataFrame(
        {
            "age": rng.integers(18, 91, N),
            "visits": rng.poisson(3.0, N),
            "amount": (rng.lognormal(4, 1, N) * 100).astype(int),
            "year": rng.integers(1990, 2024, N),
            "signup_month": rng.integers(2015, 2024, N) * 100 + rng.integers(1, 13, N),
            "salary": rng.integers(30, 150, N) * 1000,
            "price_cents": rng.integers(10, 100, N) * 100 + 99,
            "sqft": rng.normal(1800, 500, N).clip(500, 9000).astype(int),
            "steps": rng.normal(6000, 1200, N).clip(1000, 9999).astype(int),
            "target": rng.integers(0, 2, N),
        }
    )


def test_numeric_code_is_registered() -> None:
    assert CHECKS.get("numeric_code") is NumericCodeCheck


def test_postal_codes_and_account_numbers_are_codes(
    measures: pd.DataFrame, rng: np.random.Generator
) -> None:
    frame = measures.copy()
    zips = rng.choice(np.arange(1000, 99999), 300, replace=False)  # some lost a leading zero
    frame["zip"] = rng.choice(zips, N, p=rng.dirichlet(np.ones(300)))
    frame["merchant"] = rng.choice(rng.integers(100_000, 999_999, 150), N)
    report = _audit(frame)
    assert _codes(report) == {"zip", "merchant"}
    [finding] = [f for f in report.by_check("numeric_code") if f.columns == ("zip",)]
    assert finding.severity == "warn"
    assert "looks like a code, not a quantity" in finding.message
    assert finding.evidence["digits"] == 5 and finding.evidence["name_says_code"] is True
    short = int((frame["zip"] < 10_000).sum())
    assert short and finding.evidence["shorter_values"] == short
    assert f"{short:,} values have fewer than 5 digits" in finding.message
    assert "Treat 'zip' as a category" in finding.fix and "data.drop" in finding.fix
    [merchant] = [f for f in report.by_check("numeric_code") if f.columns == ("merchant",)]
    assert merchant.evidence["name_says_code"] is False
    assert merchant.evidence["repeated_values_with_a_neighbour"] < 0.5


def test_integer_measures_are_not_codes(measures: pd.DataFrame) -> None:
    assert _codes(_audit(measures)) == set()
    # more rows make measures repeat; their neighbours repeat with them
    many = pd.concat([measures] * 3, ignore_index=True)
    many["sqft"] = np.random.default_rng(1).normal(1800, 500, len(many)).clip(500, 9000)
    assert _codes(_audit(many.astype({"sqft": int}))) == set()


def test_a_clean_frame_has_no_code(clean_frame: pd.DataFrame) -> None:
    assert _audit(clean_frame).findings == ()


def test_an_account_number_unique_per_row_is_left_to_id_like(
    measures: pd.DataFrame, rng: np.random.Generator
) -> None:
    frame = measures.assign(account_no=rng.permutation(N) + 4_000_000)
    report = _audit(frame)
    assert _codes(report) == set()
    assert {c for f in report.by_check("id_like_column") for c in f.columns} == {"account_no"}
