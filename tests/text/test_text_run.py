"""``assay run`` on text with the encoder families: the base is resolved once, recorded in
the lineage by hash, and the registered version loads onto it and answers like the search's."""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from assay.errors import ConfigError
from assay.model.loaded import LoadedModel
from assay.pipeline import open_registry, run_project
from assay.project import Project

GOOD = ["great", "good", "love"]
BAD = ["bad", "awful", "broken"]
FILLER = ["the", "movie", "was", "plot", "acting", "very"]


def _reviews(n: int = 240) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        label = "pos" if i % 2 else "neg"
        words = list(rng.choice(FILLER, 5)) + list(rng.choice(GOOD if label == "pos" else BAD, 2))
        rng.shuffle(words)
        rows.append({"review": " ".join(words), "label": label})
    return pd.DataFrame(rows)


def _project(folder: Path, tiny_base: Path, **overrides: Any) -> Project:
    shutil.copytree(tiny_base, folder / "encoder")
    _reviews().to_csv(folder / "reviews.csv", index=False)
    raw: dict[str, Any] = {
        "task": "text-classification",
        "data": {"source": "reviews.csv", "target": "label", "text": "review"},
        "search": {
            "families": ["dummy", "embedding_linear", "lora"],
            "trials": 3,
            "ensemble": False,
        },
        "model": {"base": "encoder", "max_length": 32},
        "serving": {"latency_p99_ms": 5000},
        "audit": {"skip": ["text_label_errors"]},
        **overrides,
    }
    (folder / "assay.yaml").write_text(yaml.safe_dump(raw))
    return Project.open(folder / "assay.yaml")


@pytest.mark.slow
def test_a_text_run_records_the_base_and_serves_from_it(tmp_path: Path, tiny_base: Path) -> None:
    project = _project(tmp_path, tiny_base)
    result = run_project(project)
    registry = open_registry(project)
    record = registry.get(result.version)
    assert record.family in {"embedding_linear", "lora"}
    base = record.lineage.base
    assert base is not None and base["path"] == str((tmp_path / "encoder").resolve())
    from assay.text.checkpoint import resolve_base

    assert base["sha256"] == resolve_base("encoder", root=tmp_path).sha256
    # the artifact holds the trained part only: far smaller than the base's weights
    artifact = pickle.dumps(registry.load_model(result.version))
    weights = (tmp_path / "encoder" / "model.safetensors").stat().st_size
    assert len(artifact) < weights
    loaded = LoadedModel.load(registry, result.version)
    texts = pd.DataFrame({"review": ["the movie was great great", "awful broken plot"]})
    answers = loaded.predict(texts)
    assert [a.prediction for a in answers] == ["pos", "neg"]
    # monitoring gets a profile of the text under the same base, embeddings included
    reference = registry.load_json(record.lineage.reference)
    (profile,) = reference["text"]
    assert profile["name"] == "review" and profile["base_sha256"] == base["sha256"]
    assert "review" not in reference.get("skipped", {})
    # the search tried both encoder families on the same rows
    search = registry.load_json(record.lineage.search)
    assert {t["family"] for t in search["trials"]} >= {"embedding_linear", "lora"}
    # no exact explainer for an encoder model: its words are attributed by occlusion
    from assay.explain import Explanation

    assert record.lineage.explanation is not None
    explanation = Explanation.from_dict(registry.load_json(record.lineage.explanation))
    assert explanation.method == "occlusion" and explanation.ranking == ["review"]
    assert explanation.tokens is not None and explanation.tokens.texts > 0
    planted = {w for w in GOOD}
    assert planted & {t.token for t in explanation.tokens.towards[:4]}


def test_a_base_that_is_not_a_checkpoint_stops_the_run_with_exit_2(
    tmp_path: Path, tiny_base: Path
) -> None:
    project = _project(tmp_path, tiny_base, model={"base": "no-such-dir/"})
    with pytest.raises(ConfigError, match="model.base"):
        run_project(project)
    done = subprocess.run(
        [sys.executable, "-m", "assay", "run", "--config", str(tmp_path / "assay.yaml")],
        capture_output=True, text=True, check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "model.base" in done.stderr and "no-such-dir" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_fine_tuning_family_over_the_time_budget_is_skipped_with_the_estimate(
    tmp_path: Path,
) -> None:
    from assay.train.text_families import LoraFamily

    # the default MiniLM on 100,000 texts of 128 tokens does not fit a 1-minute budget
    why = LoraFamily().over_budget(100_000, 60.0, mean_tokens=128)
    assert why is not None and "estimated at" in why and "budget is 60 s" in why
    assert LoraFamily().over_budget(10, 3600.0, mean_tokens=16) is None
