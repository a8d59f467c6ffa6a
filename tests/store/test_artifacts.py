"""ArtifactStore: content addressing, atomic writes, verification before use."""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import pytest

from assay.errors import NotFoundError, StoreError
from assay.store import ArtifactStore, digest_of
from assay.testing import stores as contract


@pytest.fixture
def artifacts(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "artifacts")


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_digest_is_sha256_of_the_bytes(artifacts: ArtifactStore) -> None:
    data = b"model bytes"
    digest = artifacts.put_bytes(data)
    assert digest == "sha256:" + hashlib.sha256(data).hexdigest() == digest_of(data)
    assert artifacts.path_of(digest).read_bytes() == data
    assert list(artifacts.digests()) == [digest]


def test_put_file_streams_to_the_same_name_as_put_bytes(
    artifacts: ArtifactStore, tmp_path: Path
) -> None:
    data = os.urandom(3 * (1 << 20) + 17)  # several read chunks
    source = tmp_path / "snapshot.parquet"
    source.write_bytes(data)
    digest = artifacts.put_file(source)
    assert digest == digest_of(data)
    assert artifacts.get_bytes(digest) == data
    assert _files(artifacts.root) == [artifacts.path_of(digest)]  # no temporary file left
    with pytest.raises(NotFoundError, match="does not exist"):
        artifacts.put_file(tmp_path / "missing.csv")


def test_failed_write_leaves_no_file(
    artifacts: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        artifacts.put_bytes(b"half")
    assert _files(artifacts.root) == []
    assert not artifacts.exists(digest_of(b"half"))


def test_modified_file_is_refused_with_the_fix(artifacts: ArtifactStore) -> None:
    digest = artifacts.put_bytes(b"original")
    artifacts.path_of(digest).write_bytes(b"originaX")
    found = digest_of(b"originaX")
    with pytest.raises(
        StoreError,
        match=f"artifact {digest} is corrupted or was modified: expected {digest}, found {found}; "
        "restore it or re-register the model",
    ):
        artifacts.get_bytes(digest)
    assert artifacts.put_bytes(b"original") == digest  # storing again repairs the file
    assert artifacts.get_bytes(digest) == b"original"


def test_load_model_verifies_before_unpickling(artifacts: ArtifactStore) -> None:
    digest = artifacts.save_model({"weights": [1.0, 2.0]})
    assert artifacts.load_model(digest) == {"weights": [1.0, 2.0]}
    artifacts.path_of(digest).write_bytes(pickle.dumps(contract.Tripwire(), protocol=5))
    contract.TRIPPED.clear()
    with pytest.raises(StoreError, match="is corrupted or was modified"):
        artifacts.load_model(digest)
    assert contract.TRIPPED == []


def test_models_are_pickled_with_protocol_5(artifacts: ArtifactStore) -> None:
    digest = artifacts.save_model([1, 2, 3])
    data = artifacts.get_bytes(digest)
    assert data[:2] == b"\x80\x05"


def test_unpicklable_model_is_a_store_error(artifacts: ArtifactStore) -> None:
    with pytest.raises(StoreError, match="the model cannot be pickled.*Remove unpicklable"):
        artifacts.save_model(lambda x: x)


@pytest.mark.parametrize("bad", ["md5:abc", "sha256:XYZ", "sha256:" + "a" * 63, ""])
def test_malformed_digest_is_refused(artifacts: ArtifactStore, bad: str) -> None:
    with pytest.raises(StoreError, match="not an artifact digest.*expected 'sha256:' followed"):
        artifacts.get_bytes(bad)


def test_json_artifacts_are_canonical(artifacts: ArtifactStore) -> None:
    first = artifacts.put_json({"b": 1, "a": [1.5, None]})
    assert first == artifacts.put_json({"a": [1.5, None], "b": 1})
    assert artifacts.get_bytes(first) == b'{"a":[1.5,null],"b":1}'
    assert artifacts.get_json(first) == {"a": [1.5, None], "b": 1}


def test_file_url_root_and_unsupported_scheme(tmp_path: Path) -> None:
    store = ArtifactStore(f"file://{tmp_path / 'via-url'}")
    assert store.root == (tmp_path / "via-url").resolve()
    with pytest.raises(StoreError, match="'gs://' is not supported yet"):
        ArtifactStore("gs://bucket/models")
