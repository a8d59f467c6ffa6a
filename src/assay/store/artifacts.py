"""Content-addressed artifact files: models, reports and data snapshots.

An artifact is named by the SHA-256 of its bytes (``sha256:<hex>``) and stored at
``<root>/<hex[:2]>/<hex[2:]>``. Writes are atomic (a temporary file in the same
folder, then ``os.replace``), so a reader never sees half a file, and equal content
is stored once. Every read re-hashes the bytes: a file changed on disk is refused,
and a model is unpickled only after its bytes match the digest the store recorded.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlparse

from assay.errors import NotFoundError, StoreError
from assay.store.serialize import dumps

__all__ = ["DIGEST_PREFIX", "PICKLE_PROTOCOL", "ArtifactStore", "digest_of"]

DIGEST_PREFIX = "sha256:"
#: Protocol 5 keeps large NumPy buffers compact (PEP 574).
PICKLE_PROTOCOL = 5
_CHUNK = 1 << 20
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def digest_of(data: bytes) -> str:
    """The artifact name of ``data``: ``sha256:<hex>``."""
    return DIGEST_PREFIX + hashlib.sha256(data).hexdigest()


class ArtifactStore:
    """Content-addressed files under one local folder.

    Args:
        root: the folder (created if missing); a path or a ``file://`` URL.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = _local_root(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"ArtifactStore({str(self.root)!r})"

    def path_of(self, digest: str) -> Path:
        """Where the artifact ``digest`` is (or would be) stored."""
        hexdigest = _check_digest(digest)
        return self.root / hexdigest[:2] / hexdigest[2:]

    def exists(self, digest: str) -> bool:
        """Whether a file for ``digest`` is present (its content is checked on read)."""
        return self.path_of(digest).is_file()

    def put_bytes(self, data: bytes) -> str:
        """Store ``data``; return its digest. Storing equal bytes twice writes one file."""
        digest = digest_of(data)
        target = self.path_of(digest)
        # an existing file is kept only if intact, so re-storing repairs a damaged one
        if target.is_file() and _file_digest(target) == digest:
            return digest
        with _AtomicWriter(target) as handle:
            handle.write(data)
        return digest

    def put_file(self, path: str | Path) -> str:
        """Copy the file at ``path`` into the store (streamed, hashed once); return its digest."""
        source = Path(path)
        if not source.is_file():
            raise NotFoundError(
                "the file to store does not exist",
                where=str(source),
                fix="Check the path.",
            )
        hasher = hashlib.sha256()
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="put-")
        try:
            with os.fdopen(fd, "wb") as out, source.open("rb") as src:
                for chunk in iter(lambda: src.read(_CHUNK), b""):
                    hasher.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            digest = DIGEST_PREFIX + hasher.hexdigest()
            target = self.path_of(digest)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return digest

    def get_bytes(self, digest: str) -> bytes:
        """The bytes of ``digest``, re-hashed: a :class:`StoreError` if they do not match."""
        path = self.path_of(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(
                f"artifact {digest} is missing",
                where=str(path),
                fix="Restore the artifacts folder from a backup or re-register the model.",
                digest=digest,
            ) from None
        found = digest_of(data)
        if found != digest:
            raise StoreError(
                f"artifact {digest} is corrupted or was modified: expected {digest}, "
                f"found {found}; restore it or re-register the model",
                where=str(path),
                digest=digest,
                found=found,
            )
        return data

    def size(self, digest: str) -> int:
        """The size in bytes of the stored file of ``digest``."""
        try:
            return self.path_of(digest).stat().st_size
        except FileNotFoundError:
            raise NotFoundError(f"artifact {digest} is missing", where=str(self.path_of(digest)))

    def save_model(self, obj: Any) -> str:
        """Pickle ``obj`` (protocol 5) into the store; return its digest."""
        try:
            data = pickle.dumps(obj, protocol=PICKLE_PROTOCOL)
        except Exception as exc:  # pickling errors come in several types
            raise StoreError(
                "the model cannot be pickled",
                expected="a picklable object (a fitted pipeline or estimator)",
                received=f"{type(obj).__name__}: {exc}",
                fix="Remove unpicklable members (open files, locks, lambdas) from the model.",
            ) from exc
        return self.put_bytes(data)

    def load_model(self, digest: str) -> Any:
        """Unpickle the model ``digest`` after verifying its bytes against the digest."""
        data = self.get_bytes(digest)
        return pickle.loads(data)

    def put_json(self, obj: Any) -> str:
        """Store ``obj`` as canonical JSON; return its digest (equal content, equal digest)."""
        return self.put_bytes(dumps(obj).encode("utf-8"))

    def get_json(self, digest: str) -> Any:
        """The JSON artifact ``digest``, verified, parsed."""
        return json.loads(self.get_bytes(digest).decode("utf-8"))

    def digests(self) -> Iterator[str]:
        """Every digest with a file in the store (in no particular order)."""
        for folder in self.root.iterdir():
            if folder.is_dir() and len(folder.name) == 2:
                for item in folder.iterdir():
                    name = DIGEST_PREFIX + folder.name + item.name
                    if _DIGEST.match(name):
                        yield name


class _AtomicWriter:
    """Write to a temporary file beside ``target``; move it into place on success."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self._handle: IO[bytes] | None = None
        self._tmp = ""

    def __enter__(self) -> IO[bytes]:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(dir=self.target.parent, prefix=".tmp-")
        self._handle = os.fdopen(fd, "wb")
        return self._handle

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        handle = self._handle
        if handle is None:
            return
        try:
            if exc_type is None:
                handle.flush()
                os.fsync(handle.fileno())
            handle.close()
            if exc_type is None:
                os.replace(self._tmp, self.target)
        finally:
            Path(self._tmp).unlink(missing_ok=True)


def _file_digest(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            hasher.update(chunk)
    return DIGEST_PREFIX + hasher.hexdigest()


def _check_digest(digest: str) -> str:
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise StoreError(
            "not an artifact digest",
            expected="'sha256:' followed by 64 lowercase hex digits",
            received=repr(digest),
            fix="Use the digest the store returned when the artifact was written.",
        )
    return digest[len(DIGEST_PREFIX) :]


def _local_root(root: str | Path) -> Path:
    if isinstance(root, Path):
        return root.resolve()
    if "://" in root:
        parsed = urlparse(root)
        if parsed.scheme != "file":
            raise StoreError(
                f"artifact storage '{parsed.scheme}://' is not supported yet",
                where="store.artifacts",
                expected="a local folder or a file:// URL",
                received=root,
                fix="Use a local folder (object storage is planned).",
            )
        return Path(unquote(parsed.path)).resolve()
    return Path(root).resolve()
