"""The one exception tree of assay.

Every error a user can cause carries four parts: *where* (a file, key path or
column), *what was expected*, *what was received* and *what to do*. The CLI
renders them on one line and exits 2; the server renders them as a 4xx body.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AssayError",
    "ConfigError",
    "DataError",
    "LeakageError",
    "GateFailed",
    "StoreError",
    "IntegrityError",
    "NotFoundError",
    "MissingDependencyError",
]


class AssayError(Exception):
    """Base of every error assay raises on purpose.

    Attributes:
        where: the file, key path (``split.gap``) or column the error is about.
        expected: what would have been valid.
        received: what was found instead.
        fix: the action that resolves it.
        exit_code: the CLI exit code (2 = unusable input, 1 = a check failed).
    """

    exit_code: int = 2

    def __init__(
        self,
        what: str,
        *,
        where: str | None = None,
        expected: str | None = None,
        received: Any = None,
        fix: str | None = None,
        **fields: Any,
    ) -> None:
        self.what = what
        self.where = where
        self.expected = expected
        self.received = received
        self.fix = fix
        self.fields = fields
        super().__init__(self.render())

    def render(self) -> str:
        """One line: ``where: what (expected ..., got ...). fix``."""
        text = f"{self.where}: {self.what}" if self.where else self.what
        detail = []
        if self.expected is not None:
            detail.append(f"expected {self.expected}")
        if self.received is not None:
            detail.append(f"got {_short(self.received)}")
        if detail:
            text += " (" + ", ".join(detail) + ")"
        if self.fix:
            text = text.rstrip(".") + ". " + self.fix
        return text

    def to_dict(self) -> dict[str, Any]:
        """The structured form used by ``--json`` output and HTTP error bodies."""
        body: dict[str, Any] = {"error": type(self).__name__, "message": self.render()}
        for name in ("where", "expected", "fix"):
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        if self.received is not None:
            body["received"] = _short(self.received)
        body.update({k: v for k, v in self.fields.items() if v is not None})
        return body


class ConfigError(AssayError):
    """assay.yaml (or a CLI option standing in for it) is invalid; ``key`` is the key path."""

    def __init__(self, what: str, *, key: str | None = None, **kw: Any) -> None:
        kw.setdefault("where", key)
        super().__init__(what, key=key, **kw)
        self.key = key


class DataError(AssayError):
    """A data file, query or column is unusable; ``path`` and ``column`` say which."""

    def __init__(
        self, what: str, *, path: str | None = None, column: str | None = None, **kw: Any
    ) -> None:
        if "where" not in kw:
            parts = [p for p in (path, f"column '{column}'" if column else None) if p]
            kw["where"] = ", ".join(parts) or None
        super().__init__(what, path=path, column=column, **kw)
        self.path = path
        self.column = column


class LeakageError(DataError):
    """Information from outside the training rows would reach the model."""


class StoreError(AssayError):
    """The project store (database or artifacts) is unreachable or inconsistent."""


class IntegrityError(StoreError):
    """A stored artifact failed verification (its hash or its signature), or the signing key
    is missing or unsafe: the artifact is not loaded."""


class NotFoundError(AssayError):
    """A named thing (model version, alias, report) does not exist in the store."""


class GateFailed(AssayError):
    """A gate, acceptance criterion or blocking finding failed; the CLI exits 1."""

    exit_code = 1


class MissingDependencyError(AssayError):
    """An optional dependency is not installed; the message names the pip command."""

    def __init__(self, package: str, extra: str | None) -> None:
        if extra is None:  # a core dependency that is missing from a broken install
            super().__init__(
                f"assay needs the package '{package}', which is not installed",
                fix="Reinstall assay with its dependencies: pip install --force-reinstall assay",
            )
        else:
            super().__init__(
                f"this feature needs the optional package '{package}'",
                fix=f"Install it with: pip install 'assay[{extra}]'",
            )
        self.package = package
        self.extra = extra


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
