"""Loading data: sources, schemas and data versions."""

from __future__ import annotations

from assay.data.dataset import Dataset, content_hash, load_dataset
from assay.data.schema import ColumnKind, ColumnSchema, Schema, infer_kind, infer_schema
from assay.data.source import is_sql_url, read_source

__all__ = [
    "ColumnKind",
    "ColumnSchema",
    "Dataset",
    "Schema",
    "content_hash",
    "infer_kind",
    "infer_schema",
    "is_sql_url",
    "load_dataset",
    "read_source",
]
