"""Request validation: JSON records checked and coerced against the model's training schema.

Each record must be a JSON object holding every feature the model was trained on
(a feature whose column had missing values in training may be left out: it is then
missing, and the model imputes it). Problems fall in two groups:

* refused (the record gets no answer, HTTP 422): ``not_an_object``, ``missing`` (a
  required field is absent, or a model's text is null or empty), ``type`` (a value
  cannot be read as its column's kind);
* answered but flagged (the flags are logged with the prediction):
  ``unknown_category`` (a level training never saw), ``out_of_range`` (a number or
  date outside the training min..max), ``unexpected_null`` (null in a column that had
  no missing values in training), ``unknown_field`` (a key that is not a feature).

Every issue names its field (:attr:`RecordIssue.field`); :attr:`ValidatedBatch.warnings`
holds the flagged ones per answered record, and :meth:`ValidatedBatch.flag_fields` lists
them as ``code:field``.

Columns the framing declares with another role than a feature (``data.id``,
``data.time``, ``data.group``, ``data.drop`` and the target) are the user's own rows
coming back: a record may carry them. They are *passed through*: accepted without a
flag, never scored, and kept in the logged record (so feedback can name a prediction by
its ``data.id``). Only a key that is neither a feature nor a declared column is flagged
``unknown_field``.

Coercion rules, per column kind:

* numeric / integer: JSON numbers, and strings that read as a finite number
  (``"12.5"``, ``" 3 "``; clients that stringify CSV rows are common, and training
  read such strings the same way). Booleans, other strings, infinities and objects
  are refused. A float NaN is null.
* boolean: ``true``/``false``, the numbers 0 and 1, and the strings training
  accepts (true/false, yes/no, y/n, t/f, 1/0, any case).
* categorical: any scalar, compared as a string (``3`` and ``3.0`` both read as
  ``"3"``, ``true`` as ``"True"``), as training compared levels.
* text: strings (numbers are written as strings).
* the text of a text-classification model (its ``text_column``): a non-empty string
  only. It is the model's one input, so a number, boolean, list or object is refused
  (``type``), and null, an empty or blank string, or an absent field is refused
  (``missing``): scoring it would answer the class priors, not the text.
* datetime: ISO 8601 strings (``2024-05-01``, ``2024-05-01T13:45:00Z``, with an
  offset or naive = UTC) and datetime objects; numbers are refused (epoch seconds
  and milliseconds are ambiguous).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import pandas as pd

from assay.data.schema import ColumnSchema
from assay.data.values import parse_bool
from assay.errors import DataError

__all__ = [
    "FLAG_CODES",
    "REFUSAL_CODES",
    "IssueCode",
    "RecordIssue",
    "RecordValidator",
    "ValidatedBatch",
    "build_frame",
    "frame_records",
    "validate_records",
]

IssueCode = Literal[
    "missing",
    "type",
    "not_an_object",
    "unknown_category",
    "out_of_range",
    "unexpected_null",
    "unknown_field",
]
#: codes that refuse a record (HTTP 422)
REFUSAL_CODES: tuple[str, ...] = ("missing", "type", "not_an_object")
#: codes that answer a record but flag it in the log
FLAG_CODES: tuple[str, ...] = (
    "unknown_category",
    "out_of_range",
    "unexpected_null",
    "unknown_field",
)

#: the field named by a problem with the record as a whole
RECORD_FIELD = "(record)"

_MISSING_LEVEL = "__missing__"
_UTC = UTC


@dataclass(frozen=True)
class RecordIssue:
    """One problem with one field of one record.

    Attributes:
        index: the record's position in the request (0-based).
        field: the field (feature) name, or ``(record)`` for the record as a whole.
        reason: what was expected and what was received, in words.
        code: one of :data:`REFUSAL_CODES` or :data:`FLAG_CODES`.
    """

    index: int
    field: str
    reason: str
    code: str

    @property
    def refused(self) -> bool:
        """True when the issue refuses the record (rather than flagging it)."""
        return self.code in REFUSAL_CODES

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {"index": self.index, "field": self.field, "reason": self.reason, "code": self.code}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecordIssue:
        """The inverse of :meth:`to_dict`."""
        return cls(
            index=int(data["index"]),
            field=str(data["field"]),
            reason=str(data["reason"]),
            code=str(data["code"]),
        )


class _LazyFrame:
    """The ``frame`` field of :class:`ValidatedBatch`: given, or built from the records on first read.

    Building a pandas frame costs more than scoring one row on the fast path, so a
    batch made by :func:`validate_records` builds it only when someone reads it.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = f"_{name}_value"

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = obj.__dict__.get(self._slot)
        if value is None:
            value = build_frame(obj.records, obj.columns)
            obj.__dict__[self._slot] = value
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self._slot] = None if value is self else value


@dataclass(frozen=True)
class ValidatedBatch:
    """The records of a request, checked and coerced.

    Attributes:
        frame: the valid records only, columns = the features in order, with the
            training dtypes (built on first access when the batch came from
            :func:`validate_records`).
        valid_index: positions (in the request) of the rows of ``frame``.
        errors: the problems that refuse a record (HTTP 422).
        flags: per row of ``frame``, the distinct codes it was answered with but
            flagged for (``unknown_category``, ``out_of_range``, ...).
        records: per row of ``frame``, the coerced values by feature name (the fast
            path scores these without building a frame).
        warnings: per row of ``frame``, the flagged issues with their field and reason.
        columns: the schema of each feature, in order.
    """

    frame: pd.DataFrame = field(default=_LazyFrame(), repr=False, compare=False)
    valid_index: tuple[int, ...] = ()
    errors: tuple[RecordIssue, ...] = ()
    flags: tuple[tuple[str, ...], ...] = ()
    records: tuple[dict[str, Any], ...] = field(default=(), repr=False, compare=False)
    warnings: tuple[tuple[RecordIssue, ...], ...] = ()
    columns: tuple[ColumnSchema, ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        """True when no record was refused."""
        return not self.errors

    @property
    def features(self) -> list[str]:
        """The feature names, in order."""
        return [c.name for c in self.columns]

    def flag_fields(self, row: int) -> list[str]:
        """The flagged issues of answered row ``row`` as ``code:field`` (every flag names
        its field), in the order found."""
        if row >= len(self.warnings):
            return []
        return list(dict.fromkeys(f"{w.code}:{w.field}" for w in self.warnings[row]))

    def to_dict(self) -> dict[str, Any]:
        """The verdicts, JSON-serialisable (the frame and coerced records are left out)."""
        return {
            "valid_index": list(self.valid_index),
            "errors": [e.to_dict() for e in self.errors],
            "flags": [list(f) for f in self.flags],
            "warnings": [[w.to_dict() for w in row] for row in self.warnings],
            "columns": [c.to_dict() for c in self.columns],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValidatedBatch:
        """The inverse of :meth:`to_dict` (without rows: its frame is empty)."""
        return cls(
            valid_index=tuple(int(i) for i in data.get("valid_index", ())),
            errors=tuple(RecordIssue.from_dict(e) for e in data.get("errors", ())),
            flags=tuple(tuple(str(c) for c in f) for f in data.get("flags", ())),
            warnings=tuple(
                tuple(RecordIssue.from_dict(w) for w in row) for row in data.get("warnings", ())
            ),
            columns=tuple(ColumnSchema.from_dict(c) for c in data.get("columns", ())),
        )


class _Refused(Exception):
    """A value that cannot be read as its column's kind (internal)."""


def _is_null(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, (float, np.floating)):
        return bool(math.isnan(value))
    return False


def _type_name(value: Any) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple, set)):
        return "a list"
    if isinstance(value, (bool, np.bool_)):
        return f"the boolean {str(bool(value)).lower()}"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {text!r}"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return f"the number {value!r}"
    return f"a {type(value).__name__}"


def _number(value: Any) -> float:
    if isinstance(value, (bool, np.bool_)):
        raise _Refused(f"expected a number, got {_type_name(value)}")
    if isinstance(value, (int, float, np.integer, np.floating)):
        try:
            number = float(value)
        except OverflowError:
            raise _Refused(f"expected a finite number, got {_type_name(value)}") from None
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise _Refused(f"expected a number, got {_type_name(value)}") from None
        if math.isnan(number):
            raise _Refused(f"expected a finite number, got {_type_name(value)}")
    else:
        raise _Refused(f"expected a number, got {_type_name(value)}")
    if math.isinf(number):
        raise _Refused(f"expected a finite number, got {_type_name(value)}")
    return number


def _boolean(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        parsed = parse_bool(value)
        if parsed is not None:
            return parsed
    raise _Refused(f"expected true or false, got {_type_name(value)}")


def _level_string(value: Any) -> str:
    """A category value as the string training compared it as (``3.0`` -> ``"3"``)."""
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return _MISSING_LEVEL
        if float(value).is_integer():
            return str(int(value))
    return str(value)


def _category(value: Any) -> str:
    if isinstance(value, (Mapping, list, tuple, set, dict)):
        raise _Refused(f"expected a category value (a string or number), got {_type_name(value)}")
    return _level_string(value)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return str(value)
    raise _Refused(f"expected a string, got {_type_name(value)}")


class _Empty(_Refused):
    """A text that holds nothing to read (internal)."""


def _strict_text(value: Any) -> str:
    if not isinstance(value, str):
        raise _Refused(f"expected the text as a string, got {_type_name(value)}")
    if not value.strip():
        raise _Empty(
            "the text is empty" + (" (only whitespace)" if value else "")
            + "; send the text to classify"
        )
    return value


def _datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        stamp = value
    elif isinstance(value, date):
        stamp = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            stamp = datetime.fromisoformat(value.strip())
        except ValueError:
            raise _Refused(
                f"expected an ISO 8601 date-time such as '2024-05-01T13:45:00Z', "
                f"got {_type_name(value)}"
            ) from None
    elif isinstance(value, np.datetime64):
        stamp = pd.Timestamp(value).to_pydatetime()
    else:
        raise _Refused(
            f"expected an ISO 8601 date-time string such as '2024-05-01T13:45:00Z', "
            f"got {_type_name(value)}"
        )
    # naive values are UTC, as in training
    return stamp.replace(tzinfo=_UTC) if stamp.tzinfo is None else stamp.astimezone(_UTC)


def _bound(value: Any, kind: str) -> Any:
    if value is None:
        return None
    try:
        if kind == "datetime":
            return _datetime(value)
        return float(value)
    except (_Refused, TypeError, ValueError):
        return None


class _Column:
    """One feature's compiled checks (internal)."""

    __slots__ = ("categories", "high", "kind", "low", "name", "nullable", "strict_text")

    def __init__(self, col: ColumnSchema, *, strict_text: bool = False) -> None:
        self.name = col.name
        self.kind = col.kind
        self.strict_text = strict_text
        # the text a model reads is required: null or absent is refused, never imputed
        self.nullable = bool(col.nullable) and not strict_text
        self.categories = frozenset(col.categories) if col.categories is not None else None
        self.low = _bound(col.min, col.kind)
        self.high = _bound(col.max, col.kind)

    def coerce(self, value: Any) -> Any:
        kind = self.kind
        if self.strict_text:
            return _strict_text(value)
        if kind in ("numeric", "integer"):
            return _number(value)
        if kind == "categorical":
            return _category(value)
        if kind == "boolean":
            return _boolean(value)
        if kind == "datetime":
            return _datetime(value)
        return _text(value)

    def flag(self, value: Any) -> tuple[str, str] | None:
        """The (code, reason) a coerced non-null value is flagged with, if any."""
        if self.strict_text:
            return None
        if self.kind == "categorical":
            if self.categories is None or value in self.categories:
                return None
            return "unknown_category", f"the level {value!r} was not seen in training"
        ranged = self.kind in ("numeric", "integer", "datetime")
        if ranged and self.low is not None and self.high is not None:
            if self.low <= value <= self.high:
                return None
            return "out_of_range", (
                f"{_show(value)} is outside the training range "
                f"{_show(self.low)} .. {_show(self.high)}"
            )
        return None


def _show(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return f"{value:g}" if isinstance(value, float) else str(value)


class RecordValidator:
    """Checks and coerces records for one model's features (the compiled form of the schema).

    Args:
        columns: the schema of the model's input columns (at least every feature).
        features: the model's input columns, in order.
        text_column: the free text a text-classification model reads; its value must be a
            non-empty string (whatever kind the schema inferred for the column).
        passthrough: the columns the framing declares with another role (``data.id``,
            ``data.time``, ``data.group``, ``data.drop``, the target): accepted in a record
            without a flag and not scored (see the module doc).
    """

    def __init__(
        self,
        columns: Sequence[ColumnSchema],
        features: Sequence[str],
        *,
        text_column: str | None = None,
        passthrough: Sequence[str] = (),
    ) -> None:
        by_name = {c.name: c for c in columns}
        missing = [name for name in features if name not in by_name]
        if missing:
            raise DataError(
                "a feature has no column schema, so its values cannot be checked",
                column=missing[0],
                expected="a ColumnSchema for every feature",
                received=", ".join(missing[:10]),
                fix="Pass the model version's schema columns (record.schema['columns']).",
            )
        self.features: tuple[str, ...] = tuple(features)
        self.columns: tuple[ColumnSchema, ...] = tuple(by_name[n] for n in features)
        self.text_column = text_column
        self._checks = tuple(_Column(c, strict_text=c.name == text_column) for c in self.columns)
        self.passthrough: tuple[str, ...] = tuple(
            dict.fromkeys(str(n) for n in passthrough if n and n not in set(self.features))
        )
        self._known = frozenset(self.features) | frozenset(self.passthrough)

    def validate(self, records: Sequence[Any]) -> ValidatedBatch:
        """Check and coerce ``records``; see :func:`validate_records`."""
        if isinstance(records, (Mapping, str, bytes)) or not isinstance(records, Sequence):
            raise DataError(
                "the records to score must be a list of objects",
                where="request body",
                expected="a list of JSON objects, one per record",
                received=_type_name(records),
                fix="Wrap a single record in a list: [{...}].",
            )
        errors: list[RecordIssue] = []
        rows: list[dict[str, Any]] = []
        valid: list[int] = []
        flags: list[tuple[str, ...]] = []
        notes: list[tuple[RecordIssue, ...]] = []
        for index, record in enumerate(records):
            if not isinstance(record, Mapping):
                errors.append(
                    RecordIssue(
                        index,
                        RECORD_FIELD,
                        f"expected an object of feature values, got {_type_name(record)}",
                        "not_an_object",
                    )
                )
                continue
            row, refused, flagged = self._one(index, record)
            if refused:
                errors.extend(refused)
                continue
            rows.append(row)
            valid.append(index)
            notes.append(tuple(flagged))
            flags.append(tuple(dict.fromkeys(issue.code for issue in flagged)))
        return ValidatedBatch(
            valid_index=tuple(valid),
            errors=tuple(errors),
            flags=tuple(flags),
            records=tuple(rows),
            warnings=tuple(notes),
            columns=self.columns,
        )

    def _one(
        self, index: int, record: Mapping[str, Any]
    ) -> tuple[dict[str, Any], list[RecordIssue], list[RecordIssue]]:
        row: dict[str, Any] = {}
        refused: list[RecordIssue] = []
        flagged: list[RecordIssue] = []
        present = 0
        for check in self._checks:
            name = check.name
            if name not in record:
                if check.nullable:
                    row[name] = None
                    continue
                wanted = (
                    "the text to classify, a non-empty string"
                    if check.strict_text
                    else f"a {check.kind} value; send null if it is unknown"
                )
                refused.append(
                    RecordIssue(
                        index, name, f"the required field '{name}' is missing (expected {wanted})",
                        "missing",
                    )
                )
                continue
            present += 1
            value = record[name]
            if _is_null(value):
                row[name] = None
                if check.strict_text:
                    refused.append(
                        RecordIssue(index, name, "the text is missing (null, or an empty CSV "
                                    "field); send the text to classify", "missing")
                    )
                elif not check.nullable:
                    flagged.append(
                        RecordIssue(
                            index,
                            name,
                            "null in a column that had no missing values in training "
                            "(the model imputes it)",
                            "unexpected_null",
                        )
                    )
                continue
            try:
                coerced = check.coerce(value)
            except _Refused as exc:
                code = "missing" if isinstance(exc, _Empty) else "type"
                refused.append(RecordIssue(index, name, str(exc), code))
                continue
            row[name] = coerced
            found = check.flag(coerced)
            if found is not None:
                flagged.append(RecordIssue(index, name, found[1], found[0]))
        if len(record) > present:
            for key in record:
                if key not in self._known:
                    flagged.append(
                        RecordIssue(
                            index,
                            str(key),
                            f"'{key}' is not a feature of the model nor a declared column "
                            "(data.id, data.time, data.group, data.drop, the target); it is "
                            "ignored",
                            "unknown_field",
                        )
                    )
        return row, refused, flagged


@lru_cache(maxsize=32)
def _cached_validator(
    columns: tuple[ColumnSchema, ...], features: tuple[str, ...], passthrough: tuple[str, ...]
) -> RecordValidator:
    return RecordValidator(columns, features, passthrough=passthrough)


def validate_records(
    records: Sequence[Any],
    columns: Sequence[ColumnSchema],
    features: Sequence[str],
    *,
    passthrough: Sequence[str] = (),
) -> ValidatedBatch:
    """Check and coerce request records against the model's training schema.

    Args:
        records: the request's records (JSON objects, one per row to score).
        columns: the schema of the model's input columns (``record.schema["columns"]``
            as :class:`ColumnSchema`), at least one per feature.
        features: the model's input columns, in order (``lineage.features``).
        passthrough: declared non-feature columns accepted without a flag (see the
            module doc).

    Returns:
        A :class:`ValidatedBatch`: the valid rows (coerced), the refusals and the flags.

    Raises:
        DataError: ``records`` is not a list, or a feature has no column schema.
    """
    try:
        validator = _cached_validator(tuple(columns), tuple(features), tuple(passthrough))
    except TypeError:  # an unhashable hand-made schema: skip the cache
        validator = RecordValidator(columns, features, passthrough=passthrough)
    return validator.validate(records)


def build_frame(
    records: Sequence[Mapping[str, Any]], columns: Sequence[ColumnSchema]
) -> pd.DataFrame:
    """A frame of coerced records with the training dtype of each column (nulls as missing)."""
    data: dict[str, Any] = {}
    for col in columns:
        values = [r.get(col.name) for r in records]
        data[col.name] = _column_values(values, col)
    return pd.DataFrame(data, columns=[c.name for c in columns], index=pd.RangeIndex(len(records)))


def frame_records(frame: pd.DataFrame, features: Sequence[str]) -> list[dict[str, Any]]:
    """The rows of ``frame`` as records (feature name -> value), read column by column."""
    columns = [frame[name].tolist() for name in features]
    return [dict(zip(features, row)) for row in zip(*columns)]


def _column_values(values: list[Any], col: ColumnSchema) -> Any:
    kind = col.kind
    has_null = any(v is None for v in values)
    if kind in ("numeric", "integer"):
        floats = np.array([np.nan if v is None else v for v in values], dtype=float)
        if (
            kind == "integer"
            and not has_null
            and col.dtype.startswith("int")
            and np.all(np.mod(floats, 1) == 0)
        ):
            return floats.astype(col.dtype)
        return floats
    if kind == "boolean":
        if not has_null:
            return np.array(values, dtype=bool)
        return pd.Series(values, dtype=object)
    if kind == "datetime":
        stamps = pd.Series(pd.to_datetime(values, utc=True))
        return _as_datetime_dtype(stamps, col.dtype)
    dtype = "str" if col.dtype == "str" else object
    try:
        return pd.Series(values, dtype=dtype)
    except (TypeError, ValueError):
        return pd.Series(values, dtype=object)


def _as_datetime_dtype(stamps: pd.Series, dtype: str) -> pd.Series:
    try:
        wanted = pd.api.types.pandas_dtype(dtype)
    except TypeError:
        return stamps
    tz = getattr(wanted, "tz", None)
    try:
        stamps = stamps.dt.tz_convert(tz) if tz is not None else stamps.dt.tz_convert(None)
        return stamps.astype(wanted)
    except (TypeError, ValueError):
        return stamps
