"""Plain-JSON conversion for everything the store writes (JSON columns and JSON artifacts).

NumPy scalars and arrays become Python numbers and lists, objects with ``to_dict()``
(and pydantic models) become dicts, datetimes become ISO strings, and non-finite
floats (NaN, inf) become ``null``: PostgreSQL's JSON type rejects them, and a
missing value reads more honestly than a made-up one.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from pathlib import PurePath
from typing import Any

from assay.errors import StoreError

__all__ = ["dumps", "to_jsonable"]


def to_jsonable(obj: Any, _path: str = "$") -> Any:
    """``obj`` as plain JSON values; a :class:`StoreError` naming the key path if impossible."""
    if obj is None or isinstance(obj, (str, bool)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(key): to_jsonable(value, f"{_path}.{key}") for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(value, f"{_path}[{i}]") for i, value in enumerate(obj)]
    if isinstance(obj, (set, frozenset)):
        return [to_jsonable(value, f"{_path}[]") for value in sorted(obj, key=repr)]
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, PurePath):
        return str(obj)
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        return to_jsonable(to_dict(), _path)
    model_dump = getattr(obj, "model_dump", None)  # pydantic models (the parsed assay.yaml)
    if callable(model_dump):
        return to_jsonable(model_dump(mode="json"), _path)
    # NumPy scalars and arrays (and pandas values) without importing them here
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return to_jsonable(tolist(), _path)
    raise StoreError(
        "a value cannot be stored as JSON",
        where=_path,
        expected="numbers, strings, booleans, None, lists, dicts or objects with to_dict()",
        received=f"{type(obj).__name__}: {obj!r}",
        fix="Convert it to plain values (or give its class a to_dict()) before storing it.",
    )


def dumps(obj: Any) -> str:
    """Canonical JSON text: sorted keys, no spaces, so equal content gives equal bytes."""
    return json.dumps(
        to_jsonable(obj),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
