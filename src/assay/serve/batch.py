"""Batch scoring (``assay predict``): files in chunks, or JSON lines from stdin, validated like the server.

Each chunk of rows is turned into the JSON records a client would send (so
dates, nulls and numbers reach :func:`~assay.model.validation.validate_records`
exactly as they would over HTTP), validated against the model's schema and
scored with the runtime's fast path.

Given a :class:`~assay.serve.log.PredictionLog` (``assay predict`` opens one unless
``--no-log``), every answered row is logged like a served prediction, on the route
``batch``, with the whole record as read (declared ``data.id``/``data.time`` columns
included), and its prediction id is written beside it (``prediction_id``): feedback
(by that id, or by the record's ``data.id``) and monitoring see batch traffic too.

>>> result = predict_file(registry, Path("in.parquet"), Path("out.parquet"))   # doctest: +SKIP
>>> result.scored, result.version                                              # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa

from assay.data.source import csv_row_error
from assay.errors import ConfigError, DataError, NotFoundError
from assay.registry import CHAMPION, ModelRegistry
from assay.model.loaded import LoadedModel, Prediction
from assay.model.validation import ValidatedBatch
from assay.serve.log import LogEntry, PredictionLog, new_prediction_id
from assay.serve.protocols import json_kind
from assay.store.database import utcnow

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "FORMATS",
    "read_records",
    "BatchResult",
    "batch_log",
    "load_model_for_batch",
    "output_columns",
    "predict_file",
    "predict_stream",
]

#: rows scored per chunk of a file
DEFAULT_CHUNK_SIZE = 10_000
#: file suffixes read and written
FORMATS = (".parquet", ".csv", ".jsonl")

Progress = Callable[[int, "int | None"], None]


@dataclass(frozen=True)
class BatchResult:
    """What one batch scoring did.

    Attributes:
        version: the model version that scored.
        rows: records read.
        scored: records answered (flagged ones included).
        refused: records not scored (invalid; only with ``skip_invalid`` or on stdin).
        flagged: records answered but flagged (unknown category, out of range, ...).
        output: the file written (None for a stream).
        seconds: wall time.
    """

    version: int
    rows: int
    scored: int
    refused: int
    flagged: int
    output: str | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {"version": self.version, "rows": self.rows, "scored": self.scored, "refused": self.refused,
                "flagged": self.flagged, "output": self.output, "seconds": round(float(self.seconds), 3)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BatchResult:
        """The inverse of :meth:`to_dict`."""
        return cls(int(data["version"]), int(data["rows"]), int(data["scored"]), int(data["refused"]),
                   int(data["flagged"]), data.get("output"), float(data["seconds"]))


def load_model_for_batch(registry: ModelRegistry, version: int | None = None) -> LoadedModel:
    """The verified model of ``version`` (default: the champion)."""
    if version is None:
        version = registry.alias(CHAMPION)
        if version is None:
            raise NotFoundError(
                "there is no champion to score with",
                where=registry.store.url,
                expected="a promoted version, or --version N",
                received="no champion",
                fix="Promote one with `assay promote VERSION`, or pass --version N (see `assay models`).",
            )
    return LoadedModel.load(registry, int(version))


def batch_log(registry: ModelRegistry, wal_dir: Path, *, max_string: int | None = None,
              max_input_bytes: int | None = None) -> PredictionLog:
    """The prediction log batch scoring appends to: the project's WAL folder (``wal_dir``),
    drained into the store when closed (a run killed midway leaves its segment for the
    next server or batch run to insert)."""
    caps: dict[str, int] = {}
    if max_string is not None:
        caps["max_string"] = int(max_string)
    if max_input_bytes is not None:
        caps["max_input_bytes"] = int(max_input_bytes)
    return PredictionLog(registry.store, wal_dir, **caps)  # type: ignore[arg-type]


def output_columns(model: LoadedModel, existing: Sequence[str] = (), *, logged: bool = False) -> dict[str, str]:
    """Output column names: ``prediction``, ``confidence``, ``probability_<class>``, ``model_version``,
    ``flags``, ``error`` (and ``prediction_id`` when the predictions are logged); prefixed ``assay_``
    if any clashes with an input column."""
    names = {"prediction": "prediction", "confidence": "confidence", "model_version": "model_version",
             "flags": "flags", "error": "error"}
    if logged:
        names["prediction_id"] = "prediction_id"
    for label in model.classes or []:
        names[f"probability:{label}"] = f"probability_{label}"
    if set(names.values()) & set(existing):
        names = {key: f"assay_{value}" for key, value in names.items()}
    return names


def predict_file(
    registry: ModelRegistry,
    source: Path,
    output: Path,
    *,
    version: int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    skip_invalid: bool = False,
    progress: Progress | None = None,
    log: PredictionLog | None = None,
) -> BatchResult:
    """Score every row of ``source`` into ``output`` (Parquet, CSV or JSON lines, by suffix).

    The output holds the input columns followed by :func:`output_columns`. A row
    that cannot be scored stops the run with a :class:`DataError` naming the row,
    column and reason, unless ``skip_invalid`` (then its prediction is empty and
    ``error`` says why). The output is written to a temporary file and renamed
    when complete. With ``log``, each answered row is logged (route ``batch``) and its
    id written in ``prediction_id``; the caller flushes or closes the log.
    """
    started = time.perf_counter()
    source, output = Path(source), Path(output)
    _check_suffix(source, "input")
    _check_suffix(output, "output")
    if not source.is_file():
        raise DataError("the input file does not exist", path=str(source),
                        fix="Check the path; `assay predict` reads .parquet, .csv or .jsonl files.")
    if not output.parent.is_dir():
        raise DataError("the output folder does not exist", path=str(output.parent),
                        fix="Create it first, or write elsewhere with -o.")
    if _same_file(source, output):
        other = source.with_name(f"{source.stem}.predictions{source.suffix}").name
        raise ConfigError(
            "is the input file; writing the predictions there would replace the records",
            key="--output", where=str(output), fix=f"Write elsewhere, e.g. -o {other}.",
        )
    if chunk_size < 1:
        raise DataError("the chunk size must be positive", path=str(source), received=chunk_size,
                        fix="Pass --chunk-size 10000 (the default) or another positive number.")
    model = load_model_for_batch(registry, version)
    schema, chunks, total = _read(source, chunk_size, model.text_column)
    names = output_columns(model, schema.names, logged=log is not None)
    out_schema = _output_schema(schema, model, names)
    request_id = new_prediction_id()
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    rows = scored = refused = flagged = 0
    writer = _Writer(tmp, out_schema, output.suffix[1:].lower())
    try:
        for table in chunks:
            frame = table.to_pandas()
            records = orjson.loads(frame.to_json(orient="records", date_format="iso"))
            batch = model.validate(records)
            if batch.errors and not skip_invalid:
                raise _row_error(batch, rows, source)
            start = time.perf_counter()
            predictions = model.predict(batch) if batch.valid_index else []
            seconds = time.perf_counter() - start
            ids = _log(log, model, batch, records, predictions, request_id, seconds)
            columns = _prediction_columns(model, names, len(records), batch, predictions, ids)
            writer.write(pa.Table.from_arrays([*table.columns, *columns.values()], schema=out_schema))
            rows += len(records)
            scored += len(predictions)
            refused += len(records) - len(predictions)
            flagged += sum(1 for f in batch.flags if f)
            if progress is not None:
                progress(rows, total)
        writer.close()
        tmp.replace(output)
    finally:
        if not writer._closed:
            writer._closed = True  # an error stopped the run: drop the partial file
            writer.close_files()
        tmp.unlink(missing_ok=True)
    return BatchResult(model.version, rows, scored, refused, flagged, str(output), time.perf_counter() - started)


def predict_stream(
    registry: ModelRegistry,
    lines: Iterable[str | bytes],
    write: Callable[[str], object],
    *,
    version: int | None = None,
    chunk_size: int = 1000,
    flush: Callable[[], None] | None = None,
    log: PredictionLog | None = None,
) -> BatchResult:
    """Score JSON lines (one record per line) and write one JSON line per record, in order.

    A scored record gives ``{"prediction", "probabilities", "confidence", "version",
    "flags"}`` (and ``"prediction_id"`` when ``log`` is given: the answer is logged on the
    route ``batch``); a line that is not JSON, or a record the server would refuse, gives
    ``{"error", "message", "details"}`` in its place and the stream goes on. Blank
    lines are skipped. Output is written (and ``flush`` called) after every
    ``chunk_size`` lines and at the end; the log is flushed first, so an id written is an
    id feedback can name.
    """
    started = time.perf_counter()
    model = load_model_for_batch(registry, version)
    request_id = new_prediction_id()
    rows = scored = refused = flagged = 0
    for chunk in _chunks(lines, max(1, chunk_size)):
        parsed: list[Any] = []
        out: list[dict[str, Any] | None] = []
        for number, line in chunk:
            problem, record = _json_line_problem(number, line)
            if problem:
                out.append({"error": "invalid_json", "message": f"{problem}: '{_excerpt(line)}'; send one JSON "
                            "object per line.", "details": [{"line": number}]})
            else:
                parsed.append(record)
                out.append(None)
        positions = [i for i, item in enumerate(out) if item is None]
        batch = model.validate(parsed)
        start = time.perf_counter()
        predictions = model.predict(batch) if batch.valid_index else []
        ids = _log(log, model, batch, parsed, predictions, request_id, time.perf_counter() - start)
        if log is not None and ids:
            log.flush()
        logged_ids: list[str | None] = list(ids) if ids else [None] * len(predictions)
        answered = dict(zip(batch.valid_index, zip(predictions, batch.flags, logged_ids)))
        issues: dict[int, list[dict[str, Any]]] = {}
        for issue in batch.errors:
            issues.setdefault(issue.index, []).append(
                {"field": issue.field, "reason": issue.reason, "code": issue.code})
        for k, pos in enumerate(positions):
            number = chunk[pos][0]
            if k in answered:
                p, flags, pid = answered[k]
                scored_line: dict[str, Any] = {
                    "prediction": p.prediction, "probabilities": p.probabilities,
                    "confidence": p.confidence, "version": model.version, "flags": list(flags)}
                if pid is not None:
                    scored_line["prediction_id"] = pid
                out[pos] = scored_line
                flagged += bool(flags)
            else:
                found = issues.get(k, [])
                reasons = "; ".join(
                    (f"field '{d['field']}': " if d["field"] else "") + d["reason"] for d in found[:3])
                for d in found:
                    d["line"] = number
                out[pos] = {"error": "invalid_record", "message": f"line {number} refused: {reasons}.",
                            "details": found}
        for item in out:
            write(orjson.dumps(item, option=orjson.OPT_SERIALIZE_NUMPY).decode() + "\n")
            if item is not None and "error" in item:
                refused += 1
            else:
                scored += 1
        rows += len(chunk)
        if flush is not None:
            flush()
    return BatchResult(model.version, rows, scored, refused, flagged, None, time.perf_counter() - started)


# -- helpers ---------------------------------------------------------------------------------


def _log(
    log: PredictionLog | None,
    model: LoadedModel,
    batch: ValidatedBatch,
    records: Sequence[Any],
    predictions: Sequence[Prediction],
    request_id: str,
    seconds: float,
) -> list[str] | None:
    """Append the answered rows of one chunk to ``log`` (route ``batch``, the records as read);
    their prediction ids, None without a log."""
    if log is None:
        return None
    at = utcnow()
    ids = [new_prediction_id() for _ in predictions]
    latency_ms = seconds * 1000.0
    entries = [
        LogEntry(ids[i], at, model.version, "batch", request_id,
                 record if isinstance(record := records[pos], dict) else {"value": record},
                 p.prediction, p.probabilities, p.confidence, latency_ms, list(batch.flags[i]))
        for i, (pos, p) in enumerate(zip(batch.valid_index, predictions))
    ]
    log.append(entries)
    return ids


def _same_file(source: Path, output: Path) -> bool:
    """Whether ``output`` names ``source``: the same path, a symlink to it or a hard link."""
    if output.resolve() == source.resolve():
        return True
    try:
        return os.path.samefile(source, output)
    except OSError:  # the output does not exist yet
        return False


def _check_suffix(path: Path, role: str) -> None:
    if path.suffix.lower() not in FORMATS:
        raise DataError(
            f"the {role} file's format is not known from its name",
            path=str(path), expected="a name ending in " + ", ".join(FORMATS), received=path.suffix or "no suffix",
            fix="Rename it, or convert it to Parquet or CSV.",
        )


def _read(
    source: Path, chunk_size: int, text_column: str | None = None
) -> tuple[pa.Schema, Iterator[pa.Table], int | None]:
    """The file's schema, its rows in tables of ``chunk_size``, and its row count; a CSV's
    ``text_column`` is read as strings (a text reading ``42`` stays ``"42"``)."""
    suffix = source.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            handle = pq.ParquetFile(source)
            schema = handle.schema_arrow
            total = handle.metadata.num_rows
            batches = (pa.Table.from_batches([b], schema=schema)
                       for b in handle.iter_batches(batch_size=chunk_size))
            return schema, batches, total
        if suffix == ".csv":
            try:
                frame = pd.read_csv(source, dtype={text_column: str} if text_column else None)
            except pd.errors.ParserError:
                located = csv_row_error(source)
                if located is None:
                    raise
                raise located from None
        else:
            frame = pd.DataFrame(_read_json_lines(source))
    except (OSError, ValueError, pa.ArrowException, pd.errors.ParserError) as exc:
        raise DataError(f"the input file cannot be read ({str(exc).splitlines()[0][:200]})", path=str(source),
                        fix="Check that the file is complete and in the format its name says.") from None
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except pa.ArrowException:
        raise _mixed_column(frame, source) from None
    return table.schema, (table.slice(i, chunk_size) for i in range(0, table.num_rows, chunk_size)), len(frame)


def _mixed_column(frame: pd.DataFrame, source: Path) -> DataError:
    """The error for a column whose values are of kinds no one column type holds (numbers in
    some rows, text in others), naming the column and the first row that differs."""
    for column in frame.columns:
        values = frame[column]
        try:
            pa.array(values, from_pandas=True)
            continue
        except pa.ArrowException:
            pass
        kinds = values.map(lambda v: "missing" if v is None or v != v else json_kind(v))
        common = kinds[kinds != "missing"].mode()
        usual = str(common.iloc[0]) if len(common) else "missing"
        odd = kinds[(kinds != usual) & (kinds != "missing")]
        row = int(odd.index[0]) + 1 if len(odd) else 1
        shown = repr(values.iloc[row - 1])[:80]
        return DataError(
            f"column '{column}' mixes kinds of values: record {row} holds {shown} "
            f"({json_kind(values.iloc[row - 1])}) where the others hold {usual}",
            path=str(source), column=str(column),
            fix=f"Give every value of '{column}' the same kind (numbers unquoted, text quoted), "
            "or leave the field out of the records that lack it.",
        )
    return DataError("the records cannot be read as one table", path=str(source),
                     fix="Give each field the same kind of value in every record.")


def _json_line_problem(number: int, line: str | bytes) -> tuple[str, Any]:
    """Parse one JSON line: ("", record), or (a message naming the line, None)."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return f"line {number} is not valid JSON ({exc})", None
    if not isinstance(record, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
            type(record), "a number")
        return f"line {number} holds {kind}, not a JSON object", None
    return "", record


def _excerpt(line: str | bytes, limit: int = 120) -> str:
    text = (line.decode("utf-8", "replace") if isinstance(line, bytes) else line).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read_json_lines(source: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file; the first bad line stops the read, named by number."""
    records: list[dict[str, Any]] = []
    with source.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            problem, record = _json_line_problem(number, line)
            if problem:
                raise DataError(problem, path=str(source), received=f"the line '{_excerpt(line)}'",
                                fix="Write one JSON object per line, e.g. {\"age\": 41, \"plan\": \"pro\"}; "
                                "repair or remove the line.", line=number)
            records.append(record)
    return records


def _label_type(model: LoadedModel) -> pa.DataType:
    classes = model.classes
    if not classes:
        return pa.float64()
    if all(isinstance(c, bool) for c in classes):
        return pa.bool_()
    if all(isinstance(c, int) for c in classes):
        return pa.int64()
    return pa.string()


def _output_schema(schema: pa.Schema, model: LoadedModel, names: Mapping[str, str]) -> pa.Schema:
    fields = list(schema)
    fields.append(pa.field(names["prediction"], _label_type(model)))
    fields.append(pa.field(names["confidence"], pa.float64()))
    for key, name in names.items():
        if key.startswith("probability:"):
            fields.append(pa.field(name, pa.float64()))
    fields.append(pa.field(names["model_version"], pa.int64()))
    fields.append(pa.field(names["flags"], pa.string()))
    fields.append(pa.field(names["error"], pa.string()))
    if "prediction_id" in names:
        fields.append(pa.field(names["prediction_id"], pa.string()))
    return pa.schema(fields, metadata=schema.metadata)


def _prediction_columns(
    model: LoadedModel,
    names: Mapping[str, str],
    n: int,
    batch: ValidatedBatch,
    predictions: Sequence[Prediction],
    ids: Sequence[str] | None = None,
) -> dict[str, pa.Array]:
    label: list[Any] = [None] * n
    confidence: list[float | None] = [None] * n
    flags: list[str | None] = [None] * n
    errors: list[str | None] = [None] * n
    classes = [str(c) for c in model.classes or []]
    probabilities: dict[str, list[float | None]] = {c: [None] * n for c in classes}
    string_labels = _label_type(model) == pa.string()
    for pos, p, f in zip(batch.valid_index, predictions, batch.flags):
        label[pos] = str(p.prediction) if string_labels else p.prediction
        confidence[pos] = p.confidence
        flags[pos] = ";".join(f)
        for c in classes:
            probabilities[c][pos] = (p.probabilities or {}).get(c)
    by_row: dict[int, list[str]] = {}
    for issue in batch.errors:
        by_row.setdefault(issue.index, []).append(f"{issue.field}: {issue.reason}" if issue.field else issue.reason)
    for pos, reasons in by_row.items():
        errors[pos] = "; ".join(reasons)
    valid = set(batch.valid_index)
    version = [model.version if i in valid else None for i in range(n)]
    columns: dict[str, pa.Array] = {
        names["prediction"]: pa.array(label, type=_label_type(model)),
        names["confidence"]: pa.array(confidence, type=pa.float64()),
    }
    for c in classes:
        columns[names[f"probability:{c}"]] = pa.array(probabilities[c], type=pa.float64())
    columns[names["model_version"]] = pa.array(version, type=pa.int64())
    columns[names["flags"]] = pa.array(flags, type=pa.string())
    columns[names["error"]] = pa.array(errors, type=pa.string())
    if "prediction_id" in names:
        logged: list[str | None] = [None] * n
        for pos, pid in zip(batch.valid_index, ids or []):
            logged[pos] = pid
        columns[names["prediction_id"]] = pa.array(logged, type=pa.string())
    return columns


def _row_error(batch: ValidatedBatch, offset: int, source: Path) -> DataError:
    first = batch.errors[0]
    more = len({e.index for e in batch.errors}) - 1
    return DataError(
        f"row {offset + first.index} cannot be scored: {first.reason}"
        + (f" ({more} more row(s) in this chunk too)" if more > 0 else ""),
        path=str(source), column=first.field or None,
        fix="Fix the row, or pass --skip-invalid to write such rows with an empty prediction and the reason.",
    )


def _chunks(lines: Iterable[str | bytes], size: int) -> Iterator[list[tuple[int, str | bytes]]]:
    chunk: list[tuple[int, str | bytes]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        chunk.append((number, line))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _Writer:
    """Writes tables to Parquet, CSV or JSON lines, by the suffix of the final name."""

    def __init__(self, path: Path, schema: pa.Schema, fmt: str) -> None:
        self.path = path
        self.schema = schema
        self.format = fmt
        self._parquet: Any = None
        self._handle: Any = None
        self._first = True
        self._closed = False

    def write(self, table: pa.Table) -> None:
        """Append ``table``."""
        if self.format == "parquet":
            if self._parquet is None:
                import pyarrow.parquet as pq

                self._parquet = pq.ParquetWriter(self.path, self.schema)
            self._parquet.write_table(table)
            return
        # integers stay integers beside nulls (a refused row's empty model_version is not 1.0)
        frame = table.to_pandas(integer_object_nulls=True)
        if self._handle is None:
            self._handle = open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed in close()
        if self.format == "csv":
            frame.to_csv(self._handle, header=self._first, index=False)
        else:
            text = frame.to_json(orient="records", lines=True, date_format="iso",
                                 double_precision=15)
            self._handle.write(text if text.endswith("\n") or not text else text + "\n")
        self._first = False

    def close(self) -> None:
        """Finish the file (an empty input still gets a valid, empty output)."""
        if self._closed:
            return
        if self._first:
            self.write(self.schema.empty_table())
        self._closed = True
        self.close_files()

    def close_files(self) -> None:
        """Close the open file handles without finishing anything."""
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def read_records(source: Path, text_column: str | None = None) -> list[dict[str, Any]]:
    """Every row of ``source`` (Parquet, CSV or JSON lines, by suffix) as a JSON record, read
    as :func:`predict_file` reads it (a CSV's ``text_column`` as strings)."""
    source = Path(source)
    _check_suffix(source, "input")
    if not source.is_file():
        raise DataError("the input file does not exist", path=str(source),
                        fix="Check the path; assay reads .parquet, .csv or .jsonl files.")
    if source.suffix.lower() == ".jsonl":
        return _read_json_lines(source)  # as written: no column is coerced to one type
    _, chunks, _ = _read(source, DEFAULT_CHUNK_SIZE, text_column)
    records: list[dict[str, Any]] = []
    for table in chunks:
        frame = table.to_pandas()
        records.extend(orjson.loads(frame.to_json(orient="records", date_format="iso")))
    return records
