"""Load a checked checkpoint's tokenizer and encoder, and embed texts with it.

Loading is offline by construction (``local_files_only``): the checkpoint was found and
checked on disk by :func:`assay.text.checkpoint.resolve_base`. Embeddings are the
attention-masked mean of the last hidden states, L2-normalised, the pooling the
sentence-transformers encoders (all-MiniLM-L6-v2 among them) were trained with.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assay.errors import ConfigError, MissingDependencyError
from assay.text.checkpoint import BaseCheckpoint

__all__ = [
    "TextEncoder",
    "embedding_memory",
    "forget_embeddings",
    "load_model",
    "load_tokenizer",
    "pick_device",
    "remember",
    "require_torch",
]

#: texts whose embeddings one process keeps per base and token limit (the oldest go first)
MEMORY_TEXTS = 200_000
_MEMORY: dict[tuple[str, int], dict[str, np.ndarray]] = {}


def embedding_memory(base: BaseCheckpoint, max_length: int) -> dict[str, np.ndarray]:
    """The process's embeddings of texts under ``base`` read to ``max_length`` tokens.

    Shared by every frozen encoder of the process: the data audit, the embedding
    family's fits and the drift reference of one ``assay run`` embed the same texts
    with the same base, so each text is encoded once.
    """
    return _MEMORY.setdefault((base.sha256, int(max_length)), {})


def forget_embeddings() -> None:
    """Drop the embeddings kept in memory (a disk cache, where one is used, stays)."""
    _MEMORY.clear()


def remember(memory: dict[str, np.ndarray], texts: Sequence[str], vectors: np.ndarray) -> None:
    """Keep ``vectors`` for ``texts`` in ``memory``, dropping the oldest beyond the cap."""
    for text, vector in zip(texts, vectors, strict=True):
        memory[text] = vector
    while len(memory) > MEMORY_TEXTS:
        del memory[next(iter(memory))]


def require_torch() -> Any:
    """The ``torch`` module, or a MissingDependencyError naming the ``text`` extra."""
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError("torch", "text") from exc
    return torch


def _transformers() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    try:
        import transformers
    except ImportError as exc:
        raise MissingDependencyError("transformers", "text") from exc
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers


def pick_device(requested: str | None = None) -> str:
    """``cuda`` when torch sees a GPU (or when asked for), else ``cpu``."""
    torch = require_torch()
    if requested:
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_tokenizer(base: BaseCheckpoint, *, key: str = "model.base") -> Any:
    """The checkpoint's own tokenizer (a fast tokenizer when the files allow one)."""
    transformers = _transformers()
    try:
        return transformers.AutoTokenizer.from_pretrained(str(base.path), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"the tokenizer in '{base.path}' does not load ({exc})",
            key=key,
            expected="the tokenizer files the base model was saved with",
            received=base.source,
            fix="Save the base model's tokenizer into the checkpoint directory "
            "(tokenizer.save_pretrained(dir)).",
        ) from exc


def load_model(base: BaseCheckpoint, *, key: str = "model.base") -> Any:
    """The checkpoint's encoder (``AutoModel``), in evaluation mode, on the CPU."""
    transformers = _transformers()
    try:
        model = transformers.AutoModel.from_pretrained(str(base.path), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ConfigError(
            f"the weights in '{base.path}' do not load ({exc})",
            key=key,
            expected="a checkpoint saved with save_pretrained",
            received=base.source,
            fix="Point model.base at a complete checkpoint directory.",
        ) from exc
    model.eval()
    return model


def mean_pool(hidden: Any, mask: Any) -> Any:
    """The mean of the token vectors the attention mask keeps."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)


@dataclass
class TextEncoder:
    """A frozen encoder that turns texts into L2-normalised mean-pooled embeddings.

    Embeddings are kept in the process's memory by text (:func:`embedding_memory`), so
    every encoder of the same base and token limit encodes each text once. Texts are
    encoded longest first in batches of similar length, so little is padding.
    """

    base: BaseCheckpoint
    max_length: int | None = None
    batch_size: int = 64
    device: str | None = None
    _tokenizer: Any = field(default=None, init=False, repr=False)
    _model: Any = field(default=None, init=False, repr=False)
    _cache: dict[str, np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._cache = embedding_memory(self.base, self.max_length or self.base.max_length)

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.base)
        return self._tokenizer

    @property
    def dimension(self) -> int:
        return self.base.hidden_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """An array of shape (len(texts), hidden size), float32, rows of unit length."""
        todo = sorted(dict.fromkeys(t for t in texts if t not in self._cache), key=len, reverse=True)
        done: dict[str, np.ndarray] = {}
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            done.update(zip(chunk, self._encode_batch(chunk), strict=True))
        if done:
            remember(self._cache, list(done), np.stack(list(done.values())))
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([done[t] if t in done else self._cache[t] for t in texts])

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        torch = require_torch()
        if self._model is None:
            device = pick_device(self.device)
            self._model = load_model(self.base).to(device)
        device = next(self._model.parameters()).device
        batch = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_length or self.base.max_length,
            return_tensors="pt",
        ).to(device)
        with torch.inference_mode():
            hidden = self._model(**batch).last_hidden_state
            pooled = mean_pool(hidden, batch["attention_mask"])
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return np.asarray(pooled.float().cpu().numpy(), dtype=np.float32)
