"""Checks on the free text of a text-classification task.

* ``empty_text`` — texts that are missing, empty or only whitespace.
* ``duplicate_text`` — the same text after normalisation on several rows, and the
  copies a split could put on both sides.
* ``conflicting_labels`` — the same normalised text with different labels.
* ``truncated_text`` — texts longer than the tokens the base model reads.
* ``tokenizer_mismatch`` — a high share of unknown tokens under the base tokenizer.
* ``encoding_artifacts`` — mojibake, replacement characters, HTML remnants, control characters.
* ``text_label_errors`` — labels that a classifier on the base encoder's embeddings
  finds implausible (cleanlab's confident learning on out-of-fold probabilities).

They run only on a text-classification task whose text column (``data.text``, or the
only text feature) is in the data. The last three need the ``text`` extra and load
the base checkpoint's tokenizer (and, for label errors, its encoder) lazily; without
the extra they leave a note instead of failing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from assay.audit.base import CHECKS, AuditContext, BaseCheck, Finding, Severity
from assay.audit.checks._text import (
    ARTIFACT_KINDS,
    applies_to_text,
    artifact_matches,
    excerpt,
    text_column,
    token_counts,
    tooling,
    unavailable_finding,
)
from assay.audit.checks.duplicates import WARN_SHARE
from assay.audit.checks.target import LABEL_ERRORS_FOLDS, LabelErrorsCheck, label_text
from assay.config.metrics import CLASSIFICATION_TASKS
from assay.data.keys import near_duplicate_groups

__all__ = [
    "CONFLICT_BLOCK_SHARE",
    "EMPTY_BLOCK_SHARE",
    "TEXT_LABEL_ERRORS_MAX_ROWS",
    "TRUNCATED_WARN_SHARE",
    "UNKNOWN_WARN_SHARE",
    "ConflictingLabelsCheck",
    "DuplicateTextCheck",
    "EmptyTextCheck",
    "EncodingArtifactsCheck",
    "TextLabelErrorsCheck",
    "TokenizerMismatchCheck",
    "TruncatedTextCheck",
]

#: above this share of rows without text the column is more likely lost in loading than
#: sparse, and the metrics partly measure the class prior: the finding blocks
EMPTY_BLOCK_SHARE = 0.10
#: above this share of labelled rows that must be wrong whatever the truth (the copies
#: outside each text's majority label), the conflicts block
CONFLICT_BLOCK_SHARE = 0.05
#: above this share of cut texts, truncation warns (below, it is context)
TRUNCATED_WARN_SHARE = 0.05
#: above this share of unknown tokens, the tokenizer does not fit the text
UNKNOWN_WARN_SHARE = 0.05
#: above this share of rows with encoding artifacts, they warn (below, they are context)
ARTIFACT_WARN_SHARE = 0.01
#: rows embedded for text label errors at most (a seeded sample beyond)
TEXT_LABEL_ERRORS_MAX_ROWS = 5_000
_EXAMPLES = 10
_EXAMPLE_ROWS = 5


@CHECKS.register("empty_text")
class EmptyTextCheck(BaseCheck):
    """Rows whose text is missing, empty or only whitespace (or zero-width characters).

    Such a row gives a text model nothing to read: it is scored on the class prior
    alone, and in training it is label noise. ``warn`` for any; ``block`` above 10% of
    rows, where the text was more likely lost when the data was loaded or joined (the
    wrong ``data.text``, a broken join or encoding) than left out now and then.
    """

    def applies(self, ctx: AuditContext) -> bool:
        return applies_to_text(ctx)

    def run(self, ctx: AuditContext) -> list[Finding]:
        column = text_column(ctx)
        n = len(column.texts)
        gone = column.missing | column.empty | column.blank
        rows = int(gone.sum())
        if rows == 0:
            return []
        share = rows / n
        severity: Severity = "block" if share > EMPTY_BLOCK_SHARE else "warn"
        evidence: dict[str, Any] = {
            "rows": rows,
            "share": round(share, 6),
            "missing": int(column.missing.sum()),
            "empty": int(column.empty.sum()),
            "whitespace_only": int(column.blank.sum()),
            "examples": np.flatnonzero(gone)[:_EXAMPLES].tolist(),
            "block_share": EMPTY_BLOCK_SHARE,
        }
        if ctx.target is not None and ctx.target in ctx.frame.columns:
            labels = ctx.frame[ctx.target].iloc[np.flatnonzero(gone)].dropna()
            counts = labels.map(label_text).value_counts().head(_EXAMPLES)
            evidence["labels"] = {str(k): int(v) for k, v in counts.items()}
        kinds = (("missing", "missing"), ("empty", "empty"), ("whitespace_only", "blank"))
        parts = [f"{evidence[k]:,} {label}" for k, label in kinds if evidence[k]]
        why = (
            f"; above {EMPTY_BLOCK_SHARE:.0%} the text was more likely lost in loading"
            if severity == "block"
            else ""
        )
        return [
            Finding(
                check=self.alias,
                severity=severity,
                columns=(column.column,),
                message=(
                    f"{rows:,} rows ({share:.2%}) of '{column.column}' have no text "
                    f"({', '.join(parts)}){why}"
                ),
                evidence=evidence,
                fix=(
                    "Drop the rows without text before training: a text model has nothing to "
                    "read in them and scores them on the class prior alone. If many are "
                    "missing, check data.text and how the file was read or joined."
                ),
            )
        ]


@CHECKS.register("duplicate_text")
class DuplicateTextCheck(BaseCheck):
    """The same text, after normalisation, on several rows.

    Texts are compared after Unicode NFKC, case folding, removing punctuation and
    collapsing whitespace: the rule the split's near-duplicate grouping uses. The
    split keeps copies that also agree on the label and the other features in one
    part; copies that differ there (``at_risk_groups``) are split apart independently,
    and the evidence gives how many groups a random split with the configured sizes
    is expected to put in both train and test, where the test set then scores texts
    the model trained on. ``warn`` when the copies beyond the first exceed 1% of
    rows (as for ``duplicate_rows``), ``info`` below.
    """

    def applies(self, ctx: AuditContext) -> bool:
        return applies_to_text(ctx) and len(ctx.frame) >= 2

    def run(self, ctx: AuditContext) -> list[Finding]:
        column = text_column(ctx)
        keys = column.keys
        present = np.flatnonzero(keys >= 0)
        if present.size < 2:
            return []
        sizes = np.bincount(keys[present])
        repeated = np.flatnonzero(sizes >= 2)
        if repeated.size == 0:
            return []
        n = len(keys)
        in_groups = int(sizes[repeated].sum())
        extra = in_groups - int(repeated.size)
        share = extra / n
        members = present[np.isin(keys[present], repeated)]
        variants = _groups_with_variants(column.texts, keys, members)
        blocks = _split_blocks(ctx, members)
        at_risk, expected = _straddling(
            keys[members], blocks, ctx.test_size, ctx.validation_size
        )
        examples = []
        for g in repeated[np.argsort(-sizes[repeated], kind="stable")][:_EXAMPLES]:
            rows = np.flatnonzero(keys == g)
            examples.append(
                {
                    "text": excerpt(str(column.texts[rows[0]])),
                    "copies": int(rows.size),
                    "rows": rows[:_EXAMPLE_ROWS].tolist(),
                    "variants": sorted({excerpt(str(column.texts[r])) for r in rows})[:3],
                }
            )
        severity: Severity = "warn" if share > WARN_SHARE else "info"
        risk = (
            f"; {at_risk:,} of the groups differ in label or other features, so the split "
            f"cannot keep them together: about {expected:.1f} would straddle train and test"
            if at_risk
            else "; they agree on label and features, so the split keeps each group in one part"
        )
        return [
            Finding(
                check=self.alias,
                severity=severity,
                columns=(column.column,),
                message=(
                    f"{extra:,} extra rows ({share:.2%}) repeat a text of '{column.column}' "
                    f"(after normalising case, whitespace, punctuation and Unicode): "
                    f"{repeated.size:,} groups of {in_groups:,} rows{risk}"
                ),
                evidence={
                    "rows": extra,
                    "share": round(share, 6),
                    "groups": int(repeated.size),
                    "rows_in_groups": in_groups,
                    "groups_with_variants": variants,
                    "at_risk_groups": at_risk,
                    "expected_straddling_train_test": round(expected, 3),
                    "test_size": ctx.test_size,
                    "validation_size": ctx.validation_size,
                    "examples": examples,
                },
                fix=(
                    "Keep one row per normalised text before training. Copies that differ in "
                    "label or other features are not kept together by the split: resolve "
                    "them (see conflicting_labels), or the test set scores texts the model "
                    "trained on and its metrics are inflated."
                ),
            )
        ]


@CHECKS.register("conflicting_labels")
class ConflictingLabelsCheck(BaseCheck):
    """The same normalised text with different labels.

    At least the copies outside each text's majority label are wrong, whatever the
    truth: that share caps every model's accuracy and is noise in training and
    evaluation alike. ``warn`` for any conflict; ``block`` when those copies exceed
    5% of labelled rows, a ceiling that hides the differences between candidates.
    """

    def applies(self, ctx: AuditContext) -> bool:
        return (
            applies_to_text(ctx)
            and ctx.target is not None
            and ctx.target in ctx.frame.columns
            and ctx.task in CLASSIFICATION_TASKS
        )

    def run(self, ctx: AuditContext) -> list[Finding]:
        column = text_column(ctx)
        target = str(ctx.target)
        labels = np.asarray(pd.factorize(ctx.frame[target])[0], dtype=np.int64)
        usable = np.flatnonzero((column.keys >= 0) & (labels >= 0))
        if usable.size < 2:
            return []
        keys = column.keys[usable]
        width = int(labels[usable].max()) + 1
        pair_counts = pd.Series(keys * width + labels[usable]).value_counts(sort=False)
        pair_keys = pair_counts.index.to_numpy(dtype=np.int64)
        group_of_pair = pair_keys // width
        distinct = np.bincount(group_of_pair)
        conflicting = np.flatnonzero(distinct >= 2)
        if conflicting.size == 0:
            return []
        sizes = np.bincount(keys)
        majority = np.zeros(sizes.size, dtype=np.int64)
        np.maximum.at(majority, group_of_pair, pair_counts.to_numpy(dtype=np.int64))
        forced = int((sizes[conflicting] - majority[conflicting]).sum())
        in_conflict = usable[np.isin(keys, conflicting)]
        share = forced / usable.size
        values = ctx.frame[target]
        examples = []
        for g in conflicting[np.argsort(-sizes[conflicting], kind="stable")][:_EXAMPLES]:
            rows = usable[keys == g]
            counts = values.iloc[rows].map(label_text).value_counts()
            examples.append(
                {
                    "text": excerpt(str(column.texts[rows[0]])),
                    "rows": rows[:_EXAMPLE_ROWS].tolist(),
                    "labels": {str(k): int(v) for k, v in counts.items()},
                }
            )
        severity: Severity = "block" if share > CONFLICT_BLOCK_SHARE else "warn"
        shown = "; ".join(
            f"'{excerpt(e['text'], 40)}' -> {', '.join(e['labels'])}" for e in examples[:3]
        )
        return [
            Finding(
                check=self.alias,
                severity=severity,
                columns=(column.column, target),
                message=(
                    f"{conflicting.size:,} texts of '{column.column}' appear with different "
                    f"labels of '{target}' ({in_conflict.size:,} rows); at least {forced:,} "
                    f"labels ({share:.2%}) are wrong whatever the truth; e.g. {shown}"
                ),
                evidence={
                    "groups": int(conflicting.size),
                    "rows": int(in_conflict.size),
                    "wrong_at_least": forced,
                    "share": round(share, 6),
                    "block_share": CONFLICT_BLOCK_SHARE,
                    "examples": examples,
                },
                fix=(
                    "Give each text one label from its source of truth (or the majority of "
                    "its copies) and keep one row per text; if such texts are truly "
                    "ambiguous, merge the classes or add the context the label depends on."
                ),
            )
        ]


@CHECKS.register("truncated_text")
class TruncatedTextCheck(BaseCheck):
    """Texts longer than the tokens the model reads: their end is cut off.

    Texts are counted in tokens of the base checkpoint's own tokenizer (special tokens
    included); the model reads ``model.max_length`` tokens (default 128), capped by the
    base's maximum. At most 20,000 texts are tokenised (a seeded sample). ``warn``
    when more than 5% of texts are cut, ``info`` below; nothing when none is.
    """

    def applies(self, ctx: AuditContext) -> bool:
        return applies_to_text(ctx)

    def run(self, ctx: AuditContext) -> list[Finding]:
        tools = tooling(ctx)
        if tools.problem is not None or tools.base is None:
            return [unavailable_finding(self.alias, ctx, "the length of the texts", tools)]
        counts = token_counts(ctx, tools)
        checked = int(counts.positions.size)
        limit = tools.tokens_read
        cut = counts.lengths > limit
        rows = int(cut.sum())
        if rows == 0:
            return []
        share = rows / checked
        lost = float(np.maximum(counts.lengths - limit, 0).sum() / counts.lengths.sum())
        q50, q90, q95 = (int(np.ceil(np.quantile(counts.lengths, q))) for q in (0.5, 0.9, 0.95))
        longest = np.argsort(-counts.lengths, kind="stable")[:_EXAMPLES]
        base_max = tools.base.max_length
        column = text_column(ctx)
        examples = [
            {
                "row": int(counts.positions[i]),
                "tokens": int(counts.lengths[i]),
                "text": excerpt(str(column.texts[counts.positions[i]]), 80),
            }
            for i in longest
        ]
        if q95 > limit and limit < base_max:
            wanted = min(base_max, int(-(-q95 // 32) * 32))
            fix = (
                f"Raise model.max_length to {wanted} (the 95th percentile is {q95} tokens; "
                f"the base reads at most {base_max}), or, for texts beyond that, split them "
                "into chunks and combine the chunks' predictions."
            )
        else:
            fix = (
                f"The base reads at most {base_max} tokens: split long texts into chunks "
                "and combine the chunks' predictions, or keep the part that carries the "
                "label (often the beginning and the end); raising model.max_length "
                + ("cannot help." if limit >= base_max else f"to {base_max} helps only a little.")
            )
        severity: Severity = "warn" if share > TRUNCATED_WARN_SHARE else "info"
        sample = f" (a seeded sample of {checked:,})" if counts.sampled else ""
        return [
            Finding(
                check=self.alias,
                severity=severity,
                columns=(column.column,),
                message=(
                    f"{rows:,} of {checked:,} texts{sample} ({share:.2%}) are longer than the "
                    f"{limit} tokens the model reads and are cut; {lost:.1%} of all tokens are "
                    "never seen"
                ),
                evidence={
                    "rows": rows,
                    "share": round(share, 6),
                    "rows_checked": checked,
                    "sampled": counts.sampled,
                    "tokens_read": limit,
                    "model_max_length": ctx.max_length,
                    "base_max_length": base_max,
                    "tokens_lost_share": round(lost, 6),
                    "length_median": q50,
                    "length_p90": q90,
                    "length_p95": q95,
                    "length_max": int(counts.lengths.max()),
                    "examples": examples,
                },
                fix=fix,
            )
        ]


@CHECKS.register("tokenizer_mismatch")
class TokenizerMismatchCheck(BaseCheck):
    """A high share of unknown tokens under the base tokenizer.

    A tokenizer meant for the texts' language and domain splits unseen words into
    known pieces; many unknown tokens mean another language or script, a domain
    the vocabulary never saw, broken encoding, or a tokenizer from another
    checkpoint. ``warn`` when more than 5% of the tokens (special tokens aside) are
    unknown. Tokenizers without an unknown token (byte-level BPE) find nothing.
    """

    def applies(self, ctx: AuditContext) -> bool:
        return applies_to_text(ctx)

    def run(self, ctx: AuditContext) -> list[Finding]:
        tools = tooling(ctx)
        if tools.problem is not None or tools.base is None:
            return [unavailable_finding(self.alias, ctx, "the tokenizer's fit", tools)]
        counts = token_counts(ctx, tools)
        total = int(counts.content.sum())
        unknown = int(counts.unknown.sum())
        if counts.unk_token is None or total == 0:
            return []
        share = unknown / total
        if share <= UNKNOWN_WARN_SHARE:
            return []
        column = text_column(ctx)
        checked = int(counts.positions.size)
        rows = int((counts.unknown > 0).sum())
        per_row = counts.unknown / np.maximum(counts.content, 1)
        worst = np.argsort(-per_row, kind="stable")[:_EXAMPLES]
        words = [{"text": w, "count": c} for w, c in counts.unknown_words]
        shown = ", ".join(f"'{w['text']}'" for w in words[:5])
        sample = f" (a seeded sample of {checked:,} texts)" if counts.sampled else ""
        return [
            Finding(
                check=self.alias,
                severity="warn",
                columns=(column.column,),
                message=(
                    f"{share:.1%} of the tokens of '{column.column}'{sample} are unknown "
                    f"({counts.unk_token}) to the tokenizer of {tools.base.source}, "
                    f"in {rows:,} of {checked:,} texts"
                    + (f"; e.g. {shown}" if shown else "")
                ),
                evidence={
                    "unknown_share": round(share, 6),
                    "unknown_tokens": unknown,
                    "tokens": total,
                    "rows_with_unknown": rows,
                    "rows_checked": checked,
                    "sampled": counts.sampled,
                    "unk_token": counts.unk_token,
                    "warn_share": UNKNOWN_WARN_SHARE,
                    "unknown_words": words,
                    "examples": [
                        {
                            "row": int(counts.positions[i]),
                            "unknown_share": round(float(per_row[i]), 4),
                            "text": excerpt(str(column.texts[counts.positions[i]]), 80),
                        }
                        for i in worst
                        if counts.unknown[i] > 0
                    ],
                },
                fix=(
                    "Choose a base whose tokenizer covers the texts' language and domain (a "
                    "multilingual checkpoint for text that is not English), and check that "
                    "model.base's tokenizer was saved with its weights; repair encoding "
                    "artifacts first if encoding_artifacts reports any."
                ),
            )
        ]


_ARTIFACT_FIX = {
    "mojibake": "decode the file as UTF-8 (data.encoding) or repair the text with ftfy.fix_text",
    "replacement_character": "re-read the source with its true encoding: U+FFFD marks bytes "
    "that were lost when it was decoded with the wrong one",
    "html_tag": "strip markup before training (e.g. BeautifulSoup(text).get_text())",
    "html_entity": "unescape entities (html.unescape)",
    "control": "remove control characters",
}


@CHECKS.register("encoding_artifacts")
class EncodingArtifactsCheck(BaseCheck):
    """Mojibake, replacement characters, HTML remnants and control characters in the text.

    Mojibake is UTF-8 read as cp1252 or latin-1 ("Ã©" for é, "â€™" for ’);
    U+FFFD marks bytes lost to a wrong decoding; HTML tags (``<br />``) and entities
    (``&amp;``, ``&#39;``) are markup left in; control characters are C0/C1 codes
    other than tab and line breaks. The model learns these as words and serving text
    rarely has them. ``warn`` above 1% of rows, ``info`` below.
    """

    def applies(self, ctx: AuditContext) -> bool:
        return applies_to_text(ctx)

    def run(self, ctx: AuditContext) -> list[Finding]:
        column = text_column(ctx)
        n = len(column.texts)
        present = np.flatnonzero(column.present)
        if present.size == 0:
            return []
        codes, uniques = pd.factorize(pd.Series(column.texts[present], dtype=object))
        found = [artifact_matches(str(u)) for u in uniques]
        by_kind: dict[str, dict[str, Any]] = {}
        any_rows = np.zeros(present.size, dtype=bool)
        for kind in ARTIFACT_KINDS:
            hit_uniques = np.array([kind in f for f in found], dtype=bool)
            if not hit_uniques.any():
                continue
            hit = hit_uniques[codes]
            any_rows |= hit
            where = np.flatnonzero(hit)
            by_kind[kind] = {
                "rows": int(where.size),
                "share": round(where.size / n, 6),
                "examples": [
                    {
                        "row": int(present[i]),
                        "match": _visible(found[codes[i]][kind]),
                        "text": excerpt(str(column.texts[present[i]]), 80),
                    }
                    for i in where[:_EXAMPLE_ROWS]
                ],
            }
        rows = int(any_rows.sum())
        if rows == 0:
            return []
        share = rows / n
        severity: Severity = "warn" if share > ARTIFACT_WARN_SHARE else "info"
        listed = ", ".join(f"{k.replace('_', ' ')} in {v['rows']:,}" for k, v in by_kind.items())
        fixes = "; ".join(_ARTIFACT_FIX[k] for k in by_kind)
        return [
            Finding(
                check=self.alias,
                severity=severity,
                columns=(column.column,),
                message=(
                    f"{rows:,} rows ({share:.2%}) of '{column.column}' carry encoding "
                    f"artifacts: {listed}"
                ),
                evidence={"rows": rows, "share": round(share, 6), "kinds": by_kind},
                fix=(
                    f"Clean the text where it is loaded: {fixes}. Apply the same cleaning "
                    "to the text the model will serve, so training and serving read alike."
                ),
            )
        ]


@CHECKS.register("text_label_errors")
class TextLabelErrorsCheck(LabelErrorsCheck):
    """Likely label errors, from a classifier on the base encoder's embeddings.

    The text is embedded by the base checkpoint (mean-pooled, L2-normalised), and a
    logistic regression gives 5-fold out-of-fold probabilities (folds seeded by
    ``seed``); cleanlab's confident learning and the warning rule are those of
    ``label_errors``, on a seeded sample of at most 5,000 labelled rows (embedding
    costs seconds per thousand texts); rows without text are left to ``empty_text``.
    Examples show an excerpt of the text. Needs
    the ``text`` extra; without it the check leaves a note.
    """

    def applies(self, ctx: AuditContext) -> bool:
        return applies_to_text(ctx) and super().applies(ctx)

    def run(self, ctx: AuditContext) -> list[Finding]:
        tools = tooling(ctx, encoder=True)
        if tools.problem is not None or tools.base is None:
            return [unavailable_finding(self.alias, ctx, "label errors in the text", tools)]
        return super().run(ctx)

    def _labelled(self, ctx: AuditContext) -> pd.Series:
        """Labelled rows that have text (rows without are ``empty_text``'s)."""
        labelled = super()._labelled(ctx)
        return labelled[text_column(ctx).present[labelled.index.to_numpy()]]

    def _max_rows(self, ctx: AuditContext) -> int:
        return min(ctx.label_errors_max_rows, TEXT_LABEL_ERRORS_MAX_ROWS)

    def _describe_row(self, ctx: AuditContext, position: int) -> dict[str, Any]:
        return {"text": excerpt(str(text_column(ctx).texts[position]))}

    def _out_of_fold(
        self, ctx: AuditContext, positions: np.ndarray, labels: np.ndarray, leaking: list[str]
    ) -> tuple[np.ndarray | None, str]:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold, cross_val_predict
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        from assay.text.encoder import TextEncoder

        column = text_column(ctx)
        if column.column in leaking:
            return None, ""
        tools = tooling(ctx)
        if tools.base is None:
            return None, ""
        encoder = TextEncoder(tools.base, max_length=tools.tokens_read)
        embeddings = encoder.encode([str(t) for t in column.texts[positions]])
        cv = StratifiedKFold(n_splits=LABEL_ERRORS_FOLDS, shuffle=True, random_state=ctx.seed)
        # unit-length embeddings give logistic regression tiny inputs: standardised, its
        # probabilities are as confident as the embeddings allow
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        probs = cross_val_predict(model, embeddings, labels, cv=cv, method="predict_proba")
        return np.asarray(probs, dtype=np.float64), (
            f"cleanlab confident learning on {LABEL_ERRORS_FOLDS}-fold out-of-fold "
            f"probabilities of logistic regression on standardised {tools.base.source} "
            "embeddings of "
            f"'{column.column}' ({tools.tokens_read} tokens per text)"
        )


def _visible(match: str) -> str:
    """A match as shown in evidence: control characters as escapes."""
    return "".join(
        c if c.isprintable() or c in "\t\n" else f"\\x{ord(c):02x}" if ord(c) < 256 else c
        for c in match
    )


def _groups_with_variants(texts: np.ndarray, keys: np.ndarray, members: np.ndarray) -> int:
    """How many duplicate groups hold texts that differ before normalisation."""
    frame = pd.DataFrame({"key": keys[members], "text": texts[members]})
    return int((frame.groupby("key")["text"].nunique() > 1).sum())


def _split_blocks(ctx: AuditContext, members: np.ndarray) -> np.ndarray:
    """The block of each row as the split forms it: near duplicates on features + target."""
    columns = list(ctx.features)
    if ctx.target is not None and ctx.target in ctx.frame.columns:
        columns.append(ctx.target)
    if not columns:
        return np.arange(members.size, dtype=np.int64)
    return near_duplicate_groups(ctx.frame.iloc[members], columns, seed=ctx.seed)


def _straddling(
    keys: np.ndarray, blocks: np.ndarray, test_size: float, validation_size: float
) -> tuple[int, float]:
    """Text groups split over several blocks, and how many a random split puts in train and test.

    A random split places each block in train, validation or test independently with
    the split's shares; a group of ``k`` blocks has one in train and one in test with
    probability ``1 - (1 - p_train)^k - (1 - p_test)^k + p_validation^k``.
    """
    frame = pd.DataFrame({"key": keys, "block": blocks})
    k = frame.groupby("key")["block"].nunique().to_numpy(dtype=np.float64)
    k = k[k >= 2]
    if k.size == 0:
        return 0, 0.0
    train = 1.0 - test_size - validation_size
    both = 1.0 - (1.0 - train) ** k - (1.0 - test_size) ** k + validation_size**k
    return int(k.size), float(both.sum())
