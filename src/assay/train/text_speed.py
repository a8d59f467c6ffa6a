"""How fast this machine runs an encoder, measured in a second before a search relies on it.

A fine-tuning family is skipped when one fit is estimated to take longer than the search
budget. Constants measured once on one machine misjudge every other one (a laptop, a loaded
shared server, a GPU) by several times, so the search times a forward pass and a training
step of the base on a small batch of random tokens, with the threads and device a fit will
use, and estimates from that.
"""

from __future__ import annotations

import time

from assay.errors import MissingDependencyError
from assay.text.checkpoint import BaseCheckpoint
from assay.text.encoder import load_model
from assay.train.text_inputs import text_device, thread_count, torch_threads

try:
    import torch
except ImportError:  # pragma: no cover - torch comes with the text extra
    raise MissingDependencyError("torch", "text") from None

__all__ = ["measure_speed"]

_ROWS = 16
_TOKENS = 64
#: what a real fit adds to the timed pass: the optimiser, padding, moving batches, and
#: the epochs' scoring of validation rows (measured: a MiniLM LoRA fit of 1,600 reviews
#: ran about 1.5 times the bare step time)
OVERHEAD = 1.5


def measure_speed(base: BaseCheckpoint, weights: int, device: str | None = None) -> dict[str, float]:
    """Seconds per (token x encoder weight) of a forward pass and of a training step.

    ``weights`` is the encoder's layer weights (:func:`~assay.train.text_families.
    encoder_params`). The training step back-propagates through every weight, the cost
    of a full fine-tune; a LoRA step through the same blocks costs about the same on a
    CPU (the activations' gradients dominate), so both kinds get it. The fastest of two
    timings is kept (the other is what a busy moment added), times :data:`OVERHEAD`.
    """
    where = text_device(device)
    model = load_model(base).to(where)
    generator = torch.Generator().manual_seed(0)
    low = min(1000, max(0, base.vocab_size - 1))
    ids = torch.randint(low, max(low + 1, base.vocab_size), (_ROWS, _TOKENS), generator=generator)
    batch = {"input_ids": ids.to(where), "attention_mask": torch.ones_like(ids).to(where)}
    scale = float(_ROWS * _TOKENS * max(weights, 1))
    with torch_threads(thread_count(base)):
        forward = []
        with torch.inference_mode():
            for _ in range(3):
                started = time.perf_counter()
                model(**batch)
                forward.append(time.perf_counter() - started)
        model.train()
        steps = []
        for _ in range(3):
            started = time.perf_counter()
            loss = model(**batch).last_hidden_state.float().pow(2).mean()
            loss.backward()
            model.zero_grad(set_to_none=True)
            steps.append(time.perf_counter() - started)
    step = OVERHEAD * min(steps[1:]) / scale
    return {"forward": OVERHEAD * min(forward[1:]) / scale, "lora": step, "full": step}
