"""The signing key and signed model artifacts: nothing unsigned or wrongly signed is unpickled."""

from __future__ import annotations

import json
import os
import pickle
import stat
from pathlib import Path

import pytest

from assay.errors import IntegrityError, StoreError
from assay.store import ArtifactStore
from assay.store.signing import KEY_ENV, KEY_FILE_ENV, default_key_file, signing_key
from assay.testing.stores import MarkerPayload

posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


@pytest.fixture
def key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A key file path of this test only (not created yet)."""
    path = tmp_path / "config" / "assay" / "signing.key"
    monkeypatch.setenv(KEY_FILE_ENV, str(path))
    monkeypatch.delenv(KEY_ENV, raising=False)
    return path


@pytest.fixture
def artifacts(tmp_path: Path, key_file: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "artifacts")


@posix_only
def test_the_first_signature_creates_a_private_key_file(artifacts: ArtifactStore, key_file: Path) -> None:
    assert not key_file.exists()
    with pytest.raises(IntegrityError, match="there is no signing key"):
        signing_key()  # loading never invents a key
    digest = artifacts.save_model({"w": 1})
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert len(key_file.read_text().strip()) == 64
    assert artifacts.load_model(digest) == {"w": 1}
    text = key_file.read_text()
    signing_key(create=True)  # an existing key is kept, never replaced
    assert key_file.read_text() == text


def test_the_default_key_lives_in_the_user_config_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert default_key_file() == tmp_path / "xdg" / "assay" / "signing.key"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_key_file() == tmp_path / "home" / ".config" / "assay" / "signing.key"


@posix_only
def test_a_key_file_others_can_read_is_refused(artifacts: ArtifactStore, key_file: Path) -> None:
    digest = artifacts.save_model([1, 2])
    key_file.chmod(0o644)
    with pytest.raises(IntegrityError, match=r"signing key file is accessible to group or others "
                       r"\(expected mode 0600 \(owner only\), got mode 0644\)\. Run `chmod 600 "):
        artifacts.load_model(digest)
    with pytest.raises(IntegrityError, match="accessible to group or others"):
        artifacts.save_model([3])
    key_file.chmod(0o600)
    assert artifacts.load_model(digest) == [1, 2]


def test_a_key_from_the_environment_wins_and_must_be_long(artifacts: ArtifactStore, key_file: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "short")
    with pytest.raises(IntegrityError, match=f"{KEY_ENV}: the signing key is too short .*got 5 characters"):
        artifacts.save_model([1])
    monkeypatch.setenv(KEY_ENV, "k" * 40)
    digest = artifacts.save_model([1])
    assert not key_file.exists() and signing_key().source == KEY_ENV
    assert artifacts.load_model(digest) == [1]
    monkeypatch.setenv(KEY_ENV, "j" * 40)  # another machine's key
    with pytest.raises(IntegrityError, match=f"signature of artifact {digest} does not verify.*names key"):
        artifacts.load_model(digest)


def test_a_genuine_artifact_without_its_signature_is_refused(artifacts: ArtifactStore, tmp_path: Path) -> None:
    digest = artifacts.save_model({"w": 2})
    sig = artifacts.signature_path(digest)
    assert sig.name == artifacts.path_of(digest).name + ".sig"
    saved = sig.read_bytes()
    sig.unlink()
    with pytest.raises(IntegrityError, match=f"artifact {digest} is not signed, so it is not loaded.*Re-register"):
        artifacts.load_model(digest)
    assert list(artifacts.digests()) == [digest]  # signatures are not artifacts
    sig.write_bytes(saved)
    assert artifacts.load_model(digest) == {"w": 2}


@pytest.mark.parametrize("change", ["flip", "garbage", "other digest"])
def test_a_wrong_signature_is_refused(artifacts: ArtifactStore, change: str) -> None:
    digest = artifacts.save_model({"w": 3})
    sig = artifacts.signature_path(digest)
    body = json.loads(sig.read_text())
    if change == "flip":
        body["mac"] = body["mac"][:-1] + ("0" if body["mac"][-1] != "0" else "1")
        sig.write_text(json.dumps(body))
    elif change == "garbage":
        sig.write_text("not json")
    else:
        body["digest"] = "sha256:" + "0" * 64
        sig.write_text(json.dumps(body))
    with pytest.raises(IntegrityError, match=f"signature of artifact {digest} does not verify"):
        artifacts.load_model(digest)


def test_a_hostile_pickle_is_refused_before_it_runs(artifacts: ArtifactStore, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    digest = artifacts.put_bytes(pickle.dumps(MarkerPayload(marker), protocol=5))
    with pytest.raises(IntegrityError, match="there is no signing key"):
        artifacts.load_model(digest)
    signing_key(create=True)
    with pytest.raises(IntegrityError, match="is not signed"):
        artifacts.load_model(digest)
    with pytest.raises(IntegrityError, match="is not signed"):
        artifacts.verify_model(digest)
    assert not marker.exists()


def test_sign_trusts_stored_bytes_explicitly(artifacts: ArtifactStore) -> None:
    signing_key(create=True)
    digest = artifacts.put_bytes(pickle.dumps({"legacy": True}, protocol=5))
    with pytest.raises(IntegrityError, match="is not signed"):
        artifacts.load_model(digest)
    artifacts.sign(digest)
    assert artifacts.load_model(digest) == {"legacy": True}
    artifacts.path_of(digest).write_bytes(b"changed")
    with pytest.raises(StoreError, match="is corrupted or was modified"):
        artifacts.sign(digest)  # damaged bytes are never signed
