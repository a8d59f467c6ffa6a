"""Data-quality checks: missing values, constant and ID-like columns, mixed types,
high cardinality and outliers.

Every check is vectorised over whole columns. Questions that only need an estimate
(does this string column hold numbers? dates?) are answered on a seeded sample of
:data:`SAMPLE_SIZE` values; exact counts are taken on all rows only for the columns
the sample singles out.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from assay.audit.base import CHECKS, AuditContext, BaseCheck, Finding, Severity
from assay.data.keys import near_duplicate_groups
from assay.data.schema import infer_kind

__all__ = [
    "ConstantColumnCheck",
    "HighCardinalityCheck",
    "IdLikeColumnCheck",
    "MissingValuesCheck",
    "MixedTypesCheck",
    "OutliersCheck",
]

#: values sampled per string column to tell numbers, dates and text apart
SAMPLE_SIZE = 2000
#: a feature missing more than this share of rows is a warning ...
MISSING_WARN_SHARE = 0.05
#: ... and above this share the advice is to drop it
MISSING_DROP_SHARE = 0.5
#: one value in at least this share of rows makes a column quasi-constant
QUASI_CONSTANT_SHARE = 0.999
#: distinct values over non-missing values from which a column identifies rows ...
ID_DISTINCT_SHARE = 0.99
#: ... given at least this many values; a column with fewer distinct values but at
#: least this share is looked at again with exact and near copies of rows merged
ID_MIN_ROWS = 50
ID_REPEAT_FLOOR = 0.5
#: a string column is "mostly numbers" or "mostly dates" from this share of its values
MOSTLY = 0.5
#: high_cardinality: more levels than this, and either a median below
#: HIGH_CARD_MEDIAN_ROWS rows per level or more levels than HIGH_CARD_LEVEL_SHARE of rows
HIGH_CARD_MIN_LEVELS = 50
HIGH_CARD_MEDIAN_ROWS = 10
HIGH_CARD_LEVEL_SHARE = 0.1
#: outliers lie beyond this many robust standard deviations from the median ...
OUTLIER_Z = 7.0
#: ... and beyond the IQR fences at this multiple, whichever is wider
OUTLIER_IQR = 3.0
#: beyond this many robust standard deviations a value is extreme (entry or unit error) ...
EXTREME_Z = 100.0
#: ... provided, in a non-negative column, it is this far out on a log scale too
EXTREME_LOG_Z = 10.0
#: numeric columns with at most this many distinct values are skipped by outliers
OUTLIER_MIN_DISTINCT = 10
#: robust statistics are computed on at most this many values per column
OUTLIER_SAMPLE = 100_000
#: at most this many distinct dates off the column's main format are parsed one by one
DATE_PARSE_CAP = 20_000

_DATE_RE = (
    r"^\s*(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}"
    r"|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}"
    r"|\d{1,2}\s+[A-Za-z]{3,9}\.?,?\s+\d{2,4}"
    r"|[A-Za-z]{3,9}\.?\s+\d{1,2},?\s+\d{2,4})"
)
_NINES = re.compile(r"^9{2,}$")


# ---------------------------------------------------------------- column helpers


def _finding(
    check: str, severity: Severity, name: str, message: str, evidence: dict[str, Any], fix: str
) -> Finding:
    return Finding(check, severity, (name,), message, evidence, fix)


def _is_string(series: pd.Series) -> bool:
    """Columns that hold strings: the pandas ``str`` dtype or ``object``."""
    return isinstance(series.dtype, pd.StringDtype) or series.dtype == object


def _kind(ctx: AuditContext, name: str) -> str:
    if name in ctx.dataset.schema:
        return ctx.dataset.schema[name].kind
    return infer_kind(ctx.frame[name])


def _n_unique(ctx: AuditContext, name: str) -> int:
    if name in ctx.dataset.schema:
        return ctx.dataset.schema[name].n_unique
    return int(ctx.frame[name].nunique())


def _as_text(values: pd.Series) -> pd.Series:
    """The values as the pandas ``str`` dtype, whose string operations run in Arrow."""
    if isinstance(values.dtype, pd.StringDtype):
        return values
    try:
        return values.astype("str")
    except (TypeError, ValueError):
        return values.map(str, na_action="ignore").astype("str")


def _blank_mask(series: pd.Series) -> np.ndarray | None:
    """Empty or whitespace-only strings; None for columns that do not hold strings."""
    if not _is_string(series):
        return None
    return np.asarray(_as_text(series).str.strip().eq("").to_numpy(dtype=bool, na_value=False))


def _missing_mask(series: pd.Series) -> np.ndarray:
    mask = np.asarray(series.isna().to_numpy(), dtype=bool)
    blank = _blank_mask(series)
    return mask | blank if blank is not None else mask


def _sample_values(series: pd.Series, seed: int) -> pd.Series:
    """Up to SAMPLE_SIZE non-missing, non-blank values from seeded random rows."""
    if len(series) > SAMPLE_SIZE:
        rows = np.random.default_rng(seed).choice(len(series), SAMPLE_SIZE, replace=False)
        series = series.iloc[np.sort(rows)]
    return series[~_missing_mask(series)]


def _to_numbers(values: pd.Series) -> pd.Series:
    """``values`` as floats, NaN where a value is not a number (``"12 kg"``, ``"n/a"``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pd.to_numeric(values, errors="coerce").astype(float)
        except (TypeError, ValueError):  # objects that are neither numbers nor strings
            return pd.Series(np.nan, index=values.index)


def _date_like_mask(values: pd.Series) -> np.ndarray:
    """Which of ``values`` are written like a date (a cheap regex; parsing confirms)."""
    return np.asarray(_as_text(values).str.match(_DATE_RE).to_numpy(dtype=bool, na_value=False))


def _date_mask(values: pd.Series) -> np.ndarray:
    """Which of ``values`` (non-missing strings) are written like a date and parse as one.

    The format guessed from the first date-like value is applied to all at C speed;
    the distinct values it misses are parsed one by one, up to DATE_PARSE_CAP of them
    (beyond the cap, date-like values are taken as dates).
    """
    text = _as_text(values)
    looks = _date_like_mask(text)
    ok = np.zeros(len(text), dtype=bool)
    if not looks.any():
        return ok
    dates = text[looks].str.strip()
    parsed = np.zeros(len(dates), dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fmt = guess_datetime_format(str(dates.iloc[0]))
        if fmt is not None:
            with contextlib.suppress(ValueError, TypeError):
                parsed = (
                    pd.to_datetime(dates, format=fmt, errors="coerce", utc=True).notna().to_numpy()
                )
        if not parsed.all():
            distinct = pd.unique(dates[~parsed].to_numpy(dtype=object))
            checked = distinct[:DATE_PARSE_CAP]
            good = pd.to_datetime(
                pd.Series(checked, dtype=object), format="mixed", errors="coerce", utc=True
            )
            accepted = set(checked[good.notna().to_numpy()]) | set(distinct[DATE_PARSE_CAP:])
            parsed = parsed | dates.isin(accepted).to_numpy()
    ok[looks] = parsed
    return ok


@dataclass(frozen=True)
class _StringProfile:
    """What a sample of a string column holds."""

    values: int
    numeric_share: float
    numeric_integral: bool
    date_share: float


def _profile(series: pd.Series, seed: int) -> _StringProfile:
    sample = _sample_values(series, seed)
    if sample.empty:
        return _StringProfile(0, 0.0, True, 0.0)
    numbers = _to_numbers(sample).to_numpy()
    numeric = ~np.isnan(numbers)
    integral = bool(np.all(np.mod(numbers[numeric], 1) == 0))
    share = float(numeric.mean())
    date_share = 0.0 if share >= MOSTLY else float(_date_like_mask(sample).mean())
    return _StringProfile(len(sample), share, integral, date_share)


def _examples(values: pd.Series, limit: int = 10) -> list[str]:
    """The most frequent values, as short strings."""
    counts = values.astype(str).value_counts()
    return [v if len(v) <= 60 else v[:57] + "..." for v in counts.index[:limit].tolist()]


def _quote(values: list[str], limit: int = 3) -> str:
    return ", ".join(repr(v) for v in values[:limit])


def _pct(share: float) -> str:
    return f"{share:.1%}" if share >= 0.001 or share == 0 else f"{share:.2%}"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _is_row_counter(series: pd.Series) -> bool:
    if len(series) < 10 or series.isna().any():
        return False
    steps = np.diff(series.to_numpy(dtype=float))
    return bool(np.all(steps == 1) or np.all(steps == -1))


@dataclass(frozen=True)
class _IdKeys:
    """Identifiers as compared by a person: case, spaces and leading zeros do not count.

    ``"C-0012"``, ``"c-0012 "`` and ``"C-12"`` share one key; numbers are their own
    key. ``codes`` holds each row's key (-1 when missing), ``uniques`` the values as
    written and ``key_of_unique`` the key of each.
    """

    codes: np.ndarray
    uniques: np.ndarray
    key_of_unique: np.ndarray

    def variants(self, limit: int = 3) -> tuple[int, list[list[str]]]:
        """How many keys are written in more than one way, and a few examples."""
        sizes = np.bincount(self.key_of_unique)
        several = np.flatnonzero(sizes > 1)
        examples = [
            [str(v) for v in self.uniques[self.key_of_unique == k][:3]] for k in several[:limit]
        ]
        return int(several.size), examples


def _id_keys(series: pd.Series) -> _IdKeys:
    import pyarrow as pa
    import pyarrow.compute as pc

    if not _is_string(series):
        codes, uniques = pd.factorize(series)
        return _IdKeys(codes.astype(np.int64), np.asarray(uniques), np.arange(len(uniques)))
    codes, uniques = pd.factorize(_as_text(series))
    raw = np.asarray(uniques, dtype=object)
    text = pa.array(raw, type=pa.string())
    text = pc.replace_substring_regex(pc.utf8_lower(text), r"\s", "")
    text = pc.replace_substring_regex(text, r"(^|[^0-9])0+([0-9])", r"\1\2")
    key_of_unique = pd.factorize(text.to_numpy(zero_copy_only=False))[0].astype(np.int64)
    row_codes = np.where(codes >= 0, key_of_unique[np.maximum(codes, 0)], -1)
    return _IdKeys(row_codes.astype(np.int64), raw, key_of_unique)


def _unique_per_record(ctx: AuditContext, keys: _IdKeys, leave_out: list[str]) -> tuple[int, int]:
    """Distinct identifiers, and the records they are found in.

    Rows whose identifier occurs once are one record each; the rows of a repeated
    identifier count once per group of exact or near copies (on the other columns).
    """
    codes = keys.codes
    present = codes >= 0
    distinct = int(np.unique(codes[present]).size)
    counts = np.bincount(codes[present])
    repeated = np.flatnonzero(present & (counts[np.maximum(codes, 0)] > 1))
    records = int(present.sum()) - repeated.size
    columns = [c for c in ctx.features if c not in leave_out]
    if ctx.target is not None and ctx.target in ctx.frame.columns:
        columns.append(ctx.target)
    if repeated.size and columns:
        groups = near_duplicate_groups(ctx.frame.iloc[repeated], columns, seed=ctx.seed)
        pairs = codes[repeated] * (int(groups.max()) + 1) + groups
        records += int(np.unique(pairs).size)
    else:
        records += repeated.size
    return distinct, records


def _id_like_columns(ctx: AuditContext) -> dict[str, dict[str, Any]]:
    """Features that identify rows, with their evidence (shared by three checks)."""
    return ctx.shared("quality.id_like_columns", lambda: _find_id_like(ctx))


def _find_id_like(ctx: AuditContext) -> dict[str, dict[str, Any]]:
    """Columns >= 99% distinct, row counters, and columns whose only repeats are copied rows.

    A table with duplicate rows repeats their identifiers too, so a column short of
    99% distinct values is looked at again with copies merged: its values (case,
    spaces and leading zeros ignored) are compared with the records, i.e. the rows
    once exact and near copies on the other columns count as one. An identifier
    has about as many distinct values as there are records; a category (or a name
    shared by different people) has far fewer.
    """
    found: dict[str, dict[str, Any]] = {}
    repeated: list[str] = []
    for name in ctx.features:
        kind = _kind(ctx, name)
        if kind not in ("categorical", "integer"):
            continue
        series = ctx.frame[name]
        non_null = int(series.notna().sum())
        n_unique = _n_unique(ctx, name)
        counter = kind == "integer" and _is_row_counter(series)
        if not counter and non_null < ID_MIN_ROWS:
            continue
        if not counter and n_unique < ID_DISTINCT_SHARE * non_null:
            if n_unique >= ID_REPEAT_FLOOR * non_null:
                repeated.append(name)
            continue
        evidence = _id_evidence(ctx, name, n_unique, non_null, counter)
        if evidence is not None:
            found[name] = evidence
    for name in repeated:
        keys = _id_keys(ctx.frame[name])
        distinct, records = _unique_per_record(ctx, keys, repeated)
        if distinct < ID_MIN_ROWS or distinct < ID_DISTINCT_SHARE * records:
            continue
        non_null = int(ctx.frame[name].notna().sum())
        evidence = _id_evidence(ctx, name, _n_unique(ctx, name), non_null, False, keys)
        if evidence is not None:
            evidence["records"] = records
            evidence["repeats_in_copied_rows"] = non_null - records
            found[name] = evidence
    return {name: found[name] for name in ctx.features if name in found}


def _id_evidence(
    ctx: AuditContext,
    name: str,
    n_unique: int,
    non_null: int,
    counter: bool,
    keys: _IdKeys | None = None,
) -> dict[str, Any] | None:
    series = ctx.frame[name]
    timestamps = False
    if _kind(ctx, name) == "categorical" and _is_string(series):
        profile = _profile(series, ctx.seed)
        if profile.numeric_share >= MOSTLY and not profile.numeric_integral:
            return None  # a measurement stored as text: mixed_types reports it
        timestamps = profile.date_share >= MOSTLY
    evidence: dict[str, Any] = {
        "distinct": n_unique,
        "values": non_null,
        "distinct_share": round(n_unique / non_null, 4) if non_null else 0.0,
        "row_counter": counter,
        "timestamps": timestamps,
        "examples": [str(v) for v in series.iloc[:100].dropna().iloc[:3].tolist()],
    }
    if _is_string(series) and not timestamps:
        n_variants, examples = (_id_keys(series) if keys is None else keys).variants()
        if n_variants:
            evidence["written_several_ways"] = n_variants
            evidence["variant_examples"] = examples
    return evidence


# ---------------------------------------------------------------- the checks


@CHECKS.register("missing_values")
class MissingValuesCheck(BaseCheck):
    """Columns with missing values (blank strings count), and rows missing the target.

    A column missing more than 5% of rows is a warning (drop it above 50%); smaller
    shares are listed together in one informational finding. Dropped columns are
    not looked at.
    """

    def run(self, ctx: AuditContext) -> list[Finding]:
        frame = ctx.frame
        n = len(frame)
        findings: list[Finding] = []
        minor: dict[str, float] = {}
        minor_counts: dict[str, int] = {}
        nulls = frame.isna().sum()
        for name in frame.columns:
            if name in ctx.dropped or n == 0:
                continue
            blank = _blank_mask(frame[name])
            n_blank = int(blank.sum()) if blank is not None else 0
            missing = int(nulls[name]) + n_blank
            if missing == 0:
                continue
            share = missing / n
            if name == ctx.target:
                findings.append(self._target(name, missing, n, n_blank))
            elif share > MISSING_WARN_SHARE:
                findings.append(self._column(name, missing, n, n_blank))
            else:
                minor[name], minor_counts[name] = round(share, 6), missing
        if minor:
            listed = ", ".join(f"'{c}' ({_pct(s)})" for c, s in list(minor.items())[:8])
            more = f" and {len(minor) - 8} more" if len(minor) > 8 else ""
            message = (
                f"{len(minor)} column(s) miss a few values (at most {_pct(max(minor.values()))} "
                f"of {n:,} rows): {listed}{more}."
            )
            fix = "Nothing urgent: impute them inside the pipeline (fitted on training rows only)."
            evidence = {"rows": n, "share": minor, "missing": minor_counts}
            findings.append(Finding(self.alias, "info", tuple(minor), message, evidence, fix))
        return findings

    def _column(self, name: str, missing: int, n: int, n_blank: int) -> Finding:
        share = missing / n
        blanks = f", {n_blank:,} of them empty or blank strings" if n_blank else ""
        if share > MISSING_DROP_SHARE:
            fix = (
                f"Drop '{name}' (add it to data.drop) unless its absence carries meaning; "
                "then keep only a missing-indicator."
            )
        else:
            fix = (
                f"Impute '{name}' inside the pipeline (fitted on training rows only), with a "
                "missing-indicator if absence may carry meaning."
            )
        evidence = {
            "rows": n,
            "missing": missing,
            "share": round(share, 6),
            "blank_strings": n_blank,
            "share_per_column": {name: round(share, 6)},
        }
        message = f"column '{name}' misses {missing:,} of {n:,} values ({_pct(share)}){blanks}."
        return _finding(self.alias, "warn", name, message, evidence, fix)

    def _target(self, name: str, missing: int, n: int, n_blank: int) -> Finding:
        share = missing / n
        message = (
            f"{missing:,} of {n:,} rows ({_pct(share)}) have no value in the target '{name}'; "
            "they will be dropped from training."
        )
        evidence = {
            "rows": n,
            "missing": missing,
            "share": round(share, 6),
            "blank_strings": n_blank,
        }
        fix = (
            "Recover the missing labels at the source if you can; otherwise check that the "
            "unlabelled rows are not a biased subset."
        )
        return _finding(self.alias, "warn", name, message, evidence, fix)


@CHECKS.register("constant_column")
class ConstantColumnCheck(BaseCheck):
    """Features with a single distinct value (warn) or one value in >= 99.9% of rows (info)."""

    def run(self, ctx: AuditContext) -> list[Finding]:
        n = len(ctx.frame)
        findings: list[Finding] = []
        # a value in >= 99.9% of rows leaves at most 0.1% of rows for all other values
        max_quasi = 1 + int(n * (1 - QUASI_CONSTANT_SHARE))
        for name in ctx.features if n else []:
            n_unique = _n_unique(ctx, name)
            series = ctx.frame[name]
            if n_unique <= 1:
                findings.append(self._constant(name, series, n))
                continue
            if n_unique > max_quasi:
                continue
            counts = series.value_counts(dropna=True)
            top = int(counts.iloc[0])
            if top / n >= QUASI_CONSTANT_SHARE:
                value = str(counts.index[0])
                message = (
                    f"column '{name}' is quasi-constant: {value!r} in {top:,} of {n:,} rows "
                    f"({_pct(top / n)})."
                )
                evidence = {
                    "rows": n,
                    "value": value,
                    "count": top,
                    "share": round(top / n, 6),
                    "distinct": n_unique,
                }
                fix = (
                    f"Drop '{name}' unless its rare values are known to matter; a model can "
                    "hardly learn from a handful of rows."
                )
                findings.append(_finding(self.alias, "info", name, message, evidence, fix))
        return findings

    def _constant(self, name: str, series: pd.Series, n: int) -> Finding:
        present = series.dropna()
        missing = n - len(present)
        value = None if present.empty else str(present.iloc[0])
        fix = f"Drop '{name}' (add it to data.drop): it carries no information."
        if value is None:
            message = f"column '{name}' is entirely missing ({n:,} rows)."
        else:
            extra = f" (the other {missing:,} rows are missing)" if missing else ""
            message = f"column '{name}' holds the single value {value!r} in every row{extra}."
            if missing:
                fix += " If present-versus-missing matters, encode it as a 0/1 indicator instead."
        evidence = {"rows": n, "value": value, "missing": missing}
        return _finding(self.alias, "warn", name, message, evidence, fix)


@CHECKS.register("id_like_column")
class IdLikeColumnCheck(BaseCheck):
    """String or integer features that identify rows.

    A column identifies rows when it is >= 99% distinct, counts rows, or is unique
    per record once exact and near copies of rows are merged and its values are
    compared without case, spaces and leading zeros (so duplicate rows, and ids
    written as ``"C-0012"`` and ``"c-12 "``, do not hide it). A model can memorise
    such a column instead of learning. Continuous float measurements and free text
    are not flagged; nor are the configured id, time and group columns or the target.
    """

    def run(self, ctx: AuditContext) -> list[Finding]:
        findings = []
        for name, evidence in _id_like_columns(ctx).items():
            if evidence["row_counter"]:
                what = "counts rows (each value is the previous one plus 1)"
            else:
                what = (
                    f"has {evidence['distinct']:,} distinct values in {evidence['values']:,} rows "
                    f"({_pct(evidence['distinct_share'])})"
                )
            if "records" in evidence:
                what += (
                    f", and is unique per record: its {evidence['repeats_in_copied_rows']:,} "
                    "repeats are all in exact or near copies of rows"
                )
            fix = (
                f"Set data.id: {name} if it identifies records, or add '{name}' to data.drop; "
                "a model would memorise it."
            )
            if evidence["timestamps"]:
                what += ", timestamps written as text"
                fix = (
                    f"Set data.time: {name} if it orders the rows, or derive coarser date "
                    f"features (month, weekday) from it and add '{name}' to data.drop."
                )
            if "written_several_ways" in evidence:
                shown = " / ".join(repr(v) for v in evidence["variant_examples"][0])
                what += (
                    f"; {evidence['written_several_ways']:,} of its values are written in more "
                    f"than one way (case, spaces or leading zeros), e.g. {shown}"
                )
                fix += (
                    f" Normalise '{name}' at the source (one case, no spaces, one zero padding) "
                    "so that the same record is not counted twice."
                )
            message = f"column '{name}' looks like a row identifier: it {what}."
            findings.append(_finding(self.alias, "warn", name, message, evidence, fix))
        return findings


@CHECKS.register("mixed_types")
class MixedTypesCheck(BaseCheck):
    """String columns mixing numbers and text, and dates that do not parse.

    Looks at the features, the target and the time column (string columns that
    mostly hold numbers or dates), and at every column converted to dates at load
    time whose unparseable values ``Dataset.unparsed`` kept.
    """

    def run(self, ctx: AuditContext) -> list[Finding]:
        frame = ctx.frame
        names = [*ctx.features]
        for extra in (ctx.target, ctx.time_column, *ctx.dataset.unparsed):
            if extra is not None and extra in frame.columns and extra not in names:
                names.append(extra)
        findings: list[Finding] = []
        for name in names:
            series = frame[name]
            finding: Finding | None = None
            if name in ctx.dataset.unparsed:
                finding = self._unparsed(ctx, name)
            elif _is_string(series):
                profile = _profile(series, ctx.seed)
                is_time = name == ctx.time_column
                if profile.values and profile.numeric_share >= MOSTLY and not is_time:
                    finding = self._numbers(name, series)
                elif profile.values and (profile.date_share >= MOSTLY or is_time):
                    finding = self._dates(ctx, name, series)
            if finding is not None:
                findings.append(finding)
        return findings

    def _numbers(self, name: str, series: pd.Series) -> Finding | None:
        values = _as_text(series)[~_missing_mask(series)]
        numeric = _to_numbers(values).notna().to_numpy()
        n_text = int((~numeric).sum())
        if n_text == 0:
            return None
        share = float(numeric.mean())
        examples = _examples(values[~numeric])
        message = (
            f"column '{name}' mixes numbers and text: {_pct(share)} of its {len(values):,} "
            f"values are numbers, the other {n_text:,} are text such as {_quote(examples)}."
        )
        evidence = {
            "values": len(values),
            "numeric_share": round(share, 6),
            "non_numeric": n_text,
            "non_numeric_examples": examples,
        }
        fix = (
            f"Map placeholders such as {_quote(examples, 2)} to missing when loading, strip "
            f"units or separators, and cast '{name}' to a number."
        )
        return _finding(self.alias, "warn", name, message, evidence, fix)

    def _dates(self, ctx: AuditContext, name: str, series: pd.Series) -> Finding | None:
        values = _as_text(series)[~_missing_mask(series)]
        ok = _date_mask(values)
        n_bad = int((~ok).sum())
        if n_bad == 0:
            return None
        examples = _examples(values[~ok])
        share = n_bad / len(values)
        message = (
            f"{self._role(ctx, name)} '{name}' has {n_bad:,} of {len(values):,} values "
            f"({_pct(share)}) that do not parse as dates, such as {_quote(examples)}."
        )
        evidence = {
            "values": len(values),
            "unparseable": n_bad,
            "unparseable_share": round(share, 6),
            "examples": examples,
        }
        return _finding(self.alias, "warn", name, message, evidence, self._fix(ctx, name))

    def _unparsed(self, ctx: AuditContext, name: str) -> Finding:
        examples = [str(v) for v in ctx.dataset.unparsed[name]]
        n = ctx.dataset.n_rows
        missing = int(ctx.frame[name].isna().sum())
        message = (
            f"{self._role(ctx, name)} '{name}' has values that are not dates, such as "
            f"{_quote(examples)}; they were set missing ({missing:,} of {n:,} rows, "
            f"{_pct(missing / n if n else 0.0)}, now have no date)."
        )
        evidence = {"rows": n, "missing_after_parse": missing, "examples": examples}
        return _finding(self.alias, "warn", name, message, evidence, self._fix(ctx, name))

    @staticmethod
    def _role(ctx: AuditContext, name: str) -> str:
        return "the time column" if name == ctx.time_column else "column"

    @staticmethod
    def _fix(ctx: AuditContext, name: str) -> str:
        if name == ctx.time_column:
            return (
                "Correct these values at the source: rows without a time cannot be placed in "
                "a chronological split or a drift window."
            )
        return (
            f"Correct these values at the source, or set them missing, and parse '{name}' as dates."
        )


@CHECKS.register("high_cardinality")
class HighCardinalityCheck(BaseCheck):
    """Categorical features with too many levels for the number of rows.

    Free text, ID-like columns (``id_like_column`` reports them) and string columns
    that mostly hold numbers or dates are left to their own checks.
    """

    def run(self, ctx: AuditContext) -> list[Finding]:
        findings: list[Finding] = []
        id_like = _id_like_columns(ctx)
        for name in ctx.features:
            if name in id_like or _kind(ctx, name) != "categorical":
                continue
            if _n_unique(ctx, name) <= HIGH_CARD_MIN_LEVELS:
                continue
            series = ctx.frame[name]
            if _is_string(series):
                profile = _profile(series, ctx.seed)
                if profile.numeric_share >= MOSTLY or profile.date_share >= MOSTLY:
                    continue
            counts = (_as_text(series) if _is_string(series) else series).value_counts()
            counts = counts[counts > 0]
            levels, rows, median = len(counts), int(counts.sum()), float(counts.median())
            if levels <= HIGH_CARD_MIN_LEVELS or (
                median >= HIGH_CARD_MEDIAN_ROWS and levels <= HIGH_CARD_LEVEL_SHARE * rows
            ):
                continue
            rare = counts[counts < HIGH_CARD_MEDIAN_ROWS]
            message = (
                f"column '{name}' has {levels:,} levels for {rows:,} rows (median {median:g} rows "
                f"per level; {len(rare):,} levels have fewer than {HIGH_CARD_MEDIAN_ROWS} rows)."
            )
            evidence = {
                "levels": levels,
                "rows": rows,
                "median_rows_per_level": median,
                "levels_share_of_rows": round(levels / rows, 6),
                "single_row_levels": int((counts == 1).sum()),
                "rare_levels": len(rare),
                "rare_rows_share": round(float(rare.sum()) / rows, 6),
                "top_levels": {str(k): int(v) for k, v in counts.iloc[:5].items()},
            }
            fix = (
                f"Group the levels of '{name}' with fewer than {HIGH_CARD_MEDIAN_ROWS} rows into "
                "'other', target-encode it inside the pipeline (fitted on training rows only), "
                "or drop it."
            )
            findings.append(_finding(self.alias, "warn", name, message, evidence, fix))
        return findings


def _is_sentinel(value: float) -> bool:
    """Codes that stand for "unknown": 99, 999, ..., their negatives, and -1."""
    if not np.isfinite(value) or value != np.floor(value):
        return False
    return value == -1 or bool(_NINES.match(str(int(abs(value)))))


def _robust_stats(sample: np.ndarray) -> tuple[float, float, float, float] | None:
    """Median, robust standard deviation (MAD, else IQR, else 1-99% range), Q1, Q3."""
    q1, median, q3 = (float(q) for q in np.quantile(sample, [0.25, 0.5, 0.75]))
    scale = float(np.median(np.abs(sample - median))) * 1.4826
    if scale <= 0:
        scale = (q3 - q1) / 1.349
    if scale <= 0:
        lo, hi = np.quantile(sample, [0.01, 0.99])
        scale = float(hi - lo) / 4.653
    return (median, scale, q1, q3) if scale > 0 else None


@CHECKS.register("outliers")
class OutliersCheck(BaseCheck):
    """Numeric values far outside the bulk, by median and MAD (and IQR fences).

    Informational unless extreme values (beyond 100 robust standard deviations and
    not explained by a skewed distribution) or sentinel codes (999999, or -1 in a
    non-negative column) are present. Columns with at most 10 distinct values are
    skipped; the target is looked at for regression only.
    """

    def run(self, ctx: AuditContext) -> list[Finding]:
        names = list(ctx.features)
        if ctx.task == "regression" and ctx.target in ctx.frame.columns:
            names.append(str(ctx.target))
        findings = []
        for name in names:
            series = ctx.frame[name]
            if _kind(ctx, name) not in ("numeric", "integer") or not pd.api.types.is_numeric_dtype(
                series.dtype
            ):
                continue
            if _n_unique(ctx, name) <= OUTLIER_MIN_DISTINCT:
                continue
            finding = self._column(ctx, name, series.to_numpy(dtype=float, na_value=np.nan))
            if finding is not None:
                findings.append(finding)
        return findings

    def _column(self, ctx: AuditContext, name: str, values: np.ndarray) -> Finding | None:
        values = values[np.isfinite(values)]
        if values.size < 20:
            return None
        sample = values
        if values.size > OUTLIER_SAMPLE:
            sample = values[
                np.random.default_rng(ctx.seed).choice(values.size, OUTLIER_SAMPLE, replace=False)
            ]
        spike = float(np.median(sample))
        if np.median(np.abs(sample - spike)) == 0 and (sample != spike).sum() >= 20:
            # half the values or more sit on one value (zero-inflated): judge the others
            sample = sample[sample != spike]
        stats = _robust_stats(sample)
        if stats is None:
            return None
        median, scale, q1, q3 = stats
        lower = min(median - OUTLIER_Z * scale, q1 - OUTLIER_IQR * (q3 - q1))
        upper = max(median + OUTLIER_Z * scale, q3 + OUTLIER_IQR * (q3 - q1))
        outside = ((values < lower) | (values > upper)) & (values != spike)
        sentinels: dict[float, int] = {}
        negatives = values < 0
        # a rare negative code (-1, -99) in an otherwise non-negative column is a sentinel
        if 0 < negatives.sum() <= 0.01 * values.size:
            codes, counts = np.unique(values[negatives], return_counts=True)
            if len(codes) <= 3 and all(_is_sentinel(c) for c in codes):
                sentinels.update({float(c): int(k) for c, k in zip(codes, counts, strict=True)})
                outside |= negatives
        n_out = int(outside.sum())
        if n_out == 0:
            return None
        flagged = values[outside]
        codes, counts = np.unique(flagged, return_counts=True)
        sentinels.update(
            {
                float(c): int(k)
                for c, k in zip(codes, counts, strict=True)
                if c > 0 and _is_sentinel(c)
            }
        )
        z = np.abs(flagged - median) / scale
        extreme = z > EXTREME_Z
        if extreme.any() and values.min() >= 0:
            extreme &= self._log_extreme(flagged, sample)
        n_extreme, share = int(extreme.sum()), n_out / values.size
        evidence: dict[str, Any] = {
            "values": int(values.size),
            "outliers": n_out,
            "share": round(share, 6),
            "outlier_min": float(flagged.min()),
            "outlier_max": float(flagged.max()),
            "lower_bound": float(lower),
            "upper_bound": float(upper),
            "median": float(median),
            "robust_sd": float(scale),
            "max_robust_z": round(float(z.max()), 2),
            "extreme": n_extreme,
            "sentinels": {_num(k): v for k, v in sorted(sentinels.items())},
        }
        where = (
            f"{n_out:,} of {values.size:,} values ({_pct(share)}) lie outside [{lower:.4g}, "
            f"{upper:.4g}] (median {median:.4g}), from {flagged.min():.4g} to {flagged.max():.4g}"
        )
        if sentinels:
            listed = ", ".join(f"{_num(k)} ({v:,}x)" for k, v in sorted(sentinels.items()))
            codes_text = ", ".join(_num(k) for k in sorted(sentinels))
            fix = (
                f"Replace {codes_text} in '{name}' with missing when loading, then impute "
                "inside the pipeline."
            )
            message = f"column '{name}' holds sentinel codes {listed}: {where}."
            return _finding(self.alias, "warn", name, message, evidence, fix)
        if n_extreme:
            message = (
                f"column '{name}' has {n_extreme:,} extreme value(s), up to {z.max():.0f} robust "
                f"standard deviations from the median: {where}."
            )
            fix = (
                f"Check these values of '{name}' at the source (unit or entry errors?); set "
                "them missing or clip them."
            )
            return _finding(self.alias, "warn", name, message, evidence, fix)
        tail = " (a heavy tail)" if share >= 0.01 else ""
        message = f"column '{name}' has outliers{tail}: {where}."
        fix = (
            "Tree models cope; for linear models or neural nets, clip at the bounds or use a log "
            "or rank transform inside the pipeline."
        )
        return _finding(self.alias, "info", name, message, evidence, fix)

    @staticmethod
    def _log_extreme(flagged: np.ndarray, sample: np.ndarray) -> np.ndarray:
        """Whether values stay extreme on a log scale, i.e. are not explained by skew."""
        stats = _robust_stats(np.log1p(sample))
        if stats is None:
            return np.ones(flagged.shape, dtype=bool)
        return np.asarray(np.abs(np.log1p(flagged) - stats[0]) / stats[1] > EXTREME_LOG_Z)
