"""Reading a data source (CSV, Parquet, or a SQL query) into a DataFrame.

Every failure becomes a :class:`~assay.errors.DataError` naming the file and the
fix: a user never sees a parser traceback.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
from pathlib import Path

import pandas as pd

from assay.errors import ConfigError, DataError

__all__ = ["csv_row_error", "is_sql_url", "read_source"]

_SQL_SCHEMES = (
    "sqlite",
    "postgresql",
    "postgres",
    "mysql",
    "mariadb",
    "mssql",
    "oracle",
    "duckdb",
)
_CSV_SUFFIXES = {".csv", ".tsv", ".txt"}
_PARQUET_SUFFIXES = {".parquet", ".pq"}
_SNIFF_BYTES = 1 << 16
#: a row quoted in an error is cut to this many characters
_ROW_CHARS = 120
_RAGGED_FIX = (
    "Quote values that contain the delimiter, close every opening quote, or repair the row "
    "(a truncated file ends with a short row)."
)


def is_sql_url(source: str) -> bool:
    """Whether ``source`` is a SQLAlchemy URL rather than a file path."""
    scheme = source.split("://", 1)[0].split("+", 1)[0].lower() if "://" in source else ""
    return scheme in _SQL_SCHEMES


def read_source(
    source: str | Path,
    *,
    query: str | None = None,
    base_dir: Path | None = None,
    encoding: str = "utf-8",
) -> pd.DataFrame:
    """Read ``source`` into a DataFrame.

    Args:
        source: a CSV/TSV or Parquet path (relative to ``base_dir``), or a
            SQLAlchemy URL, in which case ``query`` is the SELECT to run.
        query: the SQL query, required with a URL.
        base_dir: the folder relative paths are resolved against.
        encoding: the text encoding of a CSV file.
    """
    text = str(source)
    if is_sql_url(text):
        return _read_sql(text, query)
    if query:
        raise DataError(
            "a SQL query was given but the source is not a database URL",
            path=text,
            expected="a SQLAlchemy URL such as sqlite:///data.db",
            fix="Set data.source to the database URL, or remove data.query.",
        )
    path = Path(text)
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    if not path.exists():
        raise DataError(
            "file not found",
            path=str(path),
            fix="Check the path (relative paths are read from the folder of assay.yaml).",
        )
    if path.is_dir():
        raise DataError("is a folder, not a data file", path=str(path), fix="Name a CSV or Parquet file.")
    if path.stat().st_size == 0:
        raise DataError("file is empty", path=str(path), fix="Point to a file with a header and rows.")
    suffix = path.suffix.lower()
    if suffix in _PARQUET_SUFFIXES:
        return _read_parquet(path)
    if suffix in _CSV_SUFFIXES:
        return _read_csv(path, encoding, delimiter="\t" if suffix == ".tsv" else ",")
    raise DataError(
        f"unsupported file type '{suffix or '(none)'}'",
        path=str(path),
        expected="one of .csv, .tsv, .parquet",
        fix="Convert the file, or load it with a SQL query.",
    )


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            "cannot be read as Parquet (truncated or not a Parquet file)",
            path=str(path),
            received=str(exc),
            fix="Re-export the file, or check it was copied completely.",
        ) from None
    names = table.column_names
    _check_names(names, str(path))
    return table.to_pandas()


def _read_csv(path: Path, encoding: str, delimiter: str) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise ConfigError(
            f"unknown text encoding '{encoding[:80]}'",
            key="data.encoding",
            where=f"{path}: data.encoding",
            fix="Set data.encoding to a Python codec name such as utf-8 or latin-1.",
        ) from None
    # UTF-16 and UTF-32 text is full of zero bytes; in any other encoding they mean binary
    wide = codec.startswith(("utf-16", "utf-32"))
    with path.open("rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    if wide and b"\x00" not in head:
        raise _encoding_error(path, encoding, None)
    if not wide and head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(
            "is UTF-16 text (it starts with a UTF-16 byte-order mark)",
            path=str(path),
            fix="Set data.encoding: utf-16 in assay.yaml, or re-save the file as UTF-8.",
        )
    if b"\x00" in head and not wide:
        raise DataError(
            "is a binary file, not delimited text",
            path=str(path),
            fix="Give a CSV export of the data, or a .parquet file.",
        )
    try:
        head_text = head.decode(encoding)
    except UnicodeDecodeError as exc:
        if len(head) < _SNIFF_BYTES or exc.start < len(head) - 4:
            raise _encoding_error(path, encoding, exc.start) from None
        head_text = head[: exc.start].decode(encoding)
    except UnicodeError:  # not a decode error: e.g. utf-16 without a byte-order mark
        raise _encoding_error(path, encoding, None) from None
    first_line = head_text.splitlines()[0] if head_text.strip() else ""
    if not first_line.strip():
        raise DataError("has no header line", path=str(path), fix="The first line must name the columns.")
    header = next(csv.reader(io.StringIO(first_line), delimiter=delimiter))
    _check_names(header, str(path))

    read = pacsv.ReadOptions(encoding=encoding, block_size=1 << 24)
    parse = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True)
    convert = pacsv.ConvertOptions(strings_can_be_null=True)
    try:
        table = pacsv.read_csv(path, read_options=read, parse_options=parse, convert_options=convert)
    except UnicodeError:
        raise _encoding_error(path, encoding, None) from None
    except pa.ArrowInvalid as exc:
        message = str(exc)
        if "UTF8" in message or "utf8" in message.lower():
            raise _encoding_error(path, encoding, None) from None
        if "Expected" in message and "columns" in message:
            raise csv_row_error(path, encoding, delimiter) or DataError(
                "has a ragged row: " + _first_line(message),
                path=str(path),
                expected=f"{len(header)} fields per row, as in the header",
                fix=_RAGGED_FIX,
            ) from None
        raise DataError(
            "cannot be parsed as CSV: " + _first_line(message),
            path=str(path),
            fix="Check quoting and line endings, or export the data again.",
        ) from None
    if any(pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type) for f in table.schema):
        raise _encoding_error(path, encoding, None)
    if table.num_rows == 0:
        raise DataError("has a header but no rows", path=str(path), fix="Add data rows to the file.")
    return table.to_pandas()


def csv_row_error(path: Path, encoding: str = "utf-8", delimiter: str = ",") -> DataError | None:
    """The first row of a CSV file whose field count differs from the header's, as an error.

    The error names the file, the line the row starts on, both field counts and the
    row itself (cut to 120 characters). None when every row has the header's width.
    Blank lines are skipped, as the readers skip them; a quoted value may span lines.
    """
    with path.open(encoding=encoding, errors="replace", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = next(reader)
        except (StopIteration, csv.Error):
            return None
        width = len(header)
        start = reader.line_num + 1
        try:
            for row in reader:
                if row and len(row) != width:
                    text = delimiter.join(row)
                    if '"' in text or "\n" in text:
                        text = _row_text(path, encoding, start, reader.line_num)
                    what = f"has a ragged row at line {start}"
                    if text.count('"') % 2:
                        what += " (a quote opened there is never closed)"
                    return DataError(
                        f"{what}: {len(row)} fields where the header has {width}",
                        path=str(path),
                        expected=f"{width} fields per row, as in the header",
                        received=f"the row '{_cut(text)}'",
                        fix=_RAGGED_FIX,
                        line=start,
                    )
                start = reader.line_num + 1
        except csv.Error as exc:
            return DataError(
                f"cannot be parsed as CSV at line {reader.line_num}: {exc}",
                path=str(path),
                fix="Check quoting and line endings, or export the data again.",
                line=reader.line_num,
            )
    return None


def _row_text(path: Path, encoding: str, first: int, last: int) -> str:
    """Lines ``first`` to ``last`` of a file, as written (quotes and line breaks kept)."""
    with path.open(encoding=encoding, errors="replace", newline="") as handle:
        return "".join(itertools.islice(handle, first - 1, last)).rstrip("\r\n")


def _cut(text: str) -> str:
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= _ROW_CHARS else text[: _ROW_CHARS - 3] + "..."


def _read_sql(url: str, query: str | None) -> pd.DataFrame:
    import sqlalchemy as sa

    if not query:
        raise DataError(
            "a database URL needs a query",
            where="data.query",
            expected="a SELECT statement",
            fix="Add data.query to assay.yaml, e.g. 'SELECT * FROM customers'.",
        )
    safe_url = _redact(url)
    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError, ValueError) as exc:
        raise DataError(
            "is not a usable database URL",
            path=safe_url,
            received=str(exc),
            fix="Use a SQLAlchemy URL such as sqlite:///data.db or "
            "postgresql+psycopg://user@host/db, and install its driver.",
        ) from None
    try:
        with engine.connect() as conn:
            frame = pd.read_sql(sa.text(query), conn)
    except sa.exc.OperationalError as exc:
        raise DataError(
            "cannot connect or run the query",
            path=safe_url,
            received=_first_line(str(exc.orig) if exc.orig else str(exc)),
            fix="Check that the database is reachable, the URL and credentials, and the query.",
        ) from None
    except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as exc:
        cause = exc.__cause__ if isinstance(exc, pd.errors.DatabaseError) else exc
        if isinstance(cause, sa.exc.OperationalError) and cause.orig is not None:
            exc = cause.orig
        raise DataError(
            "the query failed",
            path=safe_url,
            received=_first_line(str(exc)),
            fix="Check data.query against the database schema.",
        ) from None
    finally:
        engine.dispose()
    _check_names(list(frame.columns), safe_url)
    if frame.empty:
        raise DataError("the query returned no rows", path=safe_url, fix="Check data.query.")
    return frame


def _check_names(names: list[str], where: str) -> None:
    seen: set[str] = set()
    dupes = []
    for name in names:
        if name in seen and name not in dupes:
            dupes.append(name)
        seen.add(name)
    if dupes:
        raise DataError(
            "has duplicate column names: " + ", ".join(repr(d) for d in dupes),
            path=where,
            fix="Rename the columns so each name is unique.",
        )
    blanks = [i for i, n in enumerate(names) if not str(n).strip()]
    if blanks:
        raise DataError(
            f"has unnamed columns at positions {', '.join(str(i + 1) for i in blanks)}",
            path=where,
            fix="Give every column a name in the header line.",
        )


def _encoding_error(path: Path, encoding: str, offset: int | None) -> DataError | ConfigError:
    at = f" at byte {offset}" if offset is not None else ""
    if encoding.replace("_", "-").lower() not in ("utf-8", "utf8"):
        # a codec other than the default was chosen in assay.yaml, and it is the wrong one
        return ConfigError(
            f"is not valid {encoding} text{at}",
            key="data.encoding",
            where=f"{path}: data.encoding",
            fix=f"data.encoding is '{encoding}': set it to the file's encoding (utf-8, "
            "latin-1, cp1252, ...), or remove it to read UTF-8.",
        )
    return DataError(
        f"is not valid {encoding} text{at}",
        path=str(path),
        fix="Re-save the file as UTF-8, or set data.encoding (e.g. latin-1) in assay.yaml.",
    )


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def _redact(url: str) -> str:
    import sqlalchemy as sa

    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for display
        return url.split("@")[-1]
