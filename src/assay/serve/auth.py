"""API tokens of the server: created once, stored as hashes, checked in constant time.

A token is ``assay_`` followed by 43 URL-safe characters (32 random bytes from
:mod:`secrets`). The store keeps only its SHA-256, so a copy of the database does
not give access; the plaintext is shown once, by :func:`create_token`. Each token
has a unique name and scopes (:data:`SCOPES`). Creating and revoking write a
``token`` event to the audit trail.

The server checks tokens with a :class:`TokenVerifier`: it keeps the hashes of the
live tokens in memory and reloads them every few seconds, so a revocation takes
effect within ``reload_seconds`` without a database query per request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from assay.errors import ConfigError, NotFoundError
from assay.registry import ModelRegistry, current_user
from assay.store.database import as_utc, utcnow
from assay.store.tables import tokens

__all__ = [
    "SCOPES",
    "TOKEN_PREFIX",
    "TokenInfo",
    "TokenVerifier",
    "create_token",
    "hash_token",
    "list_tokens",
    "revoke_token",
]

#: What a token may do: call the prediction endpoints, send labels, administer.
SCOPES = ("predict", "explain", "feedback", "admin")

#: Every token starts with this, so secret scanners and people recognise it.
TOKEN_PREFIX = "assay_"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# far longer than any token this module makes; longer input is refused unhashed
_MAX_TOKEN_LENGTH = 256
# seconds between writes of last-used times: a write per request would cost more than it says
_LAST_USED_EVERY = 60.0


@dataclass(frozen=True)
class TokenInfo:
    """A token as the server and the CLI see it (never the secret or its hash).

    Attributes:
        name: the unique name (who or what uses it).
        scopes: what it may do, in the order of :data:`SCOPES`.
        created_at: when it was created (UTC).
        created_by: who created it.
        revoked: True once revoked (it then verifies as unknown).
        revoked_at: when it was revoked.
        last_used_at: when a server last accepted it (updated every few seconds).
    """

    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    created_by: str
    revoked: bool
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    def allows(self, scope: str) -> bool:
        """True if the token has ``scope`` (``admin`` allows everything)."""
        return scope in self.scopes or "admin" in self.scopes

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (timestamps as ISO strings)."""
        return {
            "name": self.name,
            "scopes": list(self.scopes),
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "revoked": self.revoked,
            "revoked_at": _iso(self.revoked_at),
            "last_used_at": _iso(self.last_used_at),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TokenInfo:
        """The inverse of :meth:`to_dict`."""
        return cls(
            name=data["name"],
            scopes=tuple(data["scopes"]),
            created_at=datetime.fromisoformat(data["created_at"]),
            created_by=data["created_by"],
            revoked=bool(data["revoked"]),
            revoked_at=_parse(data.get("revoked_at")),
            last_used_at=_parse(data.get("last_used_at")),
        )


def hash_token(token: str) -> str:
    """The SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(
    registry: ModelRegistry, name: str, scopes: Sequence[str], actor: str | None = None
) -> str:
    """Create the token ``name`` with ``scopes``; return its plaintext (shown only this once).

    Raises :class:`ConfigError` for an invalid or already used name and for an
    unknown scope.
    """
    _check_name(name)
    wanted = _check_scopes(scopes)
    actor = actor or current_user()
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    store = registry.store
    try:
        with store.transaction() as conn:
            exists = conn.execute(select(tokens.c.name).where(tokens.c.name == name)).first()
            if exists is not None:
                raise _duplicate(name)
            conn.execute(
                insert(tokens).values(
                    name=name,
                    token_hash=hash_token(token),
                    scopes=list(wanted),
                    created_at=utcnow(),
                    created_by=actor,
                    revoked_at=None,
                    last_used_at=None,
                )
            )
    except IntegrityError as exc:  # a concurrent creation of the same name won
        raise _duplicate(name) from exc
    try:
        registry.record_event(
            "token",
            actor=actor,
            details={"name": name, "op": "create", "scopes": list(wanted)},
        )
    except BaseException:
        # no token without its audit event
        with store.transaction() as conn:
            conn.execute(delete(tokens).where(tokens.c.name == name))
        raise
    return token


def revoke_token(registry: ModelRegistry, name: str, actor: str | None = None) -> None:
    """Revoke the token ``name`` (it stops verifying within the verifiers' reload interval).

    Revoking a revoked token changes nothing. An unknown name raises
    :class:`NotFoundError` listing the existing names.
    """
    actor = actor or current_user()
    now = utcnow()
    with registry.store.transaction() as conn:
        row = conn.execute(select(tokens.c.revoked_at).where(tokens.c.name == name)).first()
        if row is None:
            names = list(conn.execute(select(tokens.c.name).order_by(tokens.c.name)).scalars())
            raise NotFoundError(
                f"token '{name}' does not exist",
                where="tokens",
                expected="one of: " + ", ".join(names) if names else "an existing token",
                received=name,
                fix="List the tokens with `assay token list`.",
            )
        if row.revoked_at is not None:
            return
        conn.execute(update(tokens).where(tokens.c.name == name).values(revoked_at=now))
    registry.record_event("token", actor=actor, details={"name": name, "op": "revoke"})


def list_tokens(registry: ModelRegistry) -> list[TokenInfo]:
    """Every token (revoked ones too), by name."""
    with registry.store.connect() as conn:
        rows = conn.execute(select(tokens).order_by(tokens.c.name)).all()
    return [_info(row) for row in rows]


class TokenVerifier:
    """Checks presented tokens against the stored hashes; thread-safe.

    The live tokens are cached and reloaded when older than ``reload_seconds``
    (a revocation takes at most that long to apply); one request pays the reload
    while concurrent ones use the list they have. Reloads also record when each
    token was last accepted (to the minute). If the database cannot be read, the
    previous list stays in force and the error is kept in :attr:`last_error`.
    """

    def __init__(self, registry: ModelRegistry, *, reload_seconds: float = 2.0) -> None:
        self.registry = registry
        self.reload_seconds = float(reload_seconds)
        self.last_error: str | None = None
        self._lock = threading.Lock()  # one reload at a time
        self._used_lock = threading.Lock()
        self._live: tuple[tuple[str, TokenInfo], ...] = ()
        self._loaded_at: float | None = None
        self._used: dict[str, datetime] = {}
        self._used_written_at = float("-inf")

    def verify(self, token: str) -> TokenInfo | None:
        """The token's info if it is known and not revoked, else None."""
        if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_LENGTH:
            return None
        live = self._current()
        presented = hash_token(token)
        found: TokenInfo | None = None
        for stored, info in live:
            # compare against every hash, without stopping early
            if hmac.compare_digest(stored, presented):
                found = info
        if found is not None:
            with self._used_lock:
                self._used[found.name] = utcnow()
        return found

    def reload(self) -> None:
        """Read the live tokens now (and write last-used times when due)."""
        with self._lock:
            self._reload_locked()

    def _current(self) -> tuple[tuple[str, TokenInfo], ...]:
        loaded = self._loaded_at
        if loaded is None:
            with self._lock:
                if self._loaded_at is None:
                    self._reload_locked()
            return self._live
        due = time.monotonic() - loaded >= self.reload_seconds
        # when due, one caller reloads; the others go on with the list they have
        if due and self._lock.acquire(blocking=False):
            try:
                self._reload_locked()
            finally:
                self._lock.release()
        return self._live

    def _reload_locked(self) -> None:
        store = self.registry.store
        now = time.monotonic()
        write_used = bool(self._used) and now - self._used_written_at >= _LAST_USED_EVERY
        used: dict[str, datetime] = {}
        if write_used:
            with self._used_lock:
                used, self._used = self._used, {}
        try:
            if used:
                with store.transaction() as conn:
                    for name, at in used.items():
                        conn.execute(
                            update(tokens).where(tokens.c.name == name).values(last_used_at=at)
                        )
            with store.connect() as conn:
                rows = conn.execute(select(tokens).where(tokens.c.revoked_at.is_(None))).all()
            if used:
                self._used_written_at = now
        except SQLAlchemyError as exc:
            with self._used_lock:
                for name, at in used.items():
                    self._used.setdefault(name, at)
            self.last_error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            # keep serving with the previous list; retry after the next interval
            self._loaded_at = time.monotonic()
            return
        self._live = tuple((row.token_hash, _info(row)) for row in rows)
        self._loaded_at = time.monotonic()
        self.last_error = None


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(
            "invalid token name",
            key="name",
            expected="1-64 letters, digits, '_', '.' or '-', starting with a letter or digit",
            received=repr(name),
            fix="Name the token after who uses it, e.g. 'checkout-service'.",
        )


def _check_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    if isinstance(scopes, str):
        scopes = [scopes]
    given = list(scopes)
    unknown = [s for s in given if s not in SCOPES]
    if unknown or not given:
        raise ConfigError(
            "unknown token scope" if unknown else "a token needs at least one scope",
            key="scopes",
            expected="one or more of: " + ", ".join(SCOPES),
            received=", ".join(map(str, unknown)) if unknown else "no scope",
            fix="Pass valid scopes, e.g. --scope predict --scope feedback.",
        )
    return tuple(s for s in SCOPES if s in given)


def _duplicate(name: str) -> ConfigError:
    return ConfigError(
        f"a token named '{name}' already exists",
        key="name",
        expected="a name no token has (revoked ones included)",
        received=name,
        fix=f"Choose another name, or revoke '{name}' and create the new token under a "
        "new name (names stay unique to keep the audit trail unambiguous).",
    )


def _info(record: Row[Any]) -> TokenInfo:
    row = record._mapping
    return TokenInfo(
        name=row["name"],
        scopes=tuple(row["scopes"]),
        created_at=as_utc(row["created_at"]),
        created_by=row["created_by"],
        revoked=row["revoked_at"] is not None,
        revoked_at=as_utc(row["revoked_at"]),
        last_used_at=as_utc(row["last_used_at"]),
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None
