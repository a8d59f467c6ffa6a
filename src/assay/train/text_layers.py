"""Training only the top layers of an encoder, from cached outputs of the frozen ones below.

LoRA on the top ``k`` of ``L`` layers leaves the embeddings and the lower ``L - k``
layers frozen and deterministic in evaluation mode, so their output for a text is the
same in every epoch. :class:`TopLayers` runs those lower layers once per text and keeps
the hidden states; each training step then runs (and back-propagates through) the top
``k`` layers only. On MiniLM-L6 with adapters on the top two layers a step costs about a
quarter of a step through all six.

The lower layers then run without dropout while training (they are frozen, and their
outputs are reused): the one difference from adapting the top layers of the full
network. Scoring is unchanged: in evaluation mode the cached path computes exactly what
the whole network computes, and :meth:`TopLayers.agrees` checks that on real rows before
a fit relies on it (an encoder whose layers need more than the hidden states and the
attention mask, such as DeBERTa's relative positions, fails the check and is trained
through the whole network instead).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from assay.errors import MissingDependencyError
from assay.train.text_inputs import pad_batch, sorted_batches

try:
    import torch
except ImportError:  # pragma: no cover - torch comes with the text extra
    raise MissingDependencyError("torch", "text") from None

__all__ = ["MAX_CACHE_BYTES", "TopLayers", "cache_bytes", "encoder_layers", "stack"]

#: cached hidden states kept in memory at most: beyond it a fit runs the whole network
#: every step, which is slower but needs no memory for the cache (float32, so the cached
#: path scores exactly as the whole network: 4 GiB hold about 30,000 texts of 90 tokens
#: for a 384-wide encoder)
MAX_CACHE_BYTES = 4 * 1024**3
_CACHE_BATCH = 64


def encoder_layers(model: Any) -> Any | None:
    """The transformer blocks of a Hugging Face encoder (a ``ModuleList``), else None."""
    for path in (("encoder", "layer"), ("transformer", "layer")):
        node = model
        for name in path:
            node = getattr(node, name, None)
            if node is None:
                break
        if isinstance(node, torch.nn.ModuleList):
            return node
    return None


class TopLayers:
    """The top ``count`` blocks of ``model`` (the bare encoder, adapters inside), run alone.

    Args:
        model: the encoder (``BertModel`` and the like; for a peft model, its base model).
        count: how many of the top blocks are trained.
    """

    def __init__(self, model: Any, count: int) -> None:
        blocks = encoder_layers(model)
        if blocks is None:
            raise ValueError("the encoder's blocks are not at encoder.layer")
        self.model = model
        self.start = len(blocks) - count
        self.lower_blocks = list(blocks)[: self.start]
        self.blocks = list(blocks)[self.start :]

    def lower(self, ids: Sequence[list[int]], pad_id: int, device: str) -> list[torch.Tensor]:
        """The hidden states entering the top blocks, one (tokens x hidden) array per text."""
        out: list[torch.Tensor] = [torch.empty(0)] * len(ids)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                for rows in sorted_batches([len(i) for i in ids], _CACHE_BATCH):
                    batch = pad_batch([ids[i] for i in rows], pad_id, device)
                    states = self._below(batch["input_ids"], batch["attention_mask"])
                    for j, i in enumerate(rows):
                        out[i] = states[j, : len(ids[i])].to("cpu").clone()
        finally:
            self.model.train(was_training)
        return out

    def _below(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The embeddings, then the frozen blocks under the top ones."""
        hidden = self.model.embeddings(input_ids=input_ids)
        return self._blocks(self.lower_blocks, hidden, mask)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The last hidden states from the states entering the top blocks."""
        return self._blocks(self.blocks, hidden, mask)

    def _blocks(self, blocks: Sequence[Any], hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        try:
            from transformers.masking_utils import create_bidirectional_mask
        except ImportError as exc:  # pragma: no cover - transformers comes with the text extra
            raise MissingDependencyError("transformers", "text") from exc

        attention = create_bidirectional_mask(
            config=self.model.config, inputs_embeds=hidden, attention_mask=mask
        )
        for block in blocks:
            result = block(hidden, attention)
            hidden = result[0] if isinstance(result, tuple) else result
        return hidden

    def agrees(self, ids: Sequence[list[int]], pad_id: int, device: str) -> bool:
        """Whether the cached path gives the whole network's output on ``ids`` (eval mode)."""
        if not ids:
            return False
        was_training = self.model.training
        self.model.eval()
        try:
            batch = pad_batch(list(ids), pad_id, device)
            with torch.inference_mode():
                whole = self.model(**batch).last_hidden_state
                below = self._below(batch["input_ids"], batch["attention_mask"])
                part = self.forward(below, batch["attention_mask"])
            keep = batch["attention_mask"].bool()
            return bool(torch.allclose(whole[keep], part[keep], atol=1e-4, rtol=1e-3))
        except Exception:  # noqa: BLE001 - any failure means: train through the whole network
            return False
        finally:
            self.model.train(was_training)


def stack(states: Sequence[torch.Tensor], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Cached states of one batch padded to its longest text, with the attention mask."""
    width = max(int(s.shape[0]) for s in states)
    hidden = torch.zeros((len(states), width, int(states[0].shape[1])), dtype=torch.float32)
    mask = torch.zeros((len(states), width), dtype=torch.long)
    for i, s in enumerate(states):
        hidden[i, : s.shape[0]] = s
        mask[i, : s.shape[0]] = 1
    return hidden.to(device), mask.to(device)


def cache_bytes(lengths: Sequence[int], hidden_size: int) -> int:
    """Memory the cached states of texts of ``lengths`` tokens take."""
    return int(np.sum(np.asarray(lengths, dtype=np.int64))) * hidden_size * 4
