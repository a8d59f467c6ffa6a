"""Store.open: layout, SQLite settings, real transactions, and the errors of unusable databases."""

from __future__ import annotations

import importlib.util
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import insert, inspect, text
from sqlalchemy.exc import IntegrityError

from assay.errors import ConfigError, StoreError
from assay.registry import ModelRegistry
from assay.store import Store
from assay.store.database import as_utc, utcnow
from assay.store.tables import model_versions
from assay.testing.stores import register_example


def test_open_creates_the_project_layout(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        assert (tmp_path / ".assay" / "assay.db").is_file()
        assert store.artifacts.root == (tmp_path / ".assay" / "artifacts").resolve()
        assert store.dialect == "sqlite"
        assert store.root == tmp_path.resolve()


def test_sqlite_connections_use_wal_normal_sync_foreign_keys_and_busy_timeout(
    tmp_path: Path,
) -> None:
    with Store.open(tmp_path, busy_timeout=2.5) as store, store.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 2500


def test_foreign_keys_are_enforced(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        row = {
            "version": 1,
            "run_id": 999,
            "created_at": utcnow(),
            "created_by": "x",
            "task": "binary",
            "family": "f",
            "params": {},
            "metrics": {},
            "data_version": "d",
            "config": {},
            "code_version": "c",
            "artifact_digest": "sha256:" + "0" * 64,
            "artifact_size": 1,
            "input_schema": {},
            "lineage": {},
            "status": "registered",
        }
        with pytest.raises(IntegrityError, match="FOREIGN KEY"), store.transaction() as conn:
            conn.execute(insert(model_versions).values(**row))


def test_ddl_is_transactional(tmp_path: Path) -> None:
    """The store emits BEGIN itself, so a failed migration step leaves no half-made table."""
    with Store.open(tmp_path) as store:
        with pytest.raises(RuntimeError, match="stop"), store.transaction() as conn:
            conn.execute(text("CREATE TABLE scratch (id INTEGER)"))
            raise RuntimeError("stop")
        with store.connect() as conn:
            assert "scratch" not in inspect(conn).get_table_names()


def test_timestamps_read_back_in_utc(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        version = register_example(ModelRegistry(store))
        assert version.created_at.utcoffset() is not None
        assert abs((utcnow() - version.created_at).total_seconds()) < 3600
    naive = as_utc(utcnow().replace(tzinfo=None))
    assert naive is not None and naive.tzinfo is not None


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / ".assay").mkdir()
    (tmp_path / ".assay" / "assay.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot be opened.*file is not a database"):
        Store.open(tmp_path)


def test_store_tables_without_a_revision_are_refused(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY)")
    with pytest.raises(StoreError, match="holds store tables but no schema revision.*runs"):
        Store.open(url=f"sqlite:///{db}")


def test_relative_sqlite_url_is_read_from_the_root(tmp_path: Path) -> None:
    with Store.open(tmp_path, url="sqlite:///state/custom.db") as store:
        assert (tmp_path / "state" / "custom.db").is_file()
        assert store.artifacts.root == (tmp_path / ".assay" / "artifacts").resolve()


def test_url_alone_keeps_artifacts_beside_the_database(tmp_path: Path) -> None:
    with Store.open(url=f"sqlite:///{tmp_path / 'db' / 'x.db'}") as store:
        assert store.artifacts.root == (tmp_path / "db" / "artifacts").resolve()


def test_in_memory_database_needs_an_artifact_folder(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no folder for artifacts.*Set store.artifacts"):
        Store.open(url="sqlite://")
    with Store.open(url="sqlite://", artifacts=str(tmp_path / "a")) as store:
        assert register_example(ModelRegistry(store)).version == 1
        assert ModelRegistry(store).get(1).family == "logistic"


def test_unparsable_url_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="store.url: the store URL cannot be parsed") as info:
        Store.open(tmp_path, url="user:secret@not a url")
    assert info.value.key == "store.url" and info.value.exit_code == 2
    assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("foo://bar/db", "the store runs on SQLite or PostgreSQL .*not 'foo'"),
        ("mysql://u:secret@h/db", "the store runs on SQLite or PostgreSQL .*not 'mysql'"),
        ("postgres://u:secret@h/db", "not 'postgres'"),
        ("postgresql+nodriver://u:secret@h/db", "no driver 'nodriver' for postgresql"),
        ("postgresql+psycopg2://u:secret@h/db", "driver 'psycopg2' is not installed.*pip install "
         "'assay\\[postgres\\]'"),
        ("sqlite+pysqlcipher:///x.db", "driver 'pysqlcipher3' is not installed.*Use sqlite:///"),
    ],
)
def test_unusable_url_is_a_config_error_naming_the_key(
    tmp_path: Path, url: str, match: str
) -> None:
    if "psycopg2" in url and importlib.util.find_spec("psycopg2") is not None:
        pytest.skip("psycopg2 is installed")
    with pytest.raises(ConfigError, match=match) as info:
        Store.open(tmp_path, url=url)
    assert info.value.key == "store.url" and info.value.exit_code == 2
    assert str(info.value).startswith("store.url: ") and "secret" not in str(info.value)


@pytest.mark.skipif(
    importlib.util.find_spec("psycopg") is not None, reason="the PostgreSQL driver is installed"
)
def test_postgres_without_driver_names_the_extra(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"psycopg.*pip install 'assay\[postgres\]'"):
        Store.open(url="postgresql+psycopg://u:secret@localhost/db", artifacts=str(tmp_path))


def test_object_storage_artifacts_are_refused_for_now(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="store.artifacts: artifact storage 's3://'"):
        Store.open(tmp_path, artifacts="s3://bucket/prefix")
