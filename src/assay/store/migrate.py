"""Schema revisions of the store, run programmatically with Alembic (no alembic.ini needed).

The revisions live in ``assay/store/migrations/versions`` inside the package. The
store calls :func:`ensure_schema` on every open: a new database is created at the
head revision, an older one is upgraded, and one whose revision this code does not
know (written by a newer assay) is refused.

Adding a revision: :func:`new_revision` (see :mod:`assay.store.migrations`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from assay.errors import StoreError
from assay.store.tables import metadata

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

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
    from alembic.config import Config

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
    from alembic.script import ScriptDirectory

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
    from alembic.runtime.migration import MigrationContext

    return tuple(MigrationContext.configure(connection).get_current_heads())


def ensure_schema(
    connection: Connection, *, where: str, script_location: Path | None = None
) -> str:
    """Create or upgrade the schema on ``connection`` (inside its transaction); return the head.

    Raises :class:`StoreError` when the database carries a revision this code does
    not know, or holds store tables without any revision record.
    """
    if script_location is None:
        settled = _settled_head(connection)
        if settled is not None:
            return settled
    from alembic import command

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


_REVISION_FILE = re.compile(r"v(\d{4})_\w+\.py")


def _settled_head(connection: Connection) -> str | None:
    """The head revision when the database already records it, else None.

    Every open of the store asks this first: it reads the recorded revision with one query
    and takes the head from the packaged revision files' names (``v0003_monitoring.py`` is
    revision ``0003``, the template :func:`new_revision` writes), so a store at head opens
    without importing Alembic. Anything else goes the full way through Alembic.
    """
    numbers = [
        match.group(1)
        for path in (MIGRATIONS_DIR / "versions").glob("v*.py")
        if (match := _REVISION_FILE.fullmatch(path.name))
    ]
    if not numbers:
        return None
    head = max(numbers)
    try:
        if not inspect(connection).has_table("alembic_version"):
            return None
        rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except SQLAlchemyError:
        return None
    return head if [row[0] for row in rows] == [head] else None


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
    from alembic import command

    script = command.revision(cfg, message=message, rev_id=rev_id)
    if script is None or isinstance(script, list):
        raise StoreError("alembic did not write a single revision file", received=repr(script))
    return Path(script.path)
