"""What the text checks share: the text column read once, encoding artifacts, the base's tokenizer.

Each piece is computed once per audit through :meth:`AuditContext.shared`, so the seven
text checks read the column once and load the tokenizer once. The tokenizer and the
encoder come from :mod:`assay.text`; when the ``text`` extra is not installed, or
``model.base`` does not resolve, :func:`tooling` says why instead of raising, and the
checks that need it report that they could not measure rather than fail the audit.
"""

from __future__ import annotations

import html.entities
import importlib.util
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from assay.audit.base import AuditContext, Finding, Severity
from assay.data.keys import normalize_text
from assay.errors import ConfigError, MissingDependencyError
from assay.text.checkpoint import BaseCheckpoint, resolve_base

__all__ = [
    "ARTIFACT_KINDS",
    "TOKEN_SAMPLE",
    "TextColumn",
    "TokenCounts",
    "Tooling",
    "applies_to_text",
    "artifact_matches",
    "excerpt",
    "text_column",
    "token_counts",
    "tooling",
    "unavailable_finding",
]

#: at most this many non-blank texts are tokenised (a seeded sample beyond)
TOKEN_SAMPLE = 20_000
#: characters of one text handed to the tokenizer; enough to count far past any max_length
_TOKENIZE_CHARS = 100_000
_EXCERPT = 160
#: zero-width characters that make a text look non-empty while showing nothing
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"

# UTF-8 bytes decoded as cp1252 or latin-1: a lead byte shown as Â, Ã, Ä, Å, Ð or Ñ (two-byte
# sequences) or â (three-byte punctuation, e.g. ’ -> â€™) followed by continuation bytes
# shown as U+0080-U+00BF or as cp1252's characters for 0x80-0x9F
_CP1252_HIGH = "€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ"
_CONTINUATION = f"[\u0080-\u00bf{_CP1252_HIGH}]"
_MOJIBAKE = re.compile(
    f"[\u00c2-\u00c5\u00d0\u00d1]{_CONTINUATION}"
    f"|\u00e2[\u0080-\u009f{_CP1252_HIGH}]{_CONTINUATION}"
    "|\u00ef\u00bb\u00bf"
)
_REPLACEMENT = re.compile("\ufffd+")
_HTML_TAG = re.compile(
    r"</?(?:a|abbr|b|blockquote|body|br|center|code|div|em|font|h[1-6]|head|hr|html|i|iframe"
    r"|img|input|label|li|link|meta|ol|p|pre|script|small|span|strong|style|sub|sup|table"
    r"|tbody|td|th|thead|tr|u|ul)\b[^<>]{0,200}>",
    re.IGNORECASE,
)
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

#: the kinds of encoding artifact, in the order they are reported
ARTIFACT_KINDS = ("mojibake", "replacement_character", "html_tag", "html_entity", "control")


@dataclass(frozen=True, eq=False)
class TextColumn:
    """The text column read once.

    Attributes:
        column: its name.
        texts: one string per row ("" where the value is missing).
        missing: the value is missing (None or NaN).
        empty: the value is the empty string.
        blank: the value holds only whitespace or invisible characters (not empty).
        keys: an int64 id per row shared by texts equal after normalisation (Unicode
            NFKC, case folded, punctuation removed, whitespace collapsed: the rule the
            split's near-duplicate grouping uses); -1 for missing, empty and blank rows.
    """

    column: str
    texts: np.ndarray
    missing: np.ndarray
    empty: np.ndarray
    blank: np.ndarray
    keys: np.ndarray

    @property
    def present(self) -> np.ndarray:
        """Rows with something to read."""
        return np.asarray(self.keys >= 0)


@dataclass(frozen=True, eq=False)
class Tooling:
    """The base's tokenizer, or why it is not available.

    ``problem`` is None when ``tokenizer`` and ``base`` are loaded; otherwise it says
    why not, with the finding's ``severity`` (``info`` when the ``text`` extra is not
    installed, ``warn`` when ``model.base`` is wrong) and the ``fix``.
    """

    base: BaseCheckpoint | None
    tokenizer: Any
    tokens_read: int
    problem: str | None = None
    severity: Severity = "info"
    fix: str = ""


@dataclass(frozen=True, eq=False)
class TokenCounts:
    """Token counts of the (sampled) non-blank texts under the base tokenizer.

    Attributes:
        positions: the row positions tokenised.
        lengths: tokens per row, special tokens included (what the model is fed).
        content: tokens per row without the special tokens.
        unknown: unknown-token ids per row.
        unknown_words: the most frequent text spans that became the unknown token.
        candidates: non-blank rows before sampling.
        unk_token: the tokenizer's unknown token, or None when it has none.
    """

    positions: np.ndarray
    lengths: np.ndarray
    content: np.ndarray
    unknown: np.ndarray
    unknown_words: tuple[tuple[str, int], ...]
    candidates: int
    unk_token: str | None

    @property
    def sampled(self) -> bool:
        return int(self.positions.size) < self.candidates


def applies_to_text(ctx: AuditContext) -> bool:
    """The text checks run on a text-classification task whose text column is in the data."""
    return (
        ctx.task == "text-classification"
        and ctx.text_column is not None
        and ctx.text_column in ctx.frame.columns
    )


def text_column(ctx: AuditContext) -> TextColumn:
    """The text column of ``ctx``, read and keyed once per audit."""
    return ctx.shared("text.column", lambda: _read(ctx.frame[str(ctx.text_column)]))


def _read(series: pd.Series) -> TextColumn:
    missing = np.asarray(series.isna().to_numpy(), dtype=bool)
    texts = np.array(
        ["" if gone else (v if isinstance(v, str) else str(v)) for v, gone in zip(series, missing)],
        dtype=object,
    )
    codes, uniques = pd.factorize(pd.Series(texts, dtype=object))
    codes = np.asarray(codes, dtype=np.int64)
    raw = [str(u) for u in uniques]
    stripped = [u.strip().strip(_INVISIBLE).strip() for u in raw]
    unique_empty = np.array([u == "" for u in raw], dtype=bool)
    unique_blank = np.array([s == "" and u != "" for u, s in zip(raw, stripped)], dtype=bool)
    normal = normalize_text(raw)
    # a text of symbols only (an emoji, "!!!") normalises to nothing: compare it as it is
    normal = [m if m else s.casefold() for m, s in zip(normal, stripped)]
    unique_keys = np.asarray(pd.factorize(pd.Series(normal, dtype=object))[0], dtype=np.int64)
    empty = unique_empty[codes] & ~missing
    blank = unique_blank[codes] & ~missing
    keys = np.where(missing | empty | blank, -1, unique_keys[codes])
    return TextColumn(
        column=str(series.name),
        texts=texts,
        missing=missing,
        empty=empty,
        blank=blank,
        keys=np.asarray(keys, dtype=np.int64),
    )


def excerpt(text: str, limit: int = _EXCERPT) -> str:
    """``text`` on one line, cut to ``limit`` characters (an ellipsis marks the cut)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def artifact_matches(text: str) -> dict[str, str]:
    """The first match of each kind of encoding artifact in ``text``, by kind."""
    found: dict[str, str] = {}
    for kind, pattern in (
        ("mojibake", _MOJIBAKE),
        ("replacement_character", _REPLACEMENT),
        ("html_tag", _HTML_TAG),
        ("control", _CONTROL),
    ):
        match = pattern.search(text)
        if match is not None:
            found[kind] = match.group(0)
    for match in _ENTITY.finditer(text):
        entity = match.group(0)
        if entity[1] == "#" or entity[1:] in html.entities.html5:
            found["html_entity"] = entity
            break
    return {kind: found[kind] for kind in ARTIFACT_KINDS if kind in found}


def tooling(ctx: AuditContext, *, encoder: bool = False) -> Tooling:
    """The base checkpoint and its tokenizer, loaded once per audit, or why they are not.

    With ``encoder``, the encoder's own dependency (torch) must be installed too.
    """
    if encoder and importlib.util.find_spec("torch") is None:
        return _missing_extra("torch")
    return ctx.shared("text.tooling", lambda: _load_tooling(ctx))


def _load_tooling(ctx: AuditContext) -> Tooling:
    if importlib.util.find_spec("transformers") is None:
        return _missing_extra("transformers")
    try:
        base = resolve_base(ctx.model_base, root=ctx.root)
    except ConfigError as exc:
        return _wrong_base(exc)
    from assay.text.encoder import load_tokenizer

    try:
        tokenizer = load_tokenizer(base)
    except MissingDependencyError as exc:
        return _missing_extra(getattr(exc, "package", "transformers"))
    except ConfigError as exc:
        return _wrong_base(exc)
    return Tooling(base=base, tokenizer=tokenizer, tokens_read=base.tokens_read(ctx.max_length))


def _missing_extra(package: str) -> Tooling:
    return Tooling(
        base=None,
        tokenizer=None,
        tokens_read=0,
        problem=f"the text extra is not installed (no '{package}')",
        severity="info",
        fix="Install it to measure this: pip install 'assay[text]'.",
    )


def _wrong_base(exc: ConfigError) -> Tooling:
    return Tooling(
        base=None,
        tokenizer=None,
        tokens_read=0,
        problem=f"model.base does not load: {exc.what}",
        severity="warn",
        fix=exc.fix or "Point model.base at a complete checkpoint directory.",
    )


def unavailable_finding(check: str, ctx: AuditContext, what: str, tools: Tooling) -> Finding:
    """The note a check leaves when the tokenizer or encoder it needs is not available."""
    return Finding(
        check=check,
        severity=tools.severity,
        columns=(str(ctx.text_column),),
        message=f"could not measure {what}: {tools.problem}",
        evidence={"model_base": ctx.model_base, "reason": tools.problem},
        fix=tools.fix,
    )


def token_counts(ctx: AuditContext, tools: Tooling) -> TokenCounts:
    """Token counts of at most :data:`TOKEN_SAMPLE` non-blank texts, computed once per audit."""
    return ctx.shared("text.tokens", lambda: _count_tokens(ctx, tools))


def _count_tokens(ctx: AuditContext, tools: Tooling) -> TokenCounts:
    column = text_column(ctx)
    candidates = np.flatnonzero(column.present)
    positions = candidates
    if candidates.size > TOKEN_SAMPLE:
        rng = np.random.default_rng(ctx.seed)
        positions = np.sort(rng.choice(candidates, TOKEN_SAMPLE, replace=False))
    tokenizer = tools.tokenizer
    unk_id = tokenizer.unk_token_id
    special = int(tokenizer.num_special_tokens_to_add(pair=False))
    offsets = bool(getattr(tokenizer, "is_fast", False))
    lengths = np.zeros(positions.size, dtype=np.int64)
    unknown = np.zeros(positions.size, dtype=np.int64)
    words: Counter[str] = Counter()
    batch = 512
    for start in range(0, positions.size, batch):
        rows = positions[start : start + batch]
        texts = [str(column.texts[i])[:_TOKENIZE_CHARS] for i in rows]
        encoded = tokenizer(
            texts,
            add_special_tokens=True,
            truncation=False,
            return_attention_mask=False,
            return_token_type_ids=False,
            return_offsets_mapping=offsets,
        )
        for j, ids in enumerate(encoded["input_ids"]):
            lengths[start + j] = len(ids)
            if unk_id is None:
                continue
            hits = [k for k, token in enumerate(ids) if token == unk_id]
            unknown[start + j] = len(hits)
            if hits and offsets:
                spans = encoded["offset_mapping"][j]
                words.update(texts[j][spans[k][0] : spans[k][1]] for k in hits)
    return TokenCounts(
        positions=positions,
        lengths=lengths,
        content=np.maximum(lengths - special, 0),
        unknown=unknown,
        unknown_words=tuple(words.most_common(10)),
        candidates=int(candidates.size),
        unk_token=None if unk_id is None else str(tokenizer.unk_token),
    )
