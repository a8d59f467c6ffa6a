"""Loading CSV, Parquet and SQL sources; content hashes; schemas."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from assay.data import Dataset, content_hash, infer_schema, load_dataset
from assay.errors import DataError


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 80, 200),
            "income": rng.normal(50_000, 10_000, 200).round(2),
            "plan": rng.choice(["basic", "pro", "team"], 200),
            "churned": rng.integers(0, 2, 200),
        }
    )


def test_csv_parquet_and_sql_give_the_same_rows_and_version(frame: pd.DataFrame, tmp_path: Path) -> None:
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet", index=False)
    with sqlite3.connect(tmp_path / "d.db") as conn:
        frame.to_sql("customers", conn, index=False)
    from_csv = load_dataset(tmp_path / "d.csv")
    from_parquet = load_dataset("d.parquet", base_dir=tmp_path)
    from_sql = load_dataset(f"sqlite:///{tmp_path / 'd.db'}", query="SELECT * FROM customers")
    for ds in (from_csv, from_parquet, from_sql):
        assert ds.n_rows == 200 and ds.n_columns == 4
        pd.testing.assert_series_equal(ds.frame["age"], frame["age"], check_dtype=False)
        assert list(ds.frame["plan"]) == list(frame["plan"])
    assert from_csv.version == from_parquet.version == from_sql.version


def test_content_hash_changes_with_one_value_and_ignores_the_index(frame: pd.DataFrame) -> None:
    base = content_hash(frame)
    assert content_hash(frame.set_index(frame.index + 100)) == base
    changed = frame.copy()
    changed.loc[3, "income"] += 0.01
    assert content_hash(changed) != base
    renamed = frame.rename(columns={"age": "years"})
    assert content_hash(renamed) != base


def test_schema_records_kinds_domains_and_nulls(frame: pd.DataFrame) -> None:
    frame = frame.copy()
    frame.loc[0, "income"] = np.nan
    frame["note"] = ["the customer called about the invoice twice" + str(i) for i in range(200)]
    frame["signup"] = pd.date_range("2024-01-01", periods=200, freq="D")
    schema = infer_schema(frame)
    assert schema["age"].kind == "integer" and schema["age"].min >= 18 and schema["age"].max < 80
    assert schema["income"].kind == "numeric" and schema["income"].nullable
    assert schema["plan"].kind == "categorical" and schema["plan"].categories == ("basic", "pro", "team")
    assert schema["note"].kind == "text"
    assert schema["signup"].kind == "datetime"
    assert not schema["age"].nullable
    round_trip = type(schema).from_dict(schema.to_dict())
    assert round_trip == schema


def test_time_column_is_parsed_and_unparseable_values_are_kept_for_the_audit(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("when,y\n2024-01-01,1\n2024-01-02,0\nnot a date,1\n2024-01-04,0\n")
    ds = load_dataset(path, parse_dates=["when"])
    assert ds.schema["when"].kind == "datetime"
    assert ds.unparsed == {"when": ["not a date"]}


def test_from_frame_drops_the_index() -> None:
    ds = Dataset.from_frame(pd.DataFrame({"a": [1, 2]}, index=[5, 9]))
    assert list(ds.frame.index) == [0, 1]


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("empty.csv", b"", "file is empty"),
        ("ragged.csv", b"a,b,c\n1,2,3\n4,5,6,7\n", "ragged row at line 3: 4 fields where"),
        ("truncated.csv", b"a,b,c\n1,2,3\n4,5", "ragged row at line 3: 2 fields.*'4,5'"),
        ("latin1.csv", b"a,b\n1,caf\xe9\n", "not valid utf-8"),
        ("binary.csv", b"PK\x03\x04\x00\x00\x08\x00binary", "binary file"),
        ("dupes.csv", b"a,a,b\n1,2,3\n", "duplicate column names: 'a'"),
        ("header.csv", b"a,b\n", "header but no rows"),
        ("blank.csv", b",b\n1,2\n", "unnamed columns at positions 1"),
        ("data.xlsx", b"whatever", "unsupported file type '.xlsx'"),
    ],
)
def test_unusable_files_raise_one_clear_error(tmp_path: Path, name: str, content: bytes, match: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=match) as info:
        load_dataset(path)
    assert info.value.path == str(path)
    assert info.value.fix


def test_truncated_parquet(tmp_path: Path, frame: pd.DataFrame) -> None:
    frame.to_parquet(tmp_path / "full.parquet")
    data = (tmp_path / "full.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cannot be read as Parquet"):
        load_dataset(tmp_path / "cut.parquet")


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found") as info:
        load_dataset("nope.csv", base_dir=tmp_path)
    assert "nope.csv" in str(info.value)


def test_sql_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot connect or run the query"):
        load_dataset(f"sqlite:///{tmp_path}/missing/dir/x.db", query="SELECT 1")
    with sqlite3.connect(tmp_path / "d.db") as conn:
        conn.execute("CREATE TABLE t (a INTEGER)")
    with pytest.raises(DataError, match="no such table|cannot connect or run"):
        load_dataset(f"sqlite:///{tmp_path / 'd.db'}", query="SELECT * FROM nope")
    with pytest.raises(DataError, match="returned no rows"):
        load_dataset(f"sqlite:///{tmp_path / 'd.db'}", query="SELECT * FROM t")
    with pytest.raises(DataError, match="needs a query"):
        load_dataset(f"sqlite:///{tmp_path / 'd.db'}")


def test_sql_url_password_is_not_shown() -> None:
    with pytest.raises(DataError) as info:
        load_dataset("postgresql+nodriver://user:hunter2@127.0.0.1:1/db", query="SELECT 1")
    assert "hunter2" not in str(info.value)


def test_a_ragged_row_is_named_by_its_line_and_content(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    long_note = "a note with a comma, " + "x" * 300
    rows = ["id,note,amount", '1,"spans\ntwo lines",3.5', "2,plain,4.0", "", f"3,{long_note},5.0"]
    path.write_text("\n".join(rows) + "\n4,ok,6.0\n")
    match = "ragged row at line 6: 4 fields where the header has 3"
    with pytest.raises(DataError, match=match) as info:
        load_dataset(path)
    error = info.value
    assert error.path == str(path) and error.fields["line"] == 6
    text = str(error)
    assert str(path) in text and "'3,a note with a comma, xxx" in text
    assert "..." in text and "x" * 200 not in text  # the row is cut short
    assert "Quote values that contain the delimiter" in text


def test_an_unclosed_quote_is_named_by_the_line_it_opens_on(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('a,b,c\n1,2,3\n4,"five,6\n7,8,9\n10,11,12\n')
    with pytest.raises(DataError, match="line 3 \\(a quote opened there is never closed\\)"):
        load_dataset(path)
