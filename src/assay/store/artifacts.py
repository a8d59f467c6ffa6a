"""Content-addressed artifact files: models, reports and data snapshots.

An artifact is named by the SHA-256 of its bytes (``sha256:<hex>``) and stored at
``<root>/<hex[:2]>/<hex[2:]>``. Writes are atomic (a temporary file in the same
folder, then ``os.replace``), so a reader never sees half a file, and equal content
is stored once. Every read re-hashes the bytes: a file changed on disk is refused.

A model artifact is a pickle, so it is also signed: :meth:`ArtifactStore.save_model`
writes an HMAC-SHA256 of the digest, under the signing key of
:mod:`assay.store.signing`, to ``<path>.sig`` beside the file, and
:meth:`ArtifactStore.load_model` unpickles only after the signature verifies and the
bytes match the digest. The hash catches corruption; the signature, whose key is kept
outside the store, refuses bytes written by anyone who does not hold the key.
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

from assay.errors import IntegrityError, NotFoundError, StoreError
from assay.store.serialize import dumps
from assay.store.signing import SigningKey, signing_key

__all__ = ["DIGEST_PREFIX", "PICKLE_PROTOCOL", "SIGNATURE_SUFFIX", "ArtifactStore", "digest_of"]

DIGEST_PREFIX = "sha256:"
#: Protocol 5 keeps large NumPy buffers compact (PEP 574).
PICKLE_PROTOCOL = 5
_CHUNK = 1 << 20
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
#: The signature of a model artifact sits beside it, in ``<path><SIGNATURE_SUFFIX>``.
SIGNATURE_SUFFIX = ".sig"
_ALGORITHM = "hmac-sha256"
_MAC = re.compile(r"^[0-9a-f]{64}$")
_KEY_ID = re.compile(r"^[0-9a-f]{1,64}$")


def digest_of(data: bytes) -> str:
    """The artifact name of ``data``: ``sha256:<hex>``."""
    return DIGEST_PREFIX + hashlib.sha256(data).hexdigest()


class ArtifactStore:
    """Content-addressed files under one local folder.

    Args:
        root: the folder (created if missing); a path or a ``file://`` URL.
        key: the key that signs and verifies model artifacts; default: the machine's
            key (:func:`assay.store.signing.signing_key`), read at each use.
    """

    def __init__(self, root: str | Path, *, key: SigningKey | None = None) -> None:
        self.root = _local_root(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._key = key

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
            raise IntegrityError(
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
        """Pickle ``obj`` (protocol 5) into the store and sign it; return its digest.

        The first model saved on a machine without a key creates the key file.
        """
        try:
            data = pickle.dumps(obj, protocol=PICKLE_PROTOCOL)
        except Exception as exc:  # pickling errors come in several types
            raise StoreError(
                "the model cannot be pickled",
                expected="a picklable object (a fitted pipeline or estimator)",
                received=f"{type(obj).__name__}: {exc}",
                fix="Remove unpicklable members (open files, locks, lambdas) from the model.",
            ) from exc
        key = self._signing_key(create=True)
        digest = self.put_bytes(data)
        self._write_signature(digest, key)
        return digest

    def sign(self, digest: str) -> str:
        """Sign the stored artifact ``digest`` with this machine's key (its bytes verified first);
        return the key's id.

        Only for bytes this machine wrote or trusts: a signature is what lets a
        pickle be loaded.
        """
        key = self._signing_key(create=True)
        self.get_bytes(digest)
        self._write_signature(digest, key)
        return key.key_id

    def verify_model(self, digest: str) -> bytes:
        """The bytes of the model ``digest`` once its signature and hash both verify.

        Raises:
            IntegrityError: no key, no or a wrong signature, or bytes that do not
                match the digest.
            NotFoundError: the artifact file is missing.
        """
        self.check_signature(digest)
        return self.get_bytes(digest)

    def load_model(self, digest: str) -> Any:
        """Unpickle the model ``digest``, only after :meth:`verify_model` accepts it."""
        return pickle.loads(self.verify_model(digest))

    def check_signature(self, digest: str) -> None:
        """Raise :class:`IntegrityError` unless ``digest`` is signed with this machine's key."""
        key = self._signing_key(create=False)
        path = self.signature_path(digest)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise IntegrityError(
                f"artifact {digest} is not signed, so it is not loaded",
                where=str(path),
                expected=f"a signature made with the signing key ({key.source})",
                received="no signature file",
                fix="Re-register the model on a machine that holds the signing key; a pickle "
                "that no key holder signed could run any code when loaded.",
                digest=digest,
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise IntegrityError(
                f"the signature of artifact {digest} cannot be read",
                where=str(path),
                received=f"{type(exc).__name__}: {exc}",
                fix="Check the file's permissions, or re-register the model.",
                digest=digest,
            ) from exc
        mac, key_id = _parse_signature(text, digest)
        if mac is None or not key.verifies(digest, mac):
            other = (
                f"; the signature names key {key_id}"
                if key_id is not None and key_id != key.key_id
                else ""
            )
            raise IntegrityError(
                f"the signature of artifact {digest} does not verify, so it is not loaded",
                where=str(path),
                expected=f"a signature made with the signing key {key.key_id} ({key.source})",
                received="a wrong or malformed signature" + other,
                fix="If the model was registered on another machine, use that machine's key "
                "here; otherwise the artifact was not written by a key holder: do not load it, "
                "and re-register the model.",
                digest=digest,
            )

    def signature_path(self, digest: str) -> Path:
        """Where the signature of the artifact ``digest`` is (or would be) stored."""
        path = self.path_of(digest)
        return path.with_name(path.name + SIGNATURE_SUFFIX)

    def _signing_key(self, *, create: bool) -> SigningKey:
        return self._key if self._key is not None else signing_key(create=create)

    def _write_signature(self, digest: str, key: SigningKey) -> None:
        body = {"alg": _ALGORITHM, "digest": digest, "key_id": key.key_id, "mac": key.sign(digest)}
        with _AtomicWriter(self.signature_path(digest)) as handle:
            handle.write(dumps(body).encode("utf-8"))

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


def _parse_signature(text: str, digest: str) -> tuple[str | None, str | None]:
    """``(mac, key_id)`` of a signature file; ``None`` for what is missing or malformed."""
    try:
        body = json.loads(text)
    except ValueError:
        return None, None
    if not isinstance(body, dict) or body.get("alg") != _ALGORITHM or body.get("digest") != digest:
        return None, None
    mac, key_id = body.get("mac"), body.get("key_id")
    return (
        mac if isinstance(mac, str) and _MAC.match(mac) else None,
        key_id if isinstance(key_id, str) and _KEY_ID.match(key_id) else None,
    )


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
