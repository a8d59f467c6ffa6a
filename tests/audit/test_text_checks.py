"""The text checks: known answers on planted defects, and silence on clean text."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from assay.audit import AuditContext, Finding, run_audit
from assay.audit.checks._text import artifact_matches
from assay.audit.checks.text import TextLabelErrorsCheck
from assay.audit.runner import audit
from assay.config.spec import ProjectSpec
from assay.data import Dataset
from assay.testing.checkpoints import tiny_checkpoint

TEXT_CHECKS = [
    "empty_text",
    "duplicate_text",
    "conflicting_labels",
    "truncated_text",
    "tokenizer_mismatch",
    "encoding_artifacts",
    "text_label_errors",
]
SPORT = "match goal team coach season player score league win referee".split()
FOOD = "recipe oven flour sugar butter bake taste dinner spice salad".split()
#: Cyrillic words: every one is a single unknown token under the tiny WordPiece vocabulary
RUSSIAN = "привет мир как дела хорошо спасибо большое пожалуйста".split()


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny checkpoint that reads 64 tokens and knows the corpus' words."""
    return tiny_checkpoint(tmp_path_factory.mktemp("bases") / "tiny", [*SPORT, *FOOD])


@pytest.fixture(scope="module")
def short_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same vocabulary in a checkpoint that reads at most 16 tokens."""
    folder = tmp_path_factory.mktemp("bases") / "short"
    return tiny_checkpoint(folder, [*SPORT, *FOOD], max_length=16)


def corpus(rows: int = 200, *, seed: int = 0) -> pd.DataFrame:
    """Two alternating classes with disjoint vocabularies: 5 to 8 words of the class each.

    With disjoint words even a random-weight encoder separates the classes, so the
    labels are learnable from the text; every text is distinct and at most 10 tokens.
    """
    rng = np.random.default_rng(seed)
    labels = np.where(np.arange(rows) % 2 == 0, "sport", "food")
    seen: set[str] = set()
    texts = []
    for label in labels:
        text = ""
        while not text or text in seen:
            words = rng.choice(SPORT if label == "sport" else FOOD, int(rng.integers(5, 9)))
            text = " ".join(words)
        seen.add(text)
        texts.append(text)
    return pd.DataFrame({"text": texts, "label": labels})


def context(frame: pd.DataFrame, base: Path | str | None, **kw: Any) -> AuditContext:
    settings: dict[str, Any] = {
        "target": "label",
        "task": "text-classification",
        "text_column": "text",
        "model_base": None if base is None else str(base),
        "seed": 0,
        **kw,
    }
    return AuditContext(Dataset.from_frame(frame), **settings)


def findings(ctx: AuditContext, *checks: str) -> list[Finding]:
    report = run_audit(ctx, only=list(checks) or TEXT_CHECKS)
    json.dumps(report.to_dict(), allow_nan=False)
    for finding in report.findings:
        assert Finding.from_dict(finding.to_dict()) == finding
        assert finding.fix
    return list(report.findings)


def one(found: list[Finding], check: str) -> Finding:
    matching = [f for f in found if f.check == check]
    assert len(matching) == 1, [f.message for f in found]
    return matching[0]


def with_texts(frame: pd.DataFrame, planted: dict[int, Any]) -> pd.DataFrame:
    out = frame.copy()
    texts = out["text"].astype(object).to_numpy().copy()
    for row, text in planted.items():
        texts[row] = text
    out["text"] = pd.Series(texts, dtype=object)
    return out


# --------------------------------------------------------------------------- clean


def test_clean_text_raises_nothing(tiny_base: Path) -> None:
    report = run_audit(context(corpus(), tiny_base), only=TEXT_CHECKS)
    assert report.findings == ()
    assert set(report.checks_run) == set(TEXT_CHECKS)


def test_text_checks_run_only_on_a_text_task(tiny_base: Path) -> None:
    frame = with_texts(corpus(), {0: None, 1: None})
    binary = run_audit(context(frame, tiny_base, task="binary"), only=TEXT_CHECKS)
    no_column = run_audit(context(frame, tiny_base, text_column=None), only=TEXT_CHECKS)
    assert binary.checks_run == () and binary.findings == ()
    assert no_column.checks_run == () and no_column.findings == ()


# --------------------------------------------------------------------------- empty


def test_planted_empty_texts_are_counted_by_kind(tiny_base: Path) -> None:
    frame = with_texts(corpus(), {3: None, 10: None, 20: "", 31: "   \t\n", 42: "\u200b "})
    found = one(findings(context(frame, tiny_base), "empty_text"), "empty_text")
    assert found.severity == "warn"
    assert found.columns == ("text",)
    ev = found.evidence
    assert (ev["rows"], ev["missing"], ev["empty"], ev["whitespace_only"]) == (5, 2, 1, 2)
    assert ev["share"] == pytest.approx(5 / 200)
    assert ev["examples"] == [3, 10, 20, 31, 42]
    assert ev["labels"] == {"sport": 3, "food": 2}


def test_many_empty_texts_block(tiny_base: Path) -> None:
    frame = with_texts(corpus(), {i: "" for i in range(0, 200, 8)})  # 25 rows, 12.5%
    found = one(findings(context(frame, tiny_base), "empty_text"), "empty_text")
    assert found.severity == "block"
    assert found.evidence["rows"] == 25
    assert "more likely lost" in found.message


# --------------------------------------------------------------------------- duplicates


def test_planted_duplicates_match_across_case_punctuation_and_unicode(tiny_base: Path) -> None:
    frame = corpus()
    texts = frame["text"].tolist()
    # rows 0 and 2 are sport, 1 is food: each copy keeps its original's label
    planted = {
        100: texts[0].upper() + "!!!",
        102: "  " + texts[0].replace(" ", "   ") + " .",
        104: texts[2].title() + "?",
        # full-width letters and digits are the same text after NFKC
        101: "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else c for c in texts[1]),
    }
    frame = with_texts(frame, planted)
    found = findings(context(frame, tiny_base), "duplicate_text", "conflicting_labels")
    duplicate = one(found, "duplicate_text")
    ev = duplicate.evidence
    assert (ev["groups"], ev["rows"], ev["rows_in_groups"]) == (3, 4, 7)
    assert ev["groups_with_variants"] == 3
    # same label, no other feature: the split keeps every group in one part
    assert ev["at_risk_groups"] == 0 and ev["expected_straddling_train_test"] == 0
    assert duplicate.severity == "warn"  # 4 extra rows are 2% of 200
    assert ev["examples"][0]["copies"] == 3 and ev["examples"][0]["rows"] == [0, 100, 102]
    assert not [f for f in found if f.check == "conflicting_labels"]


def test_duplicates_the_split_cannot_keep_together_are_expected_to_straddle(
    tiny_base: Path,
) -> None:
    frame = corpus()
    frame["source"] = np.where(np.arange(len(frame)) < 100, "web", "app")
    texts = frame["text"].tolist()
    frame = with_texts(frame, {100: texts[0], 102: texts[2]})  # same text and label, other source
    duplicate = one(findings(context(frame, tiny_base), "duplicate_text"), "duplicate_text")
    ev = duplicate.evidence
    assert ev["groups"] == 2 and ev["at_risk_groups"] == 2
    # two blocks each: P(one in train and one in test) = 1 - 0.4^2 - 0.8^2 + 0.2^2 = 0.24
    assert ev["expected_straddling_train_test"] == pytest.approx(2 * 0.24)
    assert duplicate.severity == "info"  # 2 extra rows are 1% of 200, not above
    assert "straddle" in duplicate.message


# --------------------------------------------------------------------------- conflicts


def test_planted_conflicting_pairs_are_listed(tiny_base: Path) -> None:
    frame = corpus()
    texts = frame["text"].tolist()
    # rows 1 and 3 are food; their copies land on sport rows 50 and 60
    frame = with_texts(frame, {50: texts[1].upper(), 60: texts[3] + "."})
    found = one(findings(context(frame, tiny_base), "conflicting_labels"), "conflicting_labels")
    assert found.severity == "warn"
    assert found.columns == ("text", "label")
    ev = found.evidence
    assert (ev["groups"], ev["rows"], ev["wrong_at_least"]) == (2, 4, 2)
    assert ev["share"] == pytest.approx(2 / 200)
    assert [e["rows"] for e in ev["examples"]] == [[1, 50], [3, 60]]
    assert ev["examples"][0]["labels"] == {"food": 1, "sport": 1}


def test_material_conflicts_block(tiny_base: Path) -> None:
    frame = corpus()
    texts = frame["text"].tolist()
    # 12 food texts copied onto sport rows: 12 of 200 labels (6%) are wrong whatever the truth
    frame = with_texts(frame, {100 + 2 * k: texts[2 * k + 1] for k in range(12)})
    found = one(findings(context(frame, tiny_base), "conflicting_labels"), "conflicting_labels")
    assert found.severity == "block"
    assert found.evidence["wrong_at_least"] == 12


def test_a_majority_does_not_excuse_the_minority(tiny_base: Path) -> None:
    frame = corpus()
    text = frame["text"][0]  # a sport text, copied on two more sport rows and one food row
    frame = with_texts(frame, {2: text, 4: text, 5: text})
    found = one(findings(context(frame, tiny_base), "conflicting_labels"), "conflicting_labels")
    assert found.evidence["wrong_at_least"] == 1
    assert found.evidence["examples"][0]["labels"] == {"sport": 3, "food": 1}


# --------------------------------------------------------------------------- truncation


def test_planted_long_texts_are_cut_by_a_16_token_base(short_base: Path) -> None:
    frame = corpus()
    long_rows = list(range(0, 200, 10))  # 20 rows of 40 words: 42 tokens each
    frame = with_texts(frame, {r: " ".join(["goal"] * 40) for r in long_rows})
    found = one(findings(context(frame, short_base), "truncated_text"), "truncated_text")
    ev = found.evidence
    assert ev["tokens_read"] == 16 and ev["base_max_length"] == 16
    assert ev["rows"] == 20 and ev["rows_checked"] == 200
    assert found.severity == "warn"  # 10% of texts
    assert [(e["row"], e["tokens"]) for e in ev["examples"]] == [(r, 42) for r in long_rows[:10]]
    assert ev["length_max"] == 42
    # the base reads no more than 16: raising model.max_length cannot help
    assert "chunks" in found.fix and "cannot help" in found.fix


def test_model_max_length_sets_the_cut_and_the_fix_says_raise_it(tiny_base: Path) -> None:
    frame = corpus()
    frame = with_texts(frame, {r: " ".join(["salad"] * 20) for r in range(1, 200, 4)})
    found = one(
        findings(context(frame, tiny_base, max_length=12), "truncated_text"), "truncated_text"
    )
    ev = found.evidence
    assert ev["tokens_read"] == 12 and ev["model_max_length"] == 12
    assert ev["base_max_length"] == 64
    long_or_cut = ev["rows"]
    assert long_or_cut >= 50  # the 50 planted rows (22 tokens), plus any corpus text over 12
    assert ev["length_p95"] == 22
    assert "Raise model.max_length to 32" in found.fix


def test_a_few_cut_texts_are_context(short_base: Path) -> None:
    frame = with_texts(corpus(), {7: " ".join(["oven"] * 30)})
    found = one(findings(context(frame, short_base), "truncated_text"), "truncated_text")
    assert found.severity == "info" and found.evidence["rows"] == 1


# --------------------------------------------------------------------------- tokenizer


def test_foreign_words_are_unknown_to_the_tokenizer(tiny_base: Path) -> None:
    rng = np.random.default_rng(1)
    planted = {r: " ".join(rng.choice(RUSSIAN, 6)) for r in range(0, 200, 5)}  # 40 rows
    frame = with_texts(corpus(), planted)
    found = one(findings(context(frame, tiny_base), "tokenizer_mismatch"), "tokenizer_mismatch")
    ev = found.evidence
    assert found.severity == "warn"
    assert ev["unk_token"] == "[UNK]"
    assert ev["unknown_tokens"] == 40 * 6
    assert ev["rows_with_unknown"] == 40
    assert ev["unknown_share"] > 0.05
    assert {w["text"] for w in ev["unknown_words"]} <= set(RUSSIAN)
    assert ev["examples"][0]["unknown_share"] == 1.0


def test_a_few_unknown_words_are_not_a_mismatch(tiny_base: Path) -> None:
    frame = with_texts(corpus(), {0: "привет match goal team coach"})
    assert findings(context(frame, tiny_base), "tokenizer_mismatch") == []


# --------------------------------------------------------------------------- encoding


def test_planted_mojibake_html_and_control_characters(tiny_base: Path) -> None:
    planted = {
        5: "the cafÃ© was great",
        6: "it wasnâ€™t bad",
        7: "lost \ufffd bytes",
        8: "first line<br />second line",
        9: "fish &amp; chips",
        10: "it&#39;s fine",
        11: "bell\x07 in text",
    }
    frame = with_texts(corpus(), planted)
    found = one(findings(context(frame, tiny_base), "encoding_artifacts"), "encoding_artifacts")
    ev = found.evidence
    assert found.severity == "warn"  # 7 rows, 3.5%
    assert ev["rows"] == 7
    rows = {k: [e["row"] for e in v["examples"]] for k, v in ev["kinds"].items()}
    assert rows == {
        "mojibake": [5, 6],
        "replacement_character": [7],
        "html_tag": [8],
        "html_entity": [9, 10],
        "control": [11],
    }
    matches = {k: [e["match"] for e in v["examples"]] for k, v in ev["kinds"].items()}
    assert matches["mojibake"] == ["Ã©", "â€™"]
    assert matches["control"] == ["\\x07"]
    assert "ftfy" in found.fix and "html.unescape" in found.fix


@pytest.mark.parametrize(
    "text",
    [
        "café naïve São Paulo Ärger Ça «ÉRIC» Øre, SÃO PAULO",
        "R&D; Q&A and &foo; are not entities",
        "x<y and z>w, <3, a -> b",
        "tabs\tand\nnew lines",
        "emoji 😍 and em dash — fine",
    ],
)
def test_ordinary_text_has_no_artifacts(text: str) -> None:
    assert artifact_matches(text) == {}


# --------------------------------------------------------------------------- label errors


def test_planted_flipped_labels_are_found(tiny_base: Path) -> None:
    frame = corpus(300, seed=3)
    # 30 rows (10%) of both classes: noise that does not depend on the text
    flipped = sorted(np.random.default_rng(5).choice(300, 30, replace=False).tolist())
    labels = frame["label"].to_numpy().copy()
    labels[flipped] = np.where(labels[flipped] == "sport", "food", "sport")
    frame["label"] = labels
    found = one(findings(context(frame, tiny_base), "text_label_errors"), "text_label_errors")
    ev = found.evidence
    assert found.severity == "warn"
    assert found.columns == ("label",)
    listed = set(ev["rows"])
    assert len(listed & set(flipped)) >= 18  # at least 60% of the planted errors are listed
    assert len(listed - set(flipped)) <= 2
    example = ev["examples"][0]
    assert example["row"] in flipped
    assert example["text"] == frame["text"][example["row"]]
    assert example["suggested"] != example["given"] == labels[example["row"]]
    assert "embeddings" in ev["method"] and ev["rows_checked"] == 300


def test_label_errors_sample_and_skip_rows_without_text(
    tiny_base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("assay.audit.checks.text.TEXT_LABEL_ERRORS_MAX_ROWS", 150)
    frame = with_texts(corpus(300, seed=3), {i: None for i in range(10)})
    ctx = context(frame, tiny_base)
    labelled = TextLabelErrorsCheck()._labelled(ctx)
    assert len(labelled) == 290 and labelled.index.min() == 10
    assert TextLabelErrorsCheck()._max_rows(ctx) == 150


# --------------------------------------------------------------------------- tooling


def test_without_the_text_extra_the_tokenizer_checks_leave_a_note(
    tiny_base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name in {"transformers", "torch"} else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    frame = with_texts(corpus(), {0: None})
    found = findings(context(frame, tiny_base))
    notes = [f for f in found if "could not measure" in f.message]
    assert {f.check for f in notes} == {"truncated_text", "tokenizer_mismatch", "text_label_errors"}
    for note in notes:
        assert note.severity == "info"
        assert "text extra is not installed" in note.message
        assert "pip install 'assay[text]'" in note.fix
    assert one(found, "empty_text").evidence["rows"] == 1  # the other checks still run


def test_a_model_base_that_does_not_exist_is_a_warning_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    found = findings(context(corpus(), missing), "truncated_text", "tokenizer_mismatch")
    assert len(found) == 2
    for finding in found:
        assert finding.severity == "warn"
        assert "model.base does not load" in finding.message and "nowhere" in finding.message


def test_audit_reads_the_spec_and_a_base_relative_to_the_project(short_base: Path) -> None:
    root = short_base.parent
    spec = ProjectSpec.model_validate(
        {
            "task": "text-classification",
            "data": {"source": "data.csv", "target": "label"},
            "model": {"base": short_base.name},
            "split": {"test_size": 0.25},
        }
    )
    frame = with_texts(corpus(), {r: " ".join(["goal"] * 40) for r in range(0, 200, 10)})
    dataset = Dataset.from_frame(frame)
    ctx = AuditContext.from_spec(dataset, spec, root=root)
    assert ctx.text_column == "text"  # data.text unset: the only text feature
    assert (ctx.model_base, ctx.root, ctx.test_size) == (short_base.name, root, 0.25)
    report = audit(dataset, spec, root=root)
    assert report.by_check("truncated_text")[0].evidence["tokens_read"] == 16


# --------------------------------------------------------------------------- real encoder


SENTENCES = {
    "sport": [
        "The striker scored twice in the second half and the home crowd went wild.",
        "Our team lost the final after a penalty shootout that lasted forever.",
        "The coach changed the line-up before the derby against their rivals.",
        "She ran the marathon in under three hours and broke the club record.",
        "The referee sent off two players after a fight near the touchline.",
        "A late goal from the captain won the league title for the club.",
        "The tennis match went to five sets before the champion finally won.",
        "Fans queued all night for tickets to the cup semi-final.",
    ],
    "cooking": [
        "Whisk the eggs with sugar until pale, then fold in the sifted flour.",
        "Roast the vegetables with olive oil and garlic for forty minutes.",
        "Let the dough rest overnight in the fridge before you bake the bread.",
        "Simmer the tomato sauce slowly and season it with basil and salt.",
        "Melt the butter in a pan and fry the onions until golden brown.",
        "The soup needs more pepper and a squeeze of lemon before serving.",
        "Marinate the chicken in yoghurt and spices for at least two hours.",
        "Chop the herbs finely and sprinkle them over the salad at the end.",
    ],
}


@pytest.mark.slow
def test_minilm_finds_flipped_labels_in_natural_sentences() -> None:
    rng = np.random.default_rng(0)
    openers = ["", "Honestly, ", "Yesterday ", "I read that ", "In short: ", "Note: "]
    rows = []
    for label, sentences in SENTENCES.items():
        for sentence in sentences:
            for opener in openers:
                text = opener + sentence[0].lower() + sentence[1:] if opener else sentence
                rows.append((text, label))
    frame = pd.DataFrame(rows, columns=["text", "label"]).sample(frac=1.0, random_state=0)
    frame = frame.reset_index(drop=True)
    flipped = np.sort(rng.choice(len(frame), 8, replace=False))
    frame.loc[flipped, "label"] = np.where(
        frame.loc[flipped, "label"] == "sport", "cooking", "sport"
    )
    found = one(findings(context(frame, None), "text_label_errors"), "text_label_errors")
    assert found.severity == "warn"
    listed = set(found.evidence["rows"])
    assert len(listed & set(flipped.tolist())) >= 6
    assert len(listed - set(flipped.tolist())) <= 2
