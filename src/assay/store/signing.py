"""The signing key: the trust root of model artifacts.

A model artifact is a pickle, and unpickling runs code chosen by whoever wrote the
bytes. The recorded SHA-256 lives in the same database as everything else, so it
catches corruption but not a writer: anyone who can write the database and the
artifact folder can store a new pickle under its own hash. assay therefore signs
every model artifact with HMAC-SHA256 under a key kept *outside* the store, and
refuses to unpickle bytes whose signature does not verify. Writers of the store
who do not hold the key cannot get code executed.

Where the key comes from, first match wins:

1. ``$ASSAY_SIGNING_KEY``: the key itself (at least 32 characters), for servers
   and CI that receive secrets through the environment;
2. ``$ASSAY_KEY_FILE``: a key file;
3. ``$XDG_CONFIG_HOME/assay/signing.key`` (default ``~/.config/assay/signing.key``).

A key file must not be readable or writable by group or others (``chmod 600``).
When no key exists yet, the first registration creates the default file with 32
random bytes and mode 0600, so a new project works out of the box; a machine that
only loads models (a server, a batch job) needs the same key, copied or passed in
the environment.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from assay.errors import IntegrityError, StoreError

__all__ = [
    "KEY_ENV",
    "KEY_FILE_ENV",
    "MIN_KEY_CHARS",
    "SigningKey",
    "default_key_file",
    "signing_key",
]

#: The environment variable holding the key itself.
KEY_ENV = "ASSAY_SIGNING_KEY"
#: The environment variable naming a key file.
KEY_FILE_ENV = "ASSAY_KEY_FILE"
#: The shortest key accepted (a generated key has 64 hex characters).
MIN_KEY_CHARS = 32
# binds a MAC to its purpose, so a MAC made for something else never verifies here
_CONTEXT = b"assay model artifact v1\n"


@dataclass(frozen=True)
class SigningKey:
    """A loaded HMAC key.

    Attributes:
        secret: the key bytes (never printed).
        source: where it came from (the variable name or the file path), for messages.
        key_id: a short public fingerprint of the key, to tell keys apart in messages.
    """

    secret: bytes
    source: str
    key_id: str

    def __repr__(self) -> str:
        return f"SigningKey(source={self.source!r}, key_id={self.key_id!r})"

    def sign(self, digest: str) -> str:
        """The HMAC-SHA256 (hex) of an artifact digest; the digest binds the bytes."""
        return hmac.new(self.secret, _CONTEXT + digest.encode("ascii"), hashlib.sha256).hexdigest()

    def verifies(self, digest: str, mac: str) -> bool:
        """True when ``mac`` is this key's signature of ``digest`` (constant-time compare)."""
        return hmac.compare_digest(self.sign(digest), mac)


def default_key_file() -> Path:
    """The key file used when ``$ASSAY_SIGNING_KEY`` is unset: ``$ASSAY_KEY_FILE`` or the
    user's config folder."""
    named = os.environ.get(KEY_FILE_ENV, "").strip()
    if named:
        return Path(named).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME", "").strip()
    base = Path(config) if config else Path.home() / ".config"
    return base / "assay" / "signing.key"


def signing_key(*, create: bool = False) -> SigningKey:
    """The signing key of this machine.

    Args:
        create: create the default key file when there is no key (registration does;
            loading does not, since a new key could not verify older artifacts anyway).

    Raises:
        IntegrityError: there is no key (and ``create`` is False), or the key is too
            short, or the key file is readable by group or others.
    """
    text = os.environ.get(KEY_ENV)
    if text is not None and text.strip():
        return _from_text(text.strip(), KEY_ENV)
    path = default_key_file()
    if not path.exists():
        if not create:
            raise IntegrityError(
                "there is no signing key, so no model artifact can be verified",
                where=str(path),
                expected=f"the key that signed the models: ${KEY_ENV} or a key file",
                received="no key",
                fix=f"Copy the key file from the machine that registered the models to {path} "
                f"(chmod 600), or set ${KEY_ENV} or ${KEY_FILE_ENV}.",
            )
        _create_key_file(path)
    return _from_text(_read_key_file(path), str(path))


def _from_text(text: str, source: str) -> SigningKey:
    if len(text) < MIN_KEY_CHARS:
        raise IntegrityError(
            "the signing key is too short",
            where=source,
            expected=f"at least {MIN_KEY_CHARS} characters",
            received=f"{len(text)} characters",
            fix="Use a long random key, e.g. `python -c 'import secrets; "
            "print(secrets.token_hex(32))'`.",
        )
    secret = text.encode("utf-8")
    key_id = hashlib.sha256(b"assay key id\n" + secret).hexdigest()[:12]
    return SigningKey(secret=secret, source=source, key_id=key_id)


def _read_key_file(path: Path) -> str:
    try:
        info = path.stat()
        if os.name == "posix" and info.st_mode & 0o077:
            raise IntegrityError(
                "the signing key file is accessible to group or others",
                where=str(path),
                expected="mode 0600 (owner only)",
                received=f"mode {stat.S_IMODE(info.st_mode):04o}",
                fix=f"Run `chmod 600 {path}`; if others could read it, replace the key and "
                "re-register the models.",
            )
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise StoreError(
            "the signing key file cannot be read",
            where=str(path),
            received=f"{type(exc).__name__}: {exc.strerror or exc}",
            fix="Check the file's owner and permissions.",
        ) from exc


def _create_key_file(path: Path) -> None:
    """Write a new random key with mode 0600; a key another process created first wins."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".signing-")  # mkstemp: mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(secrets.token_hex(32) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            # link, unlike replace, never overwrites: a key that signed artifacts is kept
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as exc:
        raise StoreError(
            "the signing key file cannot be created",
            where=str(path),
            received=f"{type(exc).__name__}: {exc.strerror or exc}",
            fix=f"Create the folder with write access, or set ${KEY_FILE_ENV} to a writable "
            f"path, or set ${KEY_ENV}.",
        ) from exc
