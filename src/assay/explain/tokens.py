"""Which words move a text classifier: word attributions by occlusion on sampled texts.

A text model reads one column, so column importance says nothing about it. Instead each
sampled text is scored whole and once more without each of its words (up to
:data:`MAX_WORDS` of them); a word's attribution is what removing it costs the score:

* binary: the probability of the positive class (the second class), so a positive
  attribution pushes towards it and a negative one away from it;
* multiclass: the probability of the class the model predicts for the whole text.

The variants of one text are scored in one ``predict_proba`` call, so the method works
for any text model (TF-IDF + linear, a fine-tuned transformer) without knowing its form.
The attributions of a word are averaged over the sampled texts it occurs in; the words
that push most, either way, are kept (:class:`TextTokens`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["MAX_WORDS", "SAMPLE_TEXTS", "TextTokens", "TokenAttribution", "token_attributions"]

#: texts sampled for word attributions
SAMPLE_TEXTS = 24
#: words occluded per text (the first ones): each is one more row to score
MAX_WORDS = 48
#: words kept each way (pushing towards, pushing away)
TOP_WORDS = 15

_WORD = re.compile(r"\S+")
_STRIP = re.compile(r"^\W+|\W+$")


@dataclass(frozen=True)
class TokenAttribution:
    """One word: its mean attribution over the sampled texts it occurs in, and how many."""

    token: str
    mean: float
    texts: int

    def to_dict(self) -> dict[str, Any]:
        return {"token": self.token, "mean": self.mean, "texts": self.texts}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TokenAttribution:
        return cls(str(data["token"]), float(data["mean"]), int(data.get("texts", 0)))


@dataclass(frozen=True)
class TextTokens:
    """The words of one text column that move the model most, by occlusion.

    Attributes:
        column: the text column.
        target: what the attributions are of (e.g. "probability of 'pos'").
        texts: how many texts were sampled.
        towards: the words whose removal lowers ``target`` most (largest mean first).
        away: the words whose removal raises it most (most negative mean first).
        mean_abs: the mean absolute attribution over every occluded word.
    """

    column: str
    target: str
    texts: int
    towards: tuple[TokenAttribution, ...] = ()
    away: tuple[TokenAttribution, ...] = ()
    mean_abs: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "target": self.target, "texts": self.texts,
                "towards": [t.to_dict() for t in self.towards],
                "away": [t.to_dict() for t in self.away], "mean_abs": self.mean_abs}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TextTokens:
        return cls(
            column=str(data["column"]), target=str(data.get("target", "")),
            texts=int(data.get("texts", 0)),
            towards=tuple(TokenAttribution.from_dict(t) for t in data.get("towards", ())),
            away=tuple(TokenAttribution.from_dict(t) for t in data.get("away", ())),
            mean_abs=float(data.get("mean_abs", 0.0)),
        )


def token_attributions(
    model: Any,
    X: pd.DataFrame,
    text_column: str,
    *,
    seed: int = 0,
    sample: int = SAMPLE_TEXTS,
    max_words: int = MAX_WORDS,
    top: int = TOP_WORDS,
) -> TextTokens:
    """Word attributions of ``model`` (a fitted text classifier with ``predict_proba``) on a
    seeded sample of ``X``'s texts; the other columns of a row are kept as they are."""
    texts = X[text_column].astype("string").fillna("")
    chosen = [i for i in range(len(X)) if _WORD.search(str(texts.iloc[i]))]
    rng = np.random.default_rng(seed)
    if len(chosen) > sample:
        chosen = sorted(rng.choice(chosen, size=sample, replace=False).tolist())
    classes = list(getattr(model, "classes_", []))
    binary = len(classes) == 2
    target = f"probability of '{classes[1]}'" if binary else "probability of the predicted class"
    sums: dict[str, float] = defaultdict(float)
    seen: dict[str, int] = defaultdict(int)
    absolute: list[float] = []
    for i in chosen:
        row = X.iloc[[i]]
        text = str(texts.iloc[i])
        spans = [m.span() for m in _WORD.finditer(text)][:max_words]
        variants = [text] + [text[:a] + text[b:] for a, b in spans]
        frame = pd.concat([row] * len(variants), ignore_index=True)
        frame[text_column] = variants
        proba = np.asarray(model.predict_proba(frame), dtype=float)
        column = 1 if binary else int(np.argmax(proba[0]))
        drops = proba[0, column] - proba[1:, column]
        absolute.extend(np.abs(drops).tolist())
        per_text: dict[str, list[float]] = defaultdict(list)
        for (a, b), drop in zip(spans, drops):
            word = _STRIP.sub("", text[a:b]).lower()
            if word:
                per_text[word].append(float(drop))
        for word, values in per_text.items():
            sums[word] += float(np.mean(values))
            seen[word] += 1
    words = [TokenAttribution(w, sums[w] / seen[w], seen[w]) for w in sums]
    # a word in one text only is an anecdote unless little was sampled
    floor = 2 if len(chosen) >= 10 else 1
    common = [w for w in words if w.texts >= floor] or words
    towards = sorted((w for w in common if w.mean > 0), key=lambda w: (-w.mean, w.token))
    away = sorted((w for w in common if w.mean < 0), key=lambda w: (w.mean, w.token))
    return TextTokens(text_column, target, len(chosen), tuple(towards[:top]), tuple(away[:top]),
                      float(np.mean(absolute)) if absolute else 0.0)

