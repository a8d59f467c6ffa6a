"""Tiny random-weight transformer checkpoints on disk, for tests that must not download.

:func:`tiny_checkpoint` writes a BERT-layout checkpoint (config, safetensors weights,
WordPiece tokenizer) of a few thousand parameters in well under a second, built from a
vocabulary the caller chooses, so text families, text audit checks and text drift can be
tested end to end on real files with the real loading code.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from assay.errors import MissingDependencyError

__all__ = ["SPECIAL_TOKENS", "tiny_checkpoint"]

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def tiny_checkpoint(
    directory: Path,
    words: Iterable[str] = (),
    *,
    hidden_size: int = 32,
    layers: int = 2,
    heads: int = 2,
    max_length: int = 64,
    seed: int = 0,
) -> Path:
    """Write a random-weight BERT checkpoint and its tokenizer to ``directory``.

    The vocabulary is the special tokens, the lower-cased ``words`` (in first-seen
    order) and the letters a–z and digits, so any ASCII word tokenises into known
    pieces or ``[UNK]``. Returns ``directory``.
    """
    try:
        import torch
        import transformers
        from transformers import BertConfig, BertModel, BertTokenizer
    except ImportError as exc:
        raise MissingDependencyError("transformers", "text") from exc

    transformers.utils.logging.disable_progress_bar()

    directory.mkdir(parents=True, exist_ok=True)
    vocab: dict[str, int] = {}
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    pieces = [*SPECIAL_TOKENS, *(w.lower() for w in words), *letters, *(f"##{c}" for c in letters)]
    for piece in pieces:
        vocab.setdefault(piece, len(vocab))
    tokenizer = BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=max_length)
    tokenizer.save_pretrained(str(directory))
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=hidden_size * 2,
        max_position_embeddings=max_length,
        pad_token_id=0,
    )
    BertModel(config).save_pretrained(str(directory))
    return directory
