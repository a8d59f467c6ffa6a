"""What the text classifiers share: reading texts and labels, the base, threads, batches.

Texts come from one column of a frame, a series or a sequence of strings; missing values
read as empty texts and any other non-string value is a :class:`DataError` naming the
column. Batches are padded to their own longest text, and texts of similar length are
batched together, so short texts cost short sequences.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from assay.errors import ConfigError, DataError, IntegrityError, MissingDependencyError
from assay.text.checkpoint import BaseCheckpoint, resolve_base
from assay.text.encoder import pick_device

try:
    import torch
except ImportError:  # pragma: no cover - torch comes with the text extra
    raise MissingDependencyError("torch", "text") from None

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "BaseLike",
    "label_codes",
    "pad_batch",
    "read_texts",
    "resolve_checkpoint",
    "reverify_base",
    "sorted_batches",
    "text_device",
    "thread_count",
    "token_limit",
    "tokenize",
    "torch_threads",
    "training_batches",
]

#: tokens read per text when neither the estimator nor assay.yaml says (model.max_length)
DEFAULT_MAX_LENGTH = 128
#: texts sorted by length together, then cut into batches (dynamic padding wastes less)
_BUCKET_BATCHES = 50

BaseLike = BaseCheckpoint | str | Path | None


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def read_texts(X: Any, column: str | None) -> list[str]:
    """The texts of ``X``: a frame's ``column`` (or its only column), a series, or strings.

    Missing values become empty texts; a value of another type (a number, a list) is
    a :class:`DataError` naming the column, since it means the wrong column was chosen.
    """
    name = column or "text"
    if isinstance(X, pd.DataFrame):
        if column is not None and column in X.columns:
            values: Sequence[Any] = X[column].tolist()
        elif X.shape[1] == 1:
            name = str(X.columns[0])
            values = X.iloc[:, 0].tolist()
        else:
            raise DataError(
                f"the text column '{name}' is not in the frame",
                column=name,
                expected="a frame with the text column",
                received=[str(c) for c in X.columns][:20],
                fix="Pass the frame with its text column, or set data.text in assay.yaml.",
            )
    elif isinstance(X, pd.Series):
        name = str(X.name) if X.name is not None else name
        values = X.tolist()
    elif isinstance(X, str):
        values = [X]
    else:
        values = np.asarray(X, dtype=object).ravel().tolist()
    texts: list[str] = []
    for row, value in enumerate(values):
        if isinstance(value, str):
            texts.append(value)
        elif _missing(value):
            texts.append("")
        else:
            raise DataError(
                f"the text column '{name}' holds a {type(value).__name__} at row {row}",
                column=name,
                expected="free text (strings; missing values count as empty)",
                received=repr(value),
                fix="Point data.text at the free-text column, or convert the column to strings.",
            )
    return texts


def label_codes(y: Any) -> tuple[np.ndarray, np.ndarray]:
    """The sorted classes and the label codes; one class or mixed types is a DataError."""
    labels = np.asarray(y)
    if labels.ndim != 1:
        labels = labels.ravel()
    try:
        classes = np.unique(labels)
    except TypeError as exc:
        kinds = sorted({type(v).__name__ for v in labels.tolist()})
        raise DataError(
            "the training labels mix types, which cannot be ordered into classes",
            where="the training labels",
            expected="labels of one type (all strings or all integers)",
            received=", ".join(kinds),
            fix="Convert the target column to one type before training.",
        ) from exc
    if len(classes) < 2:
        raise DataError(
            f"the training labels hold a single class ({classes.tolist()!r}); a classifier "
            "needs at least two",
            where="the training labels",
            expected="two or more classes",
            received=f"{len(labels)} rows of one class",
            fix="Train on rows that cover at least two classes (check the split and filters).",
        )
    return classes, np.searchsorted(classes, labels).astype(np.int64)


def resolve_checkpoint(base: BaseLike) -> BaseCheckpoint:
    """A resolved checkpoint as it is, else the one ``base`` names (``None``: the default)."""
    if isinstance(base, BaseCheckpoint):
        return base
    return resolve_base(None if base is None else str(base))


def reverify_base(base: BaseCheckpoint) -> BaseCheckpoint:
    """The base again, from its directory (else its source), with the same weight hash."""
    source = str(base.path) if base.path.is_dir() else base.source
    try:
        found = resolve_base(source)
    except ConfigError as exc:
        raise IntegrityError(
            f"the base checkpoint of this model is gone: {exc.what}",
            where=str(base.path),
            expected=f"the checkpoint with weights sha256 {base.sha256}",
            received=source,
            fix="Install or copy the base checkpoint the model was trained on back in place.",
        ) from exc
    if found.sha256 != base.sha256:
        raise IntegrityError(
            f"the base checkpoint at '{found.path}' has other weights than the model was "
            "trained on",
            where=str(found.path),
            expected=f"weights sha256 {base.sha256}",
            received=f"sha256 {found.sha256}",
            fix="Restore the base checkpoint the model was trained on, or retrain the model "
            "on this one.",
        )
    return found


#: below this width a matrix product is too small to gain from more than one thread
_THREADED_WIDTH = 256
#: scoring fewer tokens than this runs on one thread: the products are too small to
#: split, and on shared cores every split step waits for a descheduled thread (one text
#: scored in 25 ms on one thread, about a second on two, with the two cores loaded)
_THREADED_TOKENS = 4096


def thread_count(base: BaseCheckpoint, tokens: int | None = None) -> int:
    """torch threads for work on ``base``: the cores this process may use, or one.

    One for a narrow encoder, and for scoring fewer than 4,096 ``tokens``, where
    threads only wait. Inference gives the same numbers on any thread count; training
    differs in the last bits, so a fit is reproducible on the same number of cores.
    """
    if base.hidden_size < _THREADED_WIDTH:
        return 1
    if tokens is not None and tokens < _THREADED_TOKENS:
        return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch's intra-op threads set to ``count`` for the block, then restored."""
    before = torch.get_num_threads()
    if count != before:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if count != before:
            torch.set_num_threads(before)


def text_device(requested: str | None) -> str:
    """``model.device`` to a torch device: ``auto`` (or nothing) takes a GPU when there is one."""
    return pick_device(None if requested in (None, "", "auto") else requested)


def token_limit(base: BaseCheckpoint, max_length: int | None) -> int:
    """Tokens read per text: ``max_length`` (default 128), capped by what the base takes."""
    return max(8, min(int(max_length or DEFAULT_MAX_LENGTH), base.max_length))


# batches: dynamic padding over length-sorted texts --------------------------------------


def tokenize(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids per text, truncated, with the special tokens, unpadded."""
    if not texts:
        return []
    ids: list[list[int]] = tokenizer(
        list(texts), truncation=True, max_length=max_length, add_special_tokens=True
    )["input_ids"]
    return ids


def pad_batch(ids: Sequence[list[int]], pad_id: int, device: str) -> dict[str, torch.Tensor]:
    """``input_ids`` and ``attention_mask`` padded to the longest row of this batch only."""
    width = max(len(row) for row in ids)
    tokens = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, row in enumerate(ids):
        tokens[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return {"input_ids": tokens.to(device), "attention_mask": mask.to(device)}


def sorted_batches(lengths: Sequence[int], size: int) -> Iterator[np.ndarray]:
    """Row indices in batches of similar length (longest first), for inference."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    for start in range(0, len(order), size):
        yield order[start : start + size]


def training_batches(
    lengths: Sequence[int], size: int, generator: torch.Generator
) -> list[np.ndarray]:
    """Shuffled rows, sorted by length within buckets of several batches, batches shuffled."""
    order = torch.randperm(len(lengths), generator=generator).numpy()
    bucket = size * _BUCKET_BATCHES
    batches: list[np.ndarray] = []
    lengths_arr = np.asarray(lengths)
    for start in range(0, len(order), bucket):
        chunk = order[start : start + bucket]
        chunk = chunk[np.argsort(lengths_arr[chunk], kind="stable")]
        batches += [chunk[i : i + size] for i in range(0, len(chunk), size)]
    shuffle = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffle]
