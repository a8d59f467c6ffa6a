"""Text with pretrained transformers: checkpoints on disk, their tokenizers and encoders.

:mod:`assay.text.checkpoint` resolves and checks ``model.base`` with the standard library
alone; :mod:`assay.text.encoder` loads the tokenizer and weights (the ``text`` extra:
torch, transformers) and turns texts into embeddings. The text families, the text audit
checks and text drift all stand on these two.
"""

from assay.text.checkpoint import DEFAULT_BASE, BaseCheckpoint, resolve_base

__all__ = ["DEFAULT_BASE", "BaseCheckpoint", "resolve_base"]
