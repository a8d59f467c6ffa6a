"""``numeric_code``: integer columns that are codes (postal codes, product or account numbers).

A model treats an integer as a quantity: it splits on ``zip <= 48213`` or fits a
slope to it, although 48213 is no more "between" 48212 and 48214 than any other
code. Such a column is a category written with digits.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from assay.audit.base import CHECKS, AuditContext, BaseCheck, Finding
from assay.audit.checks.quality import _finding, _id_like_columns, _kind, _pct

__all__ = ["NumericCodeCheck", "code_evidence"]

#: a code has at least this many distinct values ...
CODE_MIN_DISTINCT = 20
#: ... and at least this many digits (one fewer when its name says it is a code) ...
CODE_MIN_WIDTH = 4
#: ... in at least this share of its values (the rest may have lost leading zeros) ...
CODE_WIDTH_SHARE = 0.8
#: ... with last digits spread evenly: no digit ends more than this share of the values
#: (rounded amounts end in 0, prices in 9)
CODE_LAST_DIGIT_SHARE = 0.3
#: without a telling name, codes repeat (rows per distinct value at least this) ...
CODE_ROWS_PER_VALUE = 2.0
#: ... while their neighbours (value +- 1) mostly do not occur: in a measured
#: quantity dense enough to repeat, neighbouring values occur too
CODE_NEIGHBOUR_SHARE = 0.5
#: name parts that say a column holds codes
CODE_NAME_PARTS = frozenset(
    {
        "zip", "zipcode", "postal", "postcode", "plz", "cep", "code", "sku", "account",
        "acct", "iban", "phone", "fips", "naics", "sic", "mcc", "isbn", "ean", "upc",
        "ssn", "no", "nr",
    }
)  # fmt: skip


def _name_says_code(name: str) -> bool:
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", name).lower()
    return bool(set(re.split(r"[^a-z0-9]+", spaced)) & CODE_NAME_PARTS)


def _digits(values: np.ndarray) -> np.ndarray:
    """The number of decimal digits of each non-negative integer (0 has one)."""
    return np.asarray(np.floor(np.log10(np.maximum(values, 1))).astype(np.int64) + 1)


def _is_calendar(values: np.ndarray, width: int) -> bool:
    """Years (1800-2100), or dates written as yyyymm or yyyymmdd."""
    if width == 4:
        return bool(values.min() >= 1800 and values.max() <= 2100)
    if width == 6:
        year, month = values // 100, values % 100
        return bool(np.all((year >= 1800) & (year <= 2100) & (month >= 1) & (month <= 12)))
    if width == 8:
        year, month, day = values // 10_000, values // 100 % 100, values % 100
        ok = (year >= 1800) & (year <= 2100) & (month >= 1) & (month <= 12)
        return bool(np.all(ok & (day >= 1) & (day <= 31)))
    return False


def code_evidence(name: str, series: pd.Series) -> dict[str, Any] | None:
    """Why the integer column ``series`` looks like a code, or None when it does not."""
    if pd.api.types.is_bool_dtype(series.dtype) or not pd.api.types.is_numeric_dtype(
        series.dtype
    ):
        return None
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    values = values[np.isfinite(values)]
    if values.size == 0 or values.min() < 0 or np.any(np.mod(values, 1) != 0):
        return None
    values = values.astype(np.int64)
    distinct, counts = np.unique(values, return_counts=True)
    named = _name_says_code(name)
    width = int(_digits(distinct[-1:])[0])
    if distinct.size < CODE_MIN_DISTINCT or width < CODE_MIN_WIDTH - int(named):
        return None
    digits = _digits(values)
    width_share = float(np.mean(digits == width))
    if width_share < CODE_WIDTH_SHARE or _is_calendar(distinct, width):
        return None
    last = np.bincount(distinct % 10, minlength=10) / distinct.size
    if last.max() > CODE_LAST_DIGIT_SHARE:
        return None
    rows_per_value = values.size / distinct.size
    repeated = distinct[counts >= 2]
    present = np.zeros(repeated.size, dtype=bool)
    for step in (-1, 1):
        at = np.searchsorted(distinct, repeated + step).clip(max=distinct.size - 1)
        present |= distinct[at] == repeated + step
    neighbour_share = float(present.mean()) if repeated.size else 1.0
    unordered = rows_per_value >= CODE_ROWS_PER_VALUE and neighbour_share < CODE_NEIGHBOUR_SHARE
    if not (named or unordered):
        return None
    return {
        "distinct": int(distinct.size),
        "values": int(values.size),
        "digits": width,
        "share_with_that_many_digits": round(width_share, 6),
        "shorter_values": int(np.sum(digits < width)),
        "rows_per_value": round(rows_per_value, 3),
        "repeated_values_with_a_neighbour": round(neighbour_share, 6),
        "name_says_code": named,
        "examples": [str(v) for v in distinct[np.argsort(-counts, kind="stable")[:3]]],
    }


def _may_be_code(ctx: AuditContext, name: str) -> bool:
    """A quick look at the recorded schema: enough distinct values, none negative, wide enough."""
    if name not in ctx.dataset.schema:
        return True
    column = ctx.dataset.schema[name]
    if column.n_unique < CODE_MIN_DISTINCT or column.min is None or column.max is None:
        return False
    low, high = float(column.min), float(column.max)
    return low >= 0 and high >= 10 ** (CODE_MIN_WIDTH - 2)


@CHECKS.register("numeric_code")
class NumericCodeCheck(BaseCheck):
    """Integer features that are codes: many distinct values of one width, without order.

    A column is a code when it has at least 20 distinct non-negative integers, the
    largest has 4 or more digits (3 when the name says code, zip, postal, sku,
    account, ...), at least 80% of the values have that many digits (no tail of
    wider values, as a measured quantity has), last digits are spread evenly (not
    rounded amounts or prices), it is not years or yyyymm(dd) dates, and either the
    name says so or the values repeat while the values next to them (+-1) mostly do
    not occur. ID-like columns are left to ``id_like_column``.
    """

    def run(self, ctx: AuditContext) -> list[Finding]:
        findings = []
        id_like = _id_like_columns(ctx)
        for name in ctx.features:
            if name in id_like or _kind(ctx, name) != "integer" or not _may_be_code(ctx, name):
                continue
            evidence = code_evidence(name, ctx.frame[name])
            if evidence is None:
                continue
            width = evidence["digits"]
            message = (
                f"column '{name}' looks like a code, not a quantity: {evidence['distinct']:,} "
                f"distinct integers, {_pct(evidence['share_with_that_many_digits'])} of them "
                f"{width} digits long (e.g. {', '.join(evidence['examples'])}); a model would "
                "treat their order and distance as meaningful"
            )
            if evidence["shorter_values"]:
                message += (
                    f"; {evidence['shorter_values']:,} values have fewer than {width} digits: "
                    "leading zeros written at the source were lost when they were read as numbers"
                )
            fix = (
                f"Treat '{name}' as a category: assay.yaml has no type override, so store it as "
                "text at the source (a string column in Parquet; in a CSV file a value made only "
                "of digits is read as a number, so give the codes a letter prefix), or keep a "
                f"coarser part (its first digits) as a category, or add '{name}' to data.drop."
            )
            findings.append(_finding(self.alias, "warn", name, message + ".", evidence, fix))
        return findings
