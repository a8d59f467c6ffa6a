"""served_path: the one-record call the server makes, for timing a model before it is served."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from assay.data.schema import infer_schema
from assay.evaluate import measure_latency
from assay.model.served import served_path
from assay.train.families import LightGBMFamily

from .test_fastpath import fit


def test_a_lightgbm_model_is_timed_on_its_fast_path_with_the_pipeline_answers() -> None:
    model, frame = fit(LightGBMFamily(), "binary", "roc_auc")
    schema = infer_schema(frame)
    path = served_path(model, task="binary", features=list(frame.columns),
                       columns=list(schema.columns))
    assert path.name == "fast path (lightgbm)"
    records = path.prepare(frame.iloc[:5])
    assert len(records) == 5 and isinstance(records[0], dict)
    answers = [path.call(r)[0] for r in records]
    expected = model.predict_proba(frame.iloc[:5])
    for answer, row in zip(answers, expected, strict=True):
        assert np.allclose(sorted(answer.probabilities.values()), sorted(row), atol=1e-9)
    report = measure_latency(model, frame, n_single=10, batch_size=10, rounds=2, warmup=2,
                             served=path)
    assert report.path == "fast path (lightgbm)"


def test_a_model_without_a_fast_path_is_timed_through_the_pipeline() -> None:
    frame = pd.DataFrame({"a": np.arange(40.0), "b": np.arange(40.0) % 3})
    y = (frame["a"] > 20).astype(int)
    model = LogisticRegression().fit(frame, y)  # not an assay pipeline: no fast path
    path = served_path(model, task="binary", features=["a", "b"],
                       columns=list(infer_schema(frame).columns))
    assert path.name == "pipeline"
    answer = path.call(path.prepare(frame.iloc[[30]])[0])[0]
    assert answer.prediction == 1
