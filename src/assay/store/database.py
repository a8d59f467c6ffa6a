"""The project store: one SQL database (SQLite by default, PostgreSQL by URL) plus artifacts.

``Store.open(root)`` keeps everything in ``root/.assay/``: the database ``assay.db``
and the content-addressed ``artifacts/`` folder. The schema is created or upgraded on
open; a database written by a newer assay is refused.

SQLite connections run in WAL mode (readers do not block the writer) with
``synchronous=NORMAL``, foreign keys enforced and a busy timeout. Write transactions
(:meth:`Store.transaction`) start with ``BEGIN IMMEDIATE`` so concurrent writers
queue on the lock instead of failing half-way; on PostgreSQL, code that must
serialise locks a row with ``SELECT ... FOR UPDATE``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self, overload

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from assay.errors import ConfigError, StoreError
from assay.store.artifacts import ArtifactStore
from assay.store.migrate import current_revisions, ensure_schema
from assay.store.serialize import dumps

__all__ = ["ARTIFACTS_DIR", "DB_NAME", "STATE_DIR", "Store", "as_utc", "make_engine", "utcnow"]

STATE_DIR = ".assay"
DB_NAME = "assay.db"
ARTIFACTS_DIR = "artifacts"
_WRITE = "assay_write"
# any fixed number: the key of the lock that serialises concurrent migrations
_PG_MIGRATION_LOCK = 7_215_470_511


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (what the store writes)."""
    return datetime.now(UTC)


@overload
def as_utc(value: datetime) -> datetime: ...


@overload
def as_utc(value: None) -> None: ...


def as_utc(value: datetime | None) -> datetime | None:
    """A timestamp read back from the database, as aware UTC (SQLite returns naive values)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def make_engine(url: str | URL, *, busy_timeout: float = 30.0) -> Engine:
    """An engine for the store database, with the SQLite settings the store relies on."""
    parsed = _parse_url(url)
    kwargs: dict[str, Any] = {"json_serializer": dumps}
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite:
        kwargs["connect_args"] = {"timeout": busy_timeout, "check_same_thread": False}
        if _is_memory(parsed):
            kwargs["poolclass"] = StaticPool
    try:
        engine = create_engine(parsed, **kwargs)
    except NoSuchModuleError:
        raise _url_error(
            f"SQLAlchemy has no driver '{parsed.get_driver_name()}' "
            f"for {parsed.get_backend_name()}",
            parsed,
        ) from None
    except ImportError as exc:
        raise ConfigError(
            f"the database driver '{exc.name or parsed.get_driver_name()}' is not installed",
            key="store.url",
            received=_display(parsed),
            fix="Install it with: pip install 'assay[postgres]', or name an installed driver "
            "(postgresql+psycopg://...)."
            if parsed.get_backend_name() == "postgresql"
            else "Use sqlite:///path.db: Python's own SQLite driver.",
        ) from None
    if sqlite:
        _configure_sqlite(engine, busy_timeout)
    return engine


def _configure_sqlite(engine: Engine, busy_timeout: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # the driver's own implicit BEGIN skips DDL and SELECT; the store emits BEGIN itself
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class Store:
    """The database and the artifact store of one project.

    Open it with :meth:`open`; use it as a context manager or call :meth:`close`.

    Attributes:
        engine: the SQLAlchemy engine (use :meth:`connect` / :meth:`transaction`).
        artifacts: the :class:`ArtifactStore` of models and reports.
        root: the project folder, when the store was opened from one.
        revision: the schema revision of the database.
    """

    def __init__(
        self,
        engine: Engine,
        artifacts: ArtifactStore,
        *,
        root: Path | None,
        revision: str,
        busy_timeout: float,
    ) -> None:
        self.engine = engine
        self.artifacts = artifacts
        self.root = root
        self.revision = revision
        self._busy_timeout = busy_timeout

    @classmethod
    def open(
        cls,
        root: str | Path | None = None,
        url: str | None = None,
        artifacts: str | None = None,
        *,
        busy_timeout: float = 30.0,
    ) -> Store:
        """Open (create and migrate on first use) the store of a project.

        Args:
            root: the project folder; default database ``root/.assay/assay.db`` and
                artifacts ``root/.assay/artifacts``. Default: the working folder,
                unless ``url`` is given.
            url: a SQLAlchemy database URL (``sqlite:///path.db``,
                ``postgresql+psycopg://...``); relative SQLite paths are read from ``root``.
            artifacts: the artifact folder (or ``file://`` URL); relative to ``root``.
            busy_timeout: seconds a writer waits for the SQLite lock before failing.
        """
        root_path = Path(root).resolve() if root is not None else None
        if url is None:
            root_path = root_path or Path.cwd().resolve()
            db_path = root_path / STATE_DIR / DB_NAME
            db_path.parent.mkdir(parents=True, exist_ok=True)
            parsed = URL.create("sqlite", database=str(db_path))
        else:
            parsed = _parse_url(url)
            if parsed.get_backend_name() == "sqlite" and not _is_memory(parsed):
                db_path = Path(parsed.database or "")
                if not db_path.is_absolute():
                    db_path = (root_path or Path.cwd()) / db_path
                db_path.parent.mkdir(parents=True, exist_ok=True)
                parsed = parsed.set(database=str(db_path.resolve()))
        artifact_store = ArtifactStore(_artifacts_location(parsed, root_path, artifacts))
        engine = make_engine(parsed, busy_timeout=busy_timeout)
        where = _display(parsed)
        try:
            with engine.connect() as conn:
                conn.execution_options(**{_WRITE: True})
                with conn.begin():
                    if conn.dialect.name == "postgresql":
                        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
                    revision = ensure_schema(conn, where=where)
        except StoreError:
            engine.dispose()
            raise
        except SQLAlchemyError as exc:
            engine.dispose()
            raise StoreError(
                "the store database cannot be opened",
                where=where,
                expected="a database assay can read and write",
                received=str(getattr(exc, "orig", None) or exc).splitlines()[0],
                fix="Check store.url and the file's permissions, or move the file away "
                "to start a new store.",
            ) from exc
        return cls(
            engine, artifact_store, root=root_path, revision=revision, busy_timeout=busy_timeout
        )

    @property
    def url(self) -> str:
        """The database URL with any password hidden (safe to print)."""
        return _display(self.engine.url)

    @property
    def dialect(self) -> str:
        """The database kind: ``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection for reading (commit yourself if you write)."""
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction: committed on success, rolled back on any exception."""
        with self.engine.connect() as conn:
            conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    def schema_revisions(self) -> tuple[str, ...]:
        """The schema revisions recorded in the database now."""
        with self.connect() as conn:
            return current_revisions(conn)

    def reopen(self) -> Store:
        """A new :class:`Store` on the same database and artifacts (runs migrations again).

        An in-memory SQLite database is not shared: reopening it gives an empty one.
        """
        return Store.open(
            root=self.root,
            url=self.engine.url.render_as_string(hide_password=False),
            artifacts=str(self.artifacts.root),
            busy_timeout=self._busy_timeout,
        )

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store(url={self.url!r}, artifacts={str(self.artifacts.root)!r})"


#: the databases the store is built and tested for
_BACKENDS = ("sqlite", "postgresql")
_URL_EXAMPLE = (
    "a database URL such as sqlite:///.assay/assay.db or postgresql+psycopg://user@host/db"
)


def _parse_url(url: str | URL) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError:
        # what follows '@' only: the part before it may hold a password
        shown = str(url).rsplit("@", 1)[-1]
        raise ConfigError(
            "the store URL cannot be parsed",
            key="store.url",
            expected=_URL_EXAMPLE,
            received=shown[:80],
            fix="Correct store.url in assay.yaml.",
        ) from None
    if parsed.get_backend_name() not in _BACKENDS:
        raise _url_error(
            "the store runs on SQLite or PostgreSQL (sqlite:// or postgresql://), "
            f"not '{parsed.get_backend_name()[:40]}'",
            parsed,
        )
    return parsed


def _url_error(what: str, url: URL) -> ConfigError:
    return ConfigError(
        what,
        key="store.url",
        expected=_URL_EXAMPLE,
        received=_display(url)[:120],
        fix="Correct store.url in assay.yaml, or remove it to keep the store in .assay/.",
    )


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:")


def _display(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def _artifacts_location(url: URL, root: Path | None, artifacts: str | None) -> str | Path:
    if artifacts is not None:
        if "://" in artifacts:
            return artifacts
        path = Path(artifacts)
        return path if path.is_absolute() or root is None else root / path
    if root is not None:
        return root / STATE_DIR / ARTIFACTS_DIR
    if url.get_backend_name() == "sqlite" and not _is_memory(url):
        return Path(url.database or "").parent / ARTIFACTS_DIR
    raise StoreError(
        "the store has no folder for artifacts",
        where="store.artifacts",
        expected="a folder when the database is not a local SQLite file",
        received=_display(url),
        fix="Set store.artifacts in assay.yaml (or pass artifacts=...).",
    )
