"""Word attributions of text classifiers by occlusion: planted words found, either way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from assay.explain import Explanation, TextTokens, token_attributions

FILLER = ["the", "order", "was", "and", "staff", "my", "food", "today", "delivery", "service"]
GOOD = ["great", "friendly"]
BAD = ["awful", "rude"]


def reviews(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = "pos" if i % 2 else "neg"
        words = list(rng.choice(FILLER, 8)) + [str(rng.choice(GOOD if label == "pos" else BAD))]
        rng.shuffle(words)
        rows.append({"review": " ".join(words), "label": label})
    return pd.DataFrame(rows)


def _column(frame: pd.DataFrame) -> pd.Series:
    return frame["review"]


def _fit(estimator: object) -> object:
    data = reviews(400)
    model = make_pipeline(FunctionTransformer(_column), TfidfVectorizer(), estimator)
    model.fit(data[["review"]], data["label"])
    return model


def test_planted_words_push_their_way_and_filler_does_not() -> None:
    model = _fit(LogisticRegression(C=10.0))
    tokens = token_attributions(model, reviews(60, seed=1)[["review"]], "review", seed=0)
    assert tokens.target == "probability of 'pos'" and tokens.texts == 24
    assert {t.token for t in tokens.towards[:2]} == set(GOOD)
    assert {t.token for t in tokens.away[:2]} == set(BAD)
    strongest = max(abs(t.mean) for t in (*tokens.towards, *tokens.away))
    filler = [t for t in (*tokens.towards, *tokens.away) if t.token in FILLER]
    assert all(abs(t.mean) < 0.25 * strongest for t in filler)
    assert all(t.texts >= 2 for t in (*tokens.towards, *tokens.away))


def test_any_text_model_is_explained_without_knowing_its_form() -> None:
    forest = _fit(RandomForestClassifier(n_estimators=50, random_state=0))
    tokens = token_attributions(forest, reviews(60, seed=2)[["review"]], "review", seed=0)
    assert tokens.towards and tokens.towards[0].token in GOOD
    assert tokens.away and tokens.away[0].token in BAD
    assert tokens.mean_abs > 0


def test_word_attributions_round_trip_and_old_explanations_load() -> None:
    model = _fit(LogisticRegression(C=10.0))
    tokens = token_attributions(model, reviews(30, seed=3)[["review"]], "review", seed=4)
    assert TextTokens.from_dict(tokens.to_dict()) == tokens
    stored = {"method": "occlusion", "output": "probability", "rows": 24, "seed": 0,
              "features": [{"feature": "review", "importance": 0.1, "share": 1.0, "rank": 1}],
              "tokens": tokens.to_dict()}
    explanation = Explanation.from_dict(stored)
    assert explanation.tokens == tokens and Explanation.from_dict(explanation.to_dict()) == explanation
    older = {k: v for k, v in stored.items() if k != "tokens"} | {"method": "linear",
                                                                  "output": "log_odds"}
    assert Explanation.from_dict(older).tokens is None


def test_a_text_run_stores_and_reports_the_words_its_model_leans_on(tmp_path: Path) -> None:
    from assay.lifecycle import report_input
    from assay.pipeline import open_registry, run_project
    from assay.project import Project
    from assay.report.card import render_model_card

    reviews(400).to_csv(tmp_path / "data.csv", index=False)
    raw = {"task": "text-classification",
           "data": {"source": "data.csv", "target": "label", "text": "review"},
           "search": {"families": ["tfidf_linear"], "trials": 1, "cv_folds": 2}}
    (tmp_path / "assay.yaml").write_text(yaml.safe_dump(raw))
    project = Project.open(tmp_path / "assay.yaml")
    result = run_project(project, write_report=False)
    registry = open_registry(project)
    digest = registry.get(result.version).lineage.explanation
    assert digest is not None
    explanation = Explanation.from_dict(registry.load_json(digest))
    assert explanation.method == "linear" and explanation.tokens is not None
    assert {t.token for t in explanation.tokens.towards[:2]} == set(GOOD)
    assert {t.token for t in explanation.tokens.away[:2]} == set(BAD)
    inputs = report_input(project, registry, result.version)
    card = render_model_card(inputs)
    assert "Words of review" in card and "great" in card and "awful" in card
    from assay.report.html import render_html

    page = render_html(inputs)
    assert "Words of &#39;review&#39;" in page and ">great<" in page
