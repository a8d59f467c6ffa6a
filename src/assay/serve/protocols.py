"""Wire formats of the server: assay's own, MLflow's scoring server, and Open Inference Protocol v2.

Every parser turns a request body into a list of *records* (one JSON object per
row, keyed by feature name) for :func:`assay.model.validation.validate_records`,
and raises :class:`RequestError` (a 4xx with a stable code, a message that says
what was expected and what was received, and structured details) for anything
else. Nothing here touches a model, so every malformed body is refused before
scoring.
"""

from __future__ import annotations

import io
import math
import os
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import orjson

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_RECORDS",
    "ERROR_SCHEMA",
    "MLFLOW_FORMATS",
    "OIP_DATATYPES",
    "OipRequest",
    "RequestError",
    "RequestLimits",
    "ascii_int",
    "check_content_type",
    "check_json_values",
    "check_records",
    "dumps",
    "feature_datatype",
    "json_kind",
    "json_values_limit",
    "label_datatype",
    "oip_infer_response",
    "oip_model_metadata",
    "parse_csv",
    "FeedbackItem",
    "parse_feedback",
    "parse_feedback_items",
    "parse_json",
    "parse_mlflow",
    "parse_oip_infer",
    "parse_records",
]

#: largest number of records (rows) one request may carry
DEFAULT_MAX_RECORDS = 1000
#: largest request body, in bytes
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
#: the body keys of MLflow's scoring server, one of which a request must use
MLFLOW_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
#: tensor datatypes of the Open Inference Protocol v2
OIP_DATATYPES = (
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BYTES",
)
_NUMPY_TYPES = {
    "BOOL": "?", "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
    "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
    "FP16": "<f2", "FP32": "<f4", "FP64": "<f8",
}
_MAX_ID_LENGTH = 128

#: the JSON schema of every 4xx body (for the OpenAPI document)
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message", "details"],
    "properties": {
        "error": {"type": "string", "description": "a stable code, e.g. invalid_records"},
        "message": {"type": "string", "description": "what was expected, what was received, what to do"},
        "details": {"type": "array", "items": {"type": "object"}},
    },
}


class RequestError(Exception):
    """A request the server refuses, rendered as ``{"error", "message", "details"}``.

    Attributes:
        status: the HTTP status (400-499).
        code: a stable machine-readable code (``invalid_json``, ``invalid_records``, ...).
        message: one line for a person: what was expected, what was received, what to do.
        details: structured items, e.g. ``{"index", "field", "reason", "code"}`` per refused field.
        headers: extra response headers (``WWW-Authenticate`` on a 401).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Sequence[Mapping[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = [dict(d) for d in details]
        self.headers = dict(headers or {})

    def to_dict(self) -> dict[str, Any]:
        """The response body."""
        return {"error": self.code, "message": self.message, "details": self.details}


@dataclass(frozen=True)
class RequestLimits:
    """What one request may carry, and how long its parts may take to arrive.

    Every limit is checked before the work it bounds (the declared ``Content-Length``
    before the body is read, the columns of a CSV header line before pandas reads it,
    the keys of a record before it is validated), and a request over one is refused
    with 413 naming the limit, the value received and the ``assay serve`` option that
    raises it; a body that does not arrive in time gets 408.

    Attributes:
        max_body_bytes: largest request body.
        max_records: most records (rows, labels) one request may carry.
        extra_fields: keys a record may carry beyond the model's features (which are
            flagged ``unknown_field``); a record, a CSV header or a tensor list holding more
            than ``features + extra_fields`` fields is refused.
        max_string_length: most characters in one string value or field name.
        header_timeout: seconds a client has to send a request's line and headers (from
            the connection's start, or the first byte of a next request on a kept-alive one).
        body_timeout: seconds a client has to send a request's body once its headers arrived.
    """

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_records: int = DEFAULT_MAX_RECORDS
    extra_fields: int = 16
    max_string_length: int = 10_000
    header_timeout: float = 10.0
    body_timeout: float = 30.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if not value > 0 and not (item.name == "extra_fields" and value == 0):
                raise ValueError(f"RequestLimits.{item.name} must be positive, got {value!r}")

    def max_fields(self, features: int) -> int:
        """Most keys a record may carry for a model with ``features`` input columns."""
        return features + self.extra_fields

    def to_env(self) -> dict[str, str]:
        """The ``ASSAY_SERVE_*`` variables that :meth:`from_env` reads back."""
        return {_ENV_PREFIX + item.name.upper(): str(getattr(self, item.name)) for item in fields(self)}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RequestLimits:
        """The limits set by ``ASSAY_SERVE_MAX_BODY_BYTES``, ``ASSAY_SERVE_MAX_RECORDS``,
        ``ASSAY_SERVE_EXTRA_FIELDS``, ``ASSAY_SERVE_MAX_STRING_LENGTH``,
        ``ASSAY_SERVE_HEADER_TIMEOUT`` and ``ASSAY_SERVE_BODY_TIMEOUT`` (defaults for the unset)."""
        from assay.errors import ConfigError

        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for item in fields(cls):
            name = _ENV_PREFIX + item.name.upper()
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            kind = float if item.name.endswith("timeout") else int
            try:
                values[item.name] = kind(raw)
                cls(**{item.name: values[item.name]})
            except ValueError:
                raise ConfigError(
                    "a request limit of the server is not a valid number",
                    key=name,
                    expected="a positive " + ("number of seconds" if kind is float else "whole number"),
                    received=raw,
                    fix=f"Unset {name} for the default, or set it to e.g. {getattr(cls(), item.name)}.",
                ) from None
        return cls(**values)


_ENV_PREFIX = "ASSAY_SERVE_"
#: the ``assay serve`` option that raises each limit (named in the 413 messages)
_OPTIONS = {
    "max_body_bytes": "--max-body-bytes",
    "max_records": "--max-records",
    "max_fields": "--extra-fields",
    "max_columns": "--extra-fields",
    "max_values": "--max-records and --extra-fields",
    "max_string_length": "--max-string-length",
    "header_timeout": "--header-timeout",
    "body_timeout": "--body-timeout",
}


def limit_error(code: str, what: str, limit: str, allowed: int, received: int | None, fix: str,
                **extra: Any) -> RequestError:
    """The 413 of a request over the limit named ``limit`` (``max_records``, ``max_fields``,
    ``max_columns``, ``max_values``, ``max_string_length``, ``max_body_bytes``): what was
    over it, the value received, the limit, and what to do."""
    got = f"{received:,}" if received is not None else "more"
    return RequestError(
        413, code,
        f"{what}: got {got}, over the limit {limit}={allowed:,}; {fix} "
        f"(the server sets it with `assay serve {_OPTIONS[limit]}`).",
        [{"limit": allowed, "name": limit, "received": received, **extra}],
    )


def ascii_int(value: str | None, max_digits: int = 18) -> int | None:
    """The whole number spelled by ``value`` in ASCII digits 0-9 only, else None.

    ``str.isdigit`` alone accepts characters ``int`` refuses (superscripts such as
    ``'²'``) and digits of other scripts; this is the test every numeric header passes.
    """
    if not value or len(value) > max_digits or not value.isascii() or not value.isdigit():
        return None
    return int(value)


def check_records(records: Sequence[Any], max_fields: int, max_string_length: int) -> None:
    """Refuse (413) a record with more than ``max_fields`` keys, or a key or string value
    longer than ``max_string_length`` characters, before any is validated."""
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            continue
        if len(record) > max_fields:
            raise limit_error(
                "too_many_fields", f"record {index} has too many fields", "max_fields", max_fields,
                len(record), "send only the model's features (the Record schema of GET /openapi.json)",
                index=index,
            )
        for key, value in record.items():
            if len(key) > max_string_length:
                raise _string_error(index, key, "field name", len(key), max_string_length)
            if type(value) is str and len(value) > max_string_length:
                raise _string_error(index, key, "value", len(value), max_string_length)


def _string_error(index: int, key: str, what: str, length: int, limit: int) -> RequestError:
    return limit_error(
        "string_too_long", f"record {index}, field '{_clip(key, 40)}': the {what} is too long (characters)",
        "max_string_length", limit, length, "send shorter strings", index=index, field=_clip(key, 40),
    )


def dumps(obj: Any) -> bytes:
    """JSON bytes of a response (NumPy values allowed; NaN and infinity become null)."""
    return orjson.dumps(obj, default=_default, option=orjson.OPT_SERIALIZE_NUMPY)


def _default(obj: Any) -> Any:
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return tolist()
    isoformat = getattr(obj, "isoformat", None)
    if callable(isoformat):
        return isoformat()
    return str(obj)


def check_content_type(value: str | None, accepted: Sequence[str] = ("application/json",)) -> str:
    """The media type of a ``Content-Type`` header, if it is one of ``accepted`` (missing means JSON)."""
    if not value:
        return accepted[0]
    media = value.split(";", 1)[0].strip().lower()
    if media in accepted or (media.endswith("+json") and "application/json" in accepted):
        return media
    raise RequestError(
        415,
        "unsupported_media_type",
        f"Content-Type '{_clip(value, 60)}' is not accepted here; send the body as "
        + " or ".join(accepted)
        + f" (for example with the header 'Content-Type: {accepted[0]}').",
        [{"received": _clip(value, 60), "accepted": list(accepted)}],
    )


def parse_json(body: bytes, max_values: int | None = None) -> Any:
    """The JSON value of ``body``; a 422 that quotes the decoder's position if it is not JSON.

    With ``max_values``, a body holding more values than that is refused (413) before
    it is decoded (:func:`check_json_values`).
    """
    if not body or not body.strip():
        raise RequestError(
            422,
            "empty_body",
            "the request body is empty; expected a JSON object such as "
            '{"records": [{"feature": value}]}.',
        )
    if max_values is not None:
        check_json_values(body, max_values)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(
            422,
            "invalid_json",
            f"the request body is not valid JSON ({exc}); send one JSON object, "
            "with numbers written as JSON numbers (no NaN or Infinity).",
            [{"reason": str(exc)}],
        ) from None


def json_values_limit(max_records: int, max_fields: int) -> int:
    """How many separators (commas and colons outside strings) a JSON body of at most
    ``max_records`` records of ``max_fields`` fields may hold: two per field, and some
    for the envelope."""
    return 2 * max_records * max_fields + 256


# a JSON string (skipped whole), or a separator outside strings
_JSON_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|([,:])')


def check_json_values(body: bytes, max_values: int) -> None:
    """Refuse (413) a JSON ``body`` with more than ``max_values`` separators outside strings.

    Decoding builds one Python object per value while holding the interpreter lock
    (550,000 keys: over half a second), so the values are counted first. The count of
    every comma and colon in the bytes is an upper bound found at C speed; only when it
    is over the limit are the strings skipped to count the real separators, one match at
    a time (a thread doing it lets others run between matches), stopping at the limit.
    """
    if body.count(b",") + body.count(b":") <= max_values:
        return
    count = 0
    for match in _JSON_TOKEN.finditer(body):
        if match.lastindex:
            count += 1
            if count > max_values:
                raise limit_error(
                    "too_many_values", "the JSON body holds too many values (commas and colons)",
                    "max_values", max_values, None,
                    "send fewer records per request, and only the model's features",
                )


def parse_records(payload: Any, *, max_records: int = DEFAULT_MAX_RECORDS) -> list[Any]:
    """The records of an assay ``/v1/predict`` body: ``{"records": [{...}, ...]}``."""
    if not isinstance(payload, dict):
        raise RequestError(
            422,
            "invalid_body",
            "expected a JSON object with a 'records' list, such as "
            f'{{"records": [{{"feature": value}}]}}; got {json_kind(payload)}.',
        )
    if "records" not in payload:
        raise RequestError(
            422,
            "invalid_body",
            "the body has no 'records' key; expected "
            f'{{"records": [{{"feature": value}}]}}; got keys: {_keys(payload)}.',
        )
    extra = [k for k in payload if k != "records"]
    if extra:
        raise RequestError(
            422,
            "invalid_body",
            f"unknown key(s) {_keys(extra)} in the body; it takes only 'records'.",
            [{"field": k, "reason": "unknown key"} for k in extra[:20]],
        )
    return _check_rows(payload["records"], "records", max_records)


@dataclass(frozen=True)
class FeedbackItem:
    """One item of a ``/v1/feedback`` body: the true label of a prediction named by its
    prediction ``id``, or of every answered prediction whose logged record carried ``key``
    in the declared ``data.id`` column."""

    label: Any
    id: str | None = None
    key: str | int | None = None


def parse_feedback_items(payload: Any, *, max_labels: int = DEFAULT_MAX_RECORDS) -> list[FeedbackItem]:
    """The items of a ``/v1/feedback`` body: ``{"labels": [{"id" | "key", "label"}]}``.

    An item names its prediction by exactly one of ``id`` (the prediction id
    ``/v1/predict`` returned) or ``key`` (the value of the record's ``data.id`` column, a
    string or an integer).
    """
    if not isinstance(payload, dict) or "labels" not in payload:
        got = f"keys: {_keys(payload)}" if isinstance(payload, dict) else json_kind(payload)
        raise RequestError(
            422,
            "invalid_body",
            'expected a JSON object {"labels": [{"id": "<prediction id>", "label": <true label>}]} '
            '(or items {"key": <data.id value>, "label": ...}); '
            f"got {got}.",
        )
    extra = [k for k in payload if k != "labels"]
    if extra:
        raise RequestError(
            422, "invalid_body", f"unknown key(s) {_keys(extra)} in the body; it takes only 'labels'."
        )
    rows = _check_rows(payload["labels"], "labels", max_labels)
    items: list[FeedbackItem] = []
    problems: list[dict[str, Any]] = []
    for i, item in enumerate(rows):
        if not isinstance(item, dict):
            problems.append(_issue(i, "", f"expected an object with 'id' (or 'key') and 'label', got "
                                   f"{json_kind(item)}", "not_an_object"))
            continue
        unknown = [k for k in item if k not in ("id", "key", "label")]
        ident, key, label = item.get("id"), item.get("key"), item.get("label", _MISSING)
        named = True
        if "id" in item and "key" in item:
            problems.append(_issue(i, "key", "an item names its prediction by 'id' or by 'key', not both",
                                   "conflict"))
            named = False
        elif "key" in item:
            if isinstance(key, bool) or not (
                (isinstance(key, str) and 0 < len(key) <= _MAX_ID_LENGTH) or isinstance(key, int)
            ):
                problems.append(_issue(i, "key", "expected the record's data.id value (a string or an "
                                       f"integer), got {_short(key)}", "type"))
                named = False
        elif not isinstance(ident, str) or not 0 < len(ident) <= _MAX_ID_LENGTH:
            problems.append(_issue(i, "id", "expected the prediction id (a string) returned by "
                                   f"/v1/predict, got {_short(ident)}", "missing" if ident is None else "type"))
            named = False
        if label is _MISSING:
            problems.append(_issue(i, "label", "missing; expected the true label", "missing"))
        elif label is not None and not isinstance(label, (str, int, float, bool)):
            problems.append(_issue(i, "label", f"expected a string, number or boolean, got {json_kind(label)}",
                                   "type"))
        for name in unknown:
            problems.append(_issue(i, name, "unknown key; an item takes only 'id' (or 'key') and 'label'",
                                   "unknown_field"))
        if named and label is not _MISSING:
            items.append(FeedbackItem(label, id=ident if "key" not in item else None,
                                      key=key if "key" in item else None))
    if problems:
        raise RequestError(422, "invalid_labels", _summary(problems, "label"), problems)
    return items


def parse_feedback(payload: Any, *, max_labels: int = DEFAULT_MAX_RECORDS) -> list[tuple[str, Any]]:
    """The ``(prediction id, label)`` pairs of a ``/v1/feedback`` body whose items name
    predictions by ``id`` (see :func:`parse_feedback_items` for items by ``key``)."""
    return [(item.id, item.label) for item in parse_feedback_items(payload, max_labels=max_labels)
            if item.id is not None]


def parse_mlflow(
    payload: Any,
    features: Sequence[str],
    *,
    max_records: int = DEFAULT_MAX_RECORDS,
    max_fields: int | None = None,
) -> list[Any]:
    """Records from an MLflow scoring-server JSON body.

    Accepts exactly one of ``dataframe_split`` (``{"columns", "data"[, "index"]}``),
    ``dataframe_records`` (a list of objects), ``instances`` or ``inputs`` (a list
    of objects, a list of rows in feature order, a list of values when the model
    has one feature, or an object of equal-length columns); ``params`` is allowed
    beside and ignored. More than ``max_fields`` columns is refused (413) before any
    row is built.
    """
    if not isinstance(payload, dict):
        raise RequestError(
            422, "invalid_body",
            f"expected a JSON object with one of the keys {', '.join(MLFLOW_FORMATS)}; got {json_kind(payload)}.",
        )
    used = [k for k in MLFLOW_FORMATS if k in payload]
    extra = [k for k in payload if k not in MLFLOW_FORMATS and k != "params"]
    if len(used) != 1 or extra:
        raise RequestError(
            422, "invalid_body",
            f"expected exactly one of the keys {', '.join(MLFLOW_FORMATS)} (and optionally 'params'); "
            f"got keys: {_keys(payload)}.",
        )
    key = used[0]
    value = payload[key]
    if key == "dataframe_split":
        return _split_rows(value, max_records, max_fields)
    if key == "dataframe_records":
        return _check_rows(value, key, max_records)
    if isinstance(value, dict):
        _check_columns(len(value), max_fields, f"'{key}' (an object of columns)")
        return _columnar_rows(value, key, max_records)
    rows = _check_rows(value, key, max_records)
    out: list[Any] = []
    problems: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        if isinstance(row, list):
            if len(row) != len(features):
                problems.append(_issue(i, "", f"a row in feature order needs {len(features)} values "
                                       f"({', '.join(features[:10])}), got {len(row)}", "type"))
                continue
            out.append(dict(zip(features, row)))
        elif isinstance(row, dict) or len(features) != 1:
            out.append(row)
        else:
            out.append({features[0]: row})
    if problems:
        raise RequestError(422, "invalid_records", _summary(problems, "record"), problems)
    return out


def parse_csv(
    body: bytes,
    *,
    max_records: int = DEFAULT_MAX_RECORDS,
    max_columns: int | None = None,
    text_columns: Sequence[str] = (),
) -> list[Any]:
    """Records from a ``text/csv`` body with a header row (MLflow's CSV input).

    The header line's columns are counted on the raw bytes first: more than
    ``max_columns`` is refused (413) before pandas reads anything. The ``text_columns``
    are read as strings (a review reading ``42`` stays the text ``"42"``; an empty field
    is null).
    """
    import pandas as pd

    if max_columns is not None:
        _check_csv_shape(body, max_columns)
    try:
        frame = pd.read_csv(io.BytesIO(body), nrows=max_records + 1,
                            dtype=dict.fromkeys(text_columns, str) or None)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise RequestError(
            422, "invalid_csv",
            f"the CSV body cannot be read ({_clip(str(exc), 160)}); send a header row of feature names "
            "and one line per record.",
        ) from None
    if len(frame) > max_records:
        raise _too_many("rows", max_records)
    records = orjson.loads(frame.to_json(orient="records", date_format="iso"))
    return _check_rows(records, "rows", max_records)


def csv_header_columns(body: bytes) -> int:
    """How many columns the header record of a CSV ``body`` names, counted on the bytes."""
    return csv_record_fields(body)[0]


def csv_record_fields(body: bytes, start: int = 0, stop_over: int | None = None) -> tuple[int, int]:
    """The number of fields of the CSV record that begins at byte ``start``, and where the
    next record begins, counted on the bytes (no decoding, no parser).

    A comma or newline inside double quotes belongs to a value (a doubled quote closes
    and reopens a stretch), so the separators are the commas between quoted stretches,
    up to the first newline outside them. With ``stop_over``, counting stops once the
    record has more fields than that (the count returned is then a lower bound).
    """
    end = len(body)
    pos, commas = start, 0
    newline = body.find(b"\n", pos)
    while True:
        stop = newline if newline >= 0 else end
        quote = body.find(b'"', pos, stop)
        if quote < 0:
            return commas + body.count(b",", pos, stop) + 1, stop + 1
        commas += body.count(b",", pos, quote)
        if stop_over is not None and commas + 1 > stop_over:
            return commas + 1, stop + 1
        close = body.find(b'"', quote + 1)
        if close < 0:  # an unterminated quote: the parser refuses the body
            return commas + 1, end
        pos = close + 1
        if 0 <= newline < pos:
            newline = body.find(b"\n", pos)


def _check_csv_shape(body: bytes, max_columns: int) -> None:
    columns, after = csv_record_fields(body, 0, max_columns)
    _check_columns(columns, max_columns, "the CSV header line")
    if after >= len(body):
        return
    # pandas takes the extra leading values of a first record longer than the header for
    # an index (one level per value): refuse it before pandas sees it
    values, _ = csv_record_fields(body, after, columns)
    if values > columns:
        raise RequestError(
            422, "invalid_csv",
            f"the first record of the CSV body has more values than the {columns} columns its header "
            "names; send one value per column on every line.",
            [{"line": 2, "columns": columns}],
        )


def _check_columns(count: int, limit: int | None, where: str) -> None:
    if limit is not None and count > limit:
        raise limit_error(
            "too_many_columns", f"{where} has too many columns", "max_columns", limit, count,
            "send only the model's features (GET /v2/models/{name} lists them)",
        )


# -- Open Inference Protocol v2 -------------------------------------------------------------


def feature_datatype(kind: str) -> str:
    """The OIP v2 datatype of a feature of ``kind`` (numeric, integer, boolean, categorical, ...)."""
    return {"numeric": "FP64", "integer": "INT64", "boolean": "BOOL"}.get(kind, "BYTES")


def label_datatype(task: str, classes: Sequence[Any] | None) -> str:
    """The OIP v2 datatype of the ``prediction`` output."""
    if not classes:
        return "FP64"
    if all(isinstance(c, bool) for c in classes):
        return "BOOL"
    if all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        return "INT64"
    return "BYTES"


def oip_model_metadata(
    name: str,
    version: int,
    *,
    task: str,
    features: Sequence[str],
    kinds: Mapping[str, str],
    classes: Sequence[Any] | None,
    platform: str = "assay",
) -> dict[str, Any]:
    """The ``GET /v2/models/{name}`` body: inputs with datatypes from the schema, and outputs."""
    inputs = [{"name": f, "datatype": feature_datatype(kinds.get(f, "text")), "shape": [-1]} for f in features]
    outputs: list[dict[str, Any]] = [
        {"name": "prediction", "datatype": label_datatype(task, classes), "shape": [-1]},
    ]
    if classes:
        outputs.append({"name": "probabilities", "datatype": "FP64", "shape": [-1, len(classes)]})
        outputs.append({"name": "confidence", "datatype": "FP64", "shape": [-1]})
    outputs.append({"name": "prediction_id", "datatype": "BYTES", "shape": [-1]})
    body: dict[str, Any] = {
        "name": name, "versions": [str(version)], "platform": platform, "inputs": inputs, "outputs": outputs,
        "parameters": {"task": task},
    }
    if classes:
        body["parameters"]["classes"] = [str(c) for c in classes]
    return body


@dataclass(frozen=True)
class OipRequest:
    """A parsed ``/v2/models/{name}/infer`` request.

    Attributes:
        id: the request's ``id``, echoed in the response (None if absent).
        records: one object per row, keyed by input (feature) name.
        outputs: the output names requested, or None for all of them.
    """

    id: str | None
    records: list[dict[str, Any]]
    outputs: tuple[str, ...] | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {"id": self.id, "records": self.records,
                "outputs": list(self.outputs) if self.outputs is not None else None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OipRequest:
        """The inverse of :meth:`to_dict`."""
        outputs = data.get("outputs")
        return cls(data.get("id"), list(data["records"]), tuple(outputs) if outputs is not None else None)


def parse_oip_infer(
    body: bytes,
    *,
    header_length: int | None = None,
    max_records: int = DEFAULT_MAX_RECORDS,
    max_fields: int | None = None,
    max_values: int | None = None,
) -> OipRequest:
    """Parse an OIP v2 inference request, in JSON or with the binary tensor extension.

    ``header_length`` is the ``Inference-Header-Content-Length`` header: the JSON
    part is that many bytes, and the tensors whose ``parameters.binary_data_size``
    is set follow it in order. Each input is one feature, shape ``[N]`` or ``[N, 1]``;
    more than ``max_fields`` inputs, or more than ``max_records`` rows, is refused (413)
    before any tensor is decoded, and a JSON part of more than ``max_values`` values
    before it is parsed.
    """
    binary = b""
    if header_length is not None:
        if not 0 < header_length <= len(body):
            raise RequestError(
                422, "invalid_body",
                f"Inference-Header-Content-Length is {header_length} but the body has {len(body)} bytes; "
                "it must be the length of the JSON part.",
            )
        binary = body[header_length:]
        body = body[:header_length]
    payload = parse_json(body, max_values)
    if not isinstance(payload, dict) or not isinstance(payload.get("inputs"), list):
        raise RequestError(
            422, "invalid_body",
            'expected an OIP v2 inference request {"inputs": [{"name", "shape", "datatype", "data"}]}; got '
            + (f"keys: {_keys(payload)}" if isinstance(payload, dict) else json_kind(payload)) + ".",
        )
    ident = payload.get("id")
    if ident is not None and not isinstance(ident, str):
        raise RequestError(422, "invalid_body", f"'id' must be a string, got {json_kind(ident)}.")
    outputs = _requested_outputs(payload.get("outputs"))
    inputs = payload["inputs"]
    if not inputs:
        raise RequestError(422, "empty_records", "'inputs' is empty; send one tensor per feature.")
    _check_columns(len(inputs), max_fields, "'inputs' (one tensor per feature)")
    columns: dict[str, list[Any]] = {}
    offset = 0
    problems: list[dict[str, Any]] = []
    n_rows: int | None = None
    for i, tensor in enumerate(inputs):
        where = f"inputs[{i}]"
        if not isinstance(tensor, dict):
            raise RequestError(422, "invalid_tensor", f"{where}: expected an object, got {json_kind(tensor)}.")
        name, shape, datatype = tensor.get("name"), tensor.get("shape"), tensor.get("datatype")
        if not isinstance(name, str) or not name:
            problems.append({"input": where, "reason": "'name' must be the feature name (a string)"})
            continue
        where = f"input '{_clip(name, 40)}'"
        if name in columns:
            problems.append({"input": name, "reason": "given twice"})
            continue
        if datatype not in OIP_DATATYPES:
            problems.append({"input": name, "reason": f"datatype must be one of {', '.join(OIP_DATATYPES)}, "
                             f"got {_short(datatype)}"})
            continue
        if (not isinstance(shape, list) or not shape or len(shape) > 2
                or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
                or (len(shape) == 2 and shape[1] != 1)):
            problems.append({"input": name, "reason": f"shape must be [N] or [N, 1], got {_short(shape)}"})
            continue
        count = shape[0]
        if count > max_records:
            raise _too_many("rows", max_records, count)
        params = tensor.get("parameters") or {}
        size = params.get("binary_data_size") if isinstance(params, dict) else None
        if size is not None:
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                problems.append({"input": name, "reason": f"binary_data_size {_short(size)} does not fit the "
                                 f"{len(binary)} bytes after the JSON header"})
                continue
            try:
                values = _decode_binary(binary[offset:offset + size], datatype, count)
            except ValueError as exc:
                problems.append({"input": name, "reason": str(exc)})
                continue
            offset += size
        else:
            if "data" not in tensor:
                problems.append({"input": name, "reason": "has no 'data' (and no binary_data_size)"})
                continue
            flat = _flatten(tensor["data"])
            if flat is None:
                problems.append({"input": name, "reason": "'data' must be a (nested) list of scalars"})
                continue
            values = flat
            if len(values) != count:
                problems.append({"input": name, "reason": f"shape {shape} holds {count} values but 'data' "
                                 f"has {len(values)}"})
                continue
        if n_rows is not None and count != n_rows:
            problems.append({"input": name, "reason": f"has {count} rows but earlier inputs have {n_rows}; "
                             "every input must have the same first dimension"})
            continue
        n_rows = count
        columns[name] = values
    if problems:
        text = "; ".join(f"{p['input']}: {p['reason']}" for p in problems[:5])
        raise RequestError(422, "invalid_tensor", f"the inference request is malformed: {text}.", problems)
    if not n_rows:
        raise RequestError(422, "empty_records", "the input tensors have no rows (shape [0]); send at least one.")
    records = [{name: values[r] for name, values in columns.items()} for r in range(n_rows)]
    return OipRequest(ident, records, outputs)


def oip_infer_response(
    name: str,
    version: int,
    request_id: str | None,
    *,
    predictions: Sequence[Any],
    ids: Sequence[str],
    task: str,
    classes: Sequence[Any] | None,
    outputs: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The OIP v2 inference response (JSON tensors) for ``predictions`` (:class:`Prediction` objects)."""
    n = len(predictions)
    available: dict[str, dict[str, Any]] = {
        "prediction": {"name": "prediction", "datatype": label_datatype(task, classes), "shape": [n],
                       "data": [p.prediction for p in predictions]},
    }
    if classes:
        keys = [str(c) for c in classes]
        flat = [float((p.probabilities or {}).get(k, math.nan)) for p in predictions for k in keys]
        available["probabilities"] = {"name": "probabilities", "datatype": "FP64", "shape": [n, len(keys)],
                                      "data": flat}
        available["confidence"] = {"name": "confidence", "datatype": "FP64", "shape": [n],
                                   "data": [p.confidence for p in predictions]}
    available["prediction_id"] = {"name": "prediction_id", "datatype": "BYTES", "shape": [n], "data": list(ids)}
    if outputs is not None:
        unknown = [o for o in outputs if o not in available]
        if unknown:
            raise RequestError(
                422, "unknown_output",
                f"unknown output(s) {_keys(unknown)}; this model has: {', '.join(available)}.",
            )
        chosen = [available[o] for o in outputs]
    else:
        chosen = list(available.values())
    body: dict[str, Any] = {"model_name": name, "model_version": str(version), "outputs": chosen}
    if request_id is not None:
        body["id"] = request_id
    return body


def _requested_outputs(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                              for o in value):
        raise RequestError(422, "invalid_body", "'outputs' must be a list of objects with a 'name'.")
    return tuple(o["name"] for o in value)


def _decode_binary(raw: bytes, datatype: str, count: int) -> list[Any]:
    if datatype == "BYTES":
        values: list[Any] = []
        pos = 0
        while pos < len(raw) and len(values) < count:
            if pos + 4 > len(raw):
                raise ValueError("truncated BYTES element length")
            (length,) = struct.unpack_from("<I", raw, pos)
            pos += 4
            if pos + length > len(raw):
                raise ValueError("truncated BYTES element")
            chunk = raw[pos:pos + length]
            pos += length
            try:
                values.append(chunk.decode("utf-8"))
            except UnicodeDecodeError:
                raise ValueError("BYTES elements must be UTF-8 text") from None
        if pos < len(raw):
            raise ValueError(f"the shape holds {count} values but the binary data has more")
    else:
        dtype = np.dtype(_NUMPY_TYPES[datatype])
        if len(raw) % dtype.itemsize:
            raise ValueError(f"{len(raw)} bytes is not a whole number of {datatype} values")
        array = np.frombuffer(raw, dtype=dtype)
        if datatype == "FP16":
            array = array.astype("<f8")
        values = array.tolist()
    if len(values) != count:
        raise ValueError(f"the shape holds {count} values but the binary data has {len(values)}")
    return [None if isinstance(v, float) and not math.isfinite(v) else v for v in values]


def _flatten(data: Any) -> list[Any] | None:
    if not isinstance(data, list):
        return None
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                if len(stack) > 4:
                    return None
                stack.append(iter(item))
                break
            if isinstance(item, dict):
                return None
            out.append(item)
        else:
            stack.pop()
    return out


# -- helpers ---------------------------------------------------------------------------------

_MISSING = object()


def _check_rows(value: Any, key: str, max_records: int) -> list[Any]:
    if not isinstance(value, list):
        raise RequestError(
            422, "invalid_body", f"'{key}' must be a list of records (JSON objects); got {json_kind(value)}."
        )
    if not value:
        raise RequestError(422, "empty_records", f"'{key}' is empty; send at least one record.")
    if len(value) > max_records:
        raise _too_many(key, max_records, len(value))
    return value


def _split_rows(value: Any, max_records: int, max_fields: int | None) -> list[Any]:
    if not isinstance(value, dict) or not isinstance(value.get("columns"), list) or "data" not in value:
        raise RequestError(
            422, "invalid_body",
            "'dataframe_split' must be an object {\"columns\": [names], \"data\": [[values], ...]}; got "
            + (f"keys: {_keys(value)}" if isinstance(value, dict) else json_kind(value)) + ".",
        )
    columns = value["columns"]
    _check_columns(len(columns), max_fields, "'dataframe_split.columns'")
    if not all(isinstance(c, str) for c in columns) or len(set(columns)) != len(columns):
        raise RequestError(422, "invalid_body", "'dataframe_split.columns' must be distinct column names.")
    rows = _check_rows(value["data"], "dataframe_split.data", max_records)
    problems = [
        _issue(i, "", f"expected a list of {len(columns)} values (one per column), got "
               + (f"{len(row)} values" if isinstance(row, list) else json_kind(row)), "type")
        for i, row in enumerate(rows) if not isinstance(row, list) or len(row) != len(columns)
    ]
    if problems:
        raise RequestError(422, "invalid_records", _summary(problems, "record"), problems)
    return [dict(zip(columns, row)) for row in rows]


def _columnar_rows(value: dict[str, Any], key: str, max_records: int) -> list[Any]:
    if not value:
        raise RequestError(422, "empty_records", f"'{key}' is empty; send at least one column.")
    lengths = {name: len(col) if isinstance(col, list) else None for name, col in value.items()}
    if any(n is None for n in lengths.values()) or len(set(lengths.values())) != 1:
        raise RequestError(
            422, "invalid_body",
            f"'{key}' as an object must map each column name to a list of values, all of the same length; "
            f"got lengths {_clip(str(lengths), 120)}.",
        )
    n = next(iter(lengths.values())) or 0
    if n == 0:
        raise RequestError(422, "empty_records", f"the columns of '{key}' are empty; send at least one row.")
    if n > max_records:
        raise _too_many(key, max_records, n)
    return [{name: col[r] for name, col in value.items()} for r in range(n)]


def _too_many(key: str, limit: int, got: int | None = None) -> RequestError:
    received = f"got {got:,}" if got is not None else "got more"
    return RequestError(
        413, "too_many_records",
        f"'{key}' holds more than the {limit} records a request may carry ({received}; limit "
        f"max_records={limit}); split it into requests of at most {limit}, or use `assay predict` "
        "for files (the server sets the limit with `assay serve --max-records`).",
        [{"limit": limit, "name": "max_records", "received": got}],
    )


def _issue(index: int, field: str, reason: str, code: str) -> dict[str, Any]:
    return {"index": index, "field": field, "reason": reason, "code": code}


def _summary(problems: Sequence[Mapping[str, Any]], noun: str) -> str:
    shown = "; ".join(
        f"{noun} {p['index']}" + (f" field '{p['field']}'" if p.get("field") else "") + f": {p['reason']}"
        for p in problems[:3]
    )
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return f"{len(problems)} problem(s): {shown}{more}."


def json_kind(value: Any) -> str:
    """What kind of JSON value ``value`` is, for messages: "a number", "a string", "null"..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _keys(value: Any) -> str:
    keys = list(value)[:10] if isinstance(value, (dict, list)) else []
    return ", ".join(f"'{_clip(str(k), 40)}'" for k in keys) or "none"


def _short(value: Any) -> str:
    return _clip(repr(value), 60)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
