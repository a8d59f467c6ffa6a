"""Schema revisions: the packaged head, adding a revision, upgrading an old store, downgrading."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect

from assay.errors import StoreError
from assay.store import Store, alembic_config, head_revision, make_engine, new_revision
from assay.store.migrate import MIGRATIONS_DIR, current_revisions, ensure_schema
from assay.store.tables import metadata

NEW_TABLE = '''
def upgrade() -> None:
    """prediction log: apply."""
    op.create_table(
        "prediction_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_prediction_log"),
    )


def downgrade() -> None:
    """prediction log: revert."""
    op.drop_table("prediction_log")
'''


@pytest.fixture
def scripts(tmp_path: Path) -> Path:
    """A private copy of the packaged revisions that a test may add to."""
    target = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def test_packaged_head_is_the_labelling_revision() -> None:
    assert head_revision() == "0006"
    assert (MIGRATIONS_DIR / "versions" / "v0006_labelling.py").is_file()


def test_new_revision_is_numbered_and_chained(scripts: Path) -> None:
    path = new_revision("prediction log", script_location=scripts)
    assert path.name == "v0007_prediction_log.py"
    source = path.read_text()
    assert "revision: str = '0007'" in source
    assert "down_revision: str | Sequence[str] | None = '0006'" in source
    assert head_revision(scripts) == "0007"
    with pytest.raises(StoreError, match="a revision needs a message"):
        new_revision("  ", script_location=scripts)


def test_an_old_store_is_upgraded_and_then_refused_by_older_code(
    scripts: Path, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    Store.open(project).close()  # created at the packaged head, 0006
    path = new_revision("prediction log", script_location=scripts)
    body = path.read_text()
    path.write_text(body[: body.index("\ndef upgrade")] + NEW_TABLE)

    engine = make_engine(f"sqlite:///{project / '.assay' / 'assay.db'}")
    try:
        with engine.connect() as conn:
            with conn.begin():
                assert ensure_schema(conn, where="test", script_location=scripts) == "0007"
            assert current_revisions(conn) == ("0007",)
            assert "prediction_log" in inspect(conn).get_table_names()
    finally:
        engine.dispose()
    with pytest.raises(StoreError, match="revision 0007 is newer.*Upgrade assay"):
        Store.open(project)


def test_alembic_commands_run_from_a_config_built_in_code(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'direct.db'}"
    cfg = alembic_config(url=url)
    command.upgrade(cfg, "head")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            assert set(metadata.tables) <= set(inspect(conn).get_table_names())
        command.downgrade(cfg, "base")
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) & set(metadata.tables) == set()
    finally:
        engine.dispose()
    with Store.open(url=url) as store:  # a downgraded database upgrades again on open
        assert store.schema_revisions() == ("0006",)


def test_offline_mode_prints_portable_sql(capsys: pytest.CaptureFixture[str]) -> None:
    command.upgrade(alembic_config(url="postgresql://u@localhost/db"), "head", sql=True)
    sql = capsys.readouterr().out
    assert "CREATE TABLE model_versions" in sql
    assert "JSON" in sql and "TIMESTAMP WITH TIME ZONE" in sql


def test_a_store_at_0005_gains_the_labelling_tables_and_keeps_its_data(tmp_path: Path) -> None:
    from assay.registry import ModelRegistry
    from assay.testing.stores import register_example

    project = tmp_path / "project"
    with Store.open(project) as store:
        register_example(ModelRegistry(store))
    url = f"sqlite:///{project / '.assay' / 'assay.db'}"
    command.downgrade(alembic_config(url=url), "0005")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            assert current_revisions(conn) == ("0005",)
            assert "label_versions" not in inspect(conn).get_table_names()
    finally:
        engine.dispose()
    with Store.open(project) as store:
        assert store.schema_revisions() == ("0006",)
        with store.connect() as conn:
            tables = set(inspect(conn).get_table_names())
        assert {"annotation_imports", "annotations", "label_versions"} <= tables
        assert [v.version for v in ModelRegistry(store).list()] == [1]
