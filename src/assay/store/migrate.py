"""Schema revisions of the store, run programmatically with Alembic (no alembic.ini needed).

The revisions live in ``assay/store/migrations/versions`` inside the package. The
store calls :func:`ensure_schema` on every open: a new database is created at the
head revision, an older one is upgraded, and one whose revision this code does not
know (written by a newer assay) is refused.

Adding a revision: :func:`new_revision` (see :mod:`assay.store.migrations`).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect

from assay.errors import StoreError
from assay.store.tables import metadata

__all__ = [
    "MIGRATIONS_DIR",
    "alembic_config",
    "current_revisions",
    "ensure_schema",
    "head_revision",
    "new_revision",
]

#: The Alembic script directory shipped inside the package.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(
    *,
    connection: Connection | None = None,
    url: str | None = None,
    script_location: Path | None = None,
) -> Config:
    """An Alembic :class:`Config` built in code, pointing at the packaged revisions.

    Pass ``connection`` to run commands on it (inside its transaction), or ``url``
    for commands that connect by themselves (``alembic.command.upgrade(cfg, "head")``).
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location or MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    # file names must be importable module names (mypy and linters read them)
    cfg.set_main_option("file_template", "v%%(rev)s_%%(slug)s")
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _script(script_location: Path | None = None) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(script_location=script_location))


def head_revision(script_location: Path | None = None) -> str:
    """The newest revision this code knows (one head: the history is kept linear)."""
    heads = _script(script_location).get_heads()
    if len(heads) != 1:
        raise StoreError(
            "the store migrations have several heads",
            where=str(script_location or MIGRATIONS_DIR),
            expected="one linear history",
            received=", ".join(sorted(heads)),
            fix="Chain the new revision's down_revision to the previous head.",
        )
    return heads[0]


def current_revisions(connection: Connection) -> tuple[str, ...]:
    """The revisions recorded in the database (empty for a database never migrated)."""
    return tuple(MigrationContext.configure(connection).get_current_heads())


def ensure_schema(
    connection: Connection, *, where: str, script_location: Path | None = None
) -> str:
    """Create or upgrade the schema on ``connection`` (inside its transaction); return the head.

    Raises :class:`StoreError` when the database carries a revision this code does
    not know, or holds store tables without any revision record.
    """
    script = _script(script_location)
    head = head_revision(script_location)
    known = {rev.revision for rev in script.walk_revisions()}
    current = current_revisions(connection)
    unknown = [rev for rev in current if rev not in known]
    if unknown:
        raise StoreError(
            f"the database schema revision {', '.join(unknown)} is newer than this version "
            "of assay knows",
            where=where,
            expected=f"revision {head} or older",
            received=", ".join(unknown),
            fix="Upgrade assay (pip install -U assay) or point store.url at another database.",
        )
    if not current:
        present = set(inspect(connection).get_table_names()) & set(metadata.tables)
        if present:
            raise StoreError(
                "the database holds store tables but no schema revision; it was not "
                "created by assay",
                where=where,
                expected="an empty database or one created by assay",
                received=", ".join(sorted(present)),
                fix="Point store.url at an empty database.",
            )
    if current != (head,):
        command.upgrade(
            alembic_config(connection=connection, script_location=script_location), "head"
        )
    return head


def new_revision(message: str, *, script_location: Path | None = None) -> Path:
    """Write the next revision file (``v0002_<slug>.py``) chained to the head; return its path.

    A development helper: fill in ``upgrade()``/``downgrade()`` of the new file and
    mirror the change in :mod:`assay.store.tables`.
    """
    if not message.strip():
        raise StoreError(
            "a revision needs a message",
            expected="a short description such as 'prediction log'",
            received=repr(message),
        )
    head = head_revision(script_location)
    number = int(head) + 1 if head.isdigit() else None
    if number is None:
        raise StoreError(
            "the head revision id is not a number",
            where=str(script_location or MIGRATIONS_DIR),
            expected="numbered revisions (0001, 0002, ...)",
            received=head,
        )
    rev_id = f"{number:04d}"
    cfg = alembic_config(script_location=script_location)
    script = command.revision(cfg, message=message, rev_id=rev_id)
    if script is None or isinstance(script, list):
        raise StoreError("alembic did not write a single revision file", received=repr(script))
    return Path(script.path)
