"""A loaded data set: the frame, its schema and its content hash (the data version)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from assay.data.schema import Schema, infer_schema
from assay.data.source import read_source

__all__ = ["Dataset", "content_hash", "load_dataset"]


@dataclass(frozen=True)
class Dataset:
    """A frame with its schema and version.

    Attributes:
        frame: the rows, as read (no column dropped, no type coerced beyond parsing).
        schema: the inferred schema of every column.
        version: a content hash of names, types and values: equal data, equal version.
        source: where the rows came from (path or redacted URL), for display.
        unparsed: per column converted at load time, the values that did not parse
            (e.g. unparseable dates in the time column), for the audit to report.
        label_version: the label version of the store applied to the target column
            (None when the target is as the source has it).
    """

    frame: pd.DataFrame
    schema: Schema
    version: str
    source: str
    unparsed: dict[str, list[str]] = field(default_factory=dict)
    label_version: int | None = None

    @property
    def n_rows(self) -> int:
        return int(len(self.frame))

    @property
    def n_columns(self) -> int:
        return int(self.frame.shape[1])

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        source: str = "<frame>",
        unparsed: dict[str, list[str]] | None = None,
        label_version: int | None = None,
    ) -> Dataset:
        """Wrap an in-memory frame (its index is dropped)."""
        frame = frame.reset_index(drop=True)
        frame.columns = [str(c) for c in frame.columns]
        return cls(
            frame=frame,
            schema=infer_schema(frame),
            version=content_hash(frame),
            source=source,
            unparsed=dict(unparsed or {}),
            label_version=label_version,
        )


def content_hash(frame: pd.DataFrame) -> str:
    """A SHA-256 over column names, dtypes and every value, independent of the index."""
    digest = hashlib.sha256()
    for name in frame.columns:
        series = frame[name]
        digest.update(f"{name}\x1f{series.dtype}\x1e".encode())
        try:
            hashed = pd.util.hash_pandas_object(series, index=False).to_numpy()
        except TypeError:
            hashed = pd.util.hash_pandas_object(series.astype(str), index=False).to_numpy()
        digest.update(np.ascontiguousarray(hashed).tobytes())
    return "sha256:" + digest.hexdigest()[:32]


def load_dataset(
    source: str | Path,
    *,
    query: str | None = None,
    base_dir: Path | None = None,
    encoding: str = "utf-8",
    parse_dates: list[str] | None = None,
) -> Dataset:
    """Read a CSV, Parquet file or SQL query and describe it.

    ``parse_dates`` names columns (e.g. the configured time column) to convert to
    datetimes; values that do not parse become missing and are reported by the audit.
    """
    frame = read_source(source, query=query, base_dir=base_dir, encoding=encoding)
    frame.columns = [str(c) for c in frame.columns]
    unparsed: dict[str, list[str]] = {}
    for name in parse_dates or []:
        if name in frame.columns and not pd.api.types.is_datetime64_any_dtype(frame[name]):
            frame[name], bad = _to_datetime(frame[name])
            if bad:
                unparsed[name] = bad
    label = str(source) if "://" not in str(source) else _display_url(str(source))
    return Dataset.from_frame(frame, source=label, unparsed=unparsed)


def _to_datetime(series: pd.Series) -> tuple[pd.Series, list[str]]:
    """Parse dates; keep the column as is when most values are not dates."""
    if pd.api.types.is_numeric_dtype(series):
        return series, []
    parsed = pd.to_datetime(series, errors="coerce", format="mixed", utc=True)
    failed = parsed.isna() & series.notna()
    if parsed.notna().sum() < 0.5 * series.notna().sum():
        return series, []
    return parsed, [str(v) for v in series[failed].unique()[:20]]


def _display_url(url: str) -> str:
    from assay.data.source import _redact

    return _redact(url)
