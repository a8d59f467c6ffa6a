"""The contract every model family must honour, as a reusable pytest class.

Subclass :class:`ModelFamilyContract` and provide a ``family`` fixture; every check
then runs for each task the family supports, on a small frame with every column
kind (numbers with gaps, integers, booleans, categories with gaps, datetimes, and
free text for text classification)::

    import pytest
    from assay.testing.families import ModelFamilyContract

    class TestMyFamily(ModelFamilyContract):
        @pytest.fixture
        def family(self):
            return MyFamily()
"""

from __future__ import annotations

import pickle
import tempfile
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.base import clone

from assay.config.metrics import CLASSIFICATION_TASKS, DEFAULT_PRIMARY
from assay.data.schema import Schema, infer_schema
from assay.text.checkpoint import resolve_base
from assay.train.context import BuildContext, TextOptions
from assay.train.families import BaseModelFamily
from assay.train.objective import objective_for
from assay.train.pipeline import fit_model

__all__ = ["CONTRACT_TASKS", "ContractData", "ModelFamilyContract", "contract_data"]

CONTRACT_TASKS: tuple[str, ...] = ("binary", "multiclass", "regression", "text-classification")

#: primary metrics that switch on every objective hint of each task
_HINTED = {
    "binary": "f1",
    "multiclass": "f1_macro",
    "regression": "mae",
    "text-classification": "f1_macro",
}
_WORDS = {
    0: ["refund", "broken", "late", "angry", "cancel"],
    1: ["great", "thanks", "love", "quick", "happy"],
    2: ["question", "how", "where", "when", "which"],
}
_FILLER = ["the", "order", "item", "today", "my", "was", "and", "it", "is", "please"]


@dataclass(frozen=True)
class ContractData:
    """A small train/test pair for one task."""

    task: str
    X_train: pd.DataFrame
    y_train: np.ndarray
    X_test: pd.DataFrame
    y_test: np.ndarray
    schema: Schema
    features: list[str]
    text_column: str | None

    def context(
        self, *, seed: int = 0, primary: str | None = None, text: TextOptions | None = None
    ) -> BuildContext:
        """What a family builds for this data: the task's default metric unless ``primary``."""
        return BuildContext.of(
            task=self.task,
            schema=self.schema,
            features=self.features,
            text_column=self.text_column,
            objective=objective_for(self.task, primary or DEFAULT_PRIMARY[self.task]),
            seed=seed,
            text=text,
        )


@lru_cache(maxsize=1)
def contract_text_options() -> TextOptions:
    """A tiny random-weight checkpoint over the contract's words, built once per process.

    Families on a pretrained encoder are checked on it: the contract is about the
    family's plumbing (fit, predict, pickle, determinism), which a checkpoint of a few
    thousand weights exercises in seconds where the real default takes minutes.
    """
    from assay.testing.checkpoints import tiny_checkpoint

    folder = Path(tempfile.mkdtemp(prefix="assay-contract-"))
    words = [w for group in _WORDS.values() for w in group] + list(_FILLER)
    base = resolve_base(str(tiny_checkpoint(folder / "base", words)))
    return TextOptions(base=base, max_length=32, cache_dir=folder / "embeddings")


@lru_cache(maxsize=8)
def contract_data(task: str, seed: int = 0, rows: int = 240) -> ContractData:
    """A frame of every column kind with a learnable target for ``task`` (75% train)."""
    rng = np.random.default_rng(seed)
    amount = rng.normal(size=rows)
    count = rng.integers(0, 10, size=rows)
    flag = rng.random(rows) > 0.5
    colour = rng.choice(["red", "green", "blue", "grey"], size=rows)
    when = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 24 * 365, rows), unit="h")
    signal = amount + 0.8 * (colour == "red") - 0.5 * flag + 0.1 * count
    frame = pd.DataFrame(
        {
            "amount": amount,
            "count": count,
            "flag": flag,
            "colour": pd.Series(colour, dtype="str"),
            "when": when,
        }
    )
    frame.loc[rng.random(rows) < 0.1, "amount"] = np.nan
    frame.loc[rng.random(rows) < 0.1, "colour"] = None
    text_column = None
    if task == "regression":
        y: np.ndarray = 3.0 * signal + rng.normal(scale=0.5, size=rows)
    elif task == "binary":
        y = np.where(signal + rng.normal(scale=0.5, size=rows) > 0.6, "yes", "no")
    elif task == "multiclass":
        y = np.digitize(signal + rng.normal(scale=0.3, size=rows), [-0.3, 0.7]).astype(np.int64)
    else:
        y = rng.integers(0, 3, size=rows).astype(np.int64)
        notes = []
        for label in y:
            words = list(rng.choice(_WORDS[int(label)], size=2)) + list(rng.choice(_FILLER, size=5))
            rng.shuffle(words)
            notes.append(" ".join(words))
        frame["note"] = pd.Series(notes, dtype="str")
        frame.loc[rng.random(rows) < 0.05, "note"] = None
        text_column = "note"
    cut = int(rows * 0.75)
    return ContractData(
        task=task,
        X_train=frame.iloc[:cut].reset_index(drop=True),
        y_train=y[:cut],
        X_test=frame.iloc[cut:].reset_index(drop=True),
        y_test=y[cut:],
        schema=infer_schema(frame),
        features=list(frame.columns),
        text_column=text_column,
    )


def _hostile(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with unseen categories, missing values everywhere and unparseable dates."""
    out = frame.copy()
    n = len(out)
    out["amount"] = np.where(np.arange(n) % 2 == 0, np.nan, out["amount"])
    out["count"] = pd.Series([None if i % 3 == 0 else 3 for i in range(n)], dtype=object)
    out["flag"] = pd.Series([None if i % 2 else "yes" for i in range(n)], dtype=object)
    out["colour"] = pd.Series(
        ["never-seen-level" if i % 2 else None for i in range(n)], dtype=object
    )
    out["when"] = pd.Series(["not a date" if i % 2 else None for i in range(n)], dtype=object)
    if "note" in out:
        out["note"] = pd.Series(["zzz unseen words" if i % 2 else None for i in range(n)])
    return out


class ModelFamilyContract:
    """Fit/predict/pickle/robustness/determinism checks for one model family.

    Subclasses provide the ``family`` fixture. ``fast_params`` holds per-alias
    parameters merged over the family's defaults to keep the checks quick.
    """

    fast_params: ClassVar[dict[str, dict[str, Any]]] = {
        "lightgbm": {"n_estimators": 40},
        "mlp": {"max_epochs": 20, "width": 16},
        "extra_trees": {"n_estimators": 30},
        "lora": {"epochs": 2, "learning_rate": 2e-2},
        "finetune_full": {"epochs": 2, "learning_rate": 1e-3},
    }

    @pytest.fixture
    def family(self) -> BaseModelFamily:
        """The family under test (override in the subclass)."""
        raise NotImplementedError("define a `family` fixture returning the family under test")

    @pytest.fixture(params=CONTRACT_TASKS)
    def task(self, request: pytest.FixtureRequest, family: BaseModelFamily) -> str:
        """Each task the family supports."""
        if not family.supports(request.param):
            pytest.skip(f"{type(family).__name__} does not support {request.param}")
        return str(request.param)

    @pytest.fixture
    def data(self, task: str) -> ContractData:
        """The small frame of the task."""
        return contract_data(task)

    def _fast(self, family: BaseModelFamily) -> dict[str, Any]:
        return self.fast_params.get(getattr(family, "alias", ""), {})

    def make(
        self,
        family: BaseModelFamily,
        data: ContractData,
        *,
        seed: int = 0,
        primary: str | None = None,
    ) -> Any:
        """Build the family's estimator for ``data`` with fast default parameters."""
        params = {**family.defaults(data.task), **self._fast(family)}
        return family.build(
            params, data.context(seed=seed, primary=primary, text=self._text(family))
        )

    def _text(self, family: BaseModelFamily) -> TextOptions | None:
        """The tiny checkpoint for a family that reads text through a pretrained encoder."""
        return contract_text_options() if getattr(family, "uses_base", False) else None

    def fitted(self, family: BaseModelFamily, data: ContractData, **kw: Any) -> Any:
        """A fitted estimator (no validation set)."""
        return fit_model(self.make(family, data, **kw), data.X_train, data.y_train)

    def test_build_returns_an_unfitted_clonable_estimator(
        self, family: BaseModelFamily, data: ContractData
    ) -> None:
        model = self.make(family, data)
        twin = clone(model)
        assert type(twin) is type(model)
        assert hasattr(model, "fit") and hasattr(model, "predict")

    def test_predicts_one_value_per_row(self, family: BaseModelFamily, data: ContractData) -> None:
        model = self.fitted(family, data)
        pred = np.asarray(model.predict(data.X_test))
        assert pred.shape == (len(data.X_test),)
        if data.task in CLASSIFICATION_TASKS:
            assert set(pred.tolist()) <= set(np.unique(data.y_train).tolist())
        else:
            assert np.isfinite(pred.astype(float)).all()

    def test_predict_proba_rows_sum_to_one(
        self, family: BaseModelFamily, data: ContractData
    ) -> None:
        if data.task not in CLASSIFICATION_TASKS:
            pytest.skip("regression has no probabilities")
        model = self.fitted(family, data)
        proba = np.asarray(model.predict_proba(data.X_test))
        classes = np.unique(data.y_train)
        assert proba.shape == (len(data.X_test), len(classes))
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
        assert (proba >= 0).all()
        assert list(model.classes_) == list(classes)

    def test_fits_with_a_validation_set_and_step_callback(
        self, family: BaseModelFamily, data: ContractData
    ) -> None:
        steps: list[tuple[int, float]] = []
        model = fit_model(
            self.make(family, data),
            data.X_train,
            data.y_train,
            eval_set=(data.X_test, data.y_test),
            on_step=lambda step, loss: steps.append((step, loss)),
        )
        assert np.asarray(model.predict(data.X_test)).shape == (len(data.X_test),)
        numbers = [s for s, _ in steps]
        assert numbers == sorted(numbers)
        assert all(np.isfinite(loss) for _, loss in steps)

    def test_survives_a_pickle_round_trip(
        self, family: BaseModelFamily, data: ContractData
    ) -> None:
        model = self.fitted(family, data)
        copy = pickle.loads(pickle.dumps(model))
        np.testing.assert_array_equal(copy.predict(data.X_test), model.predict(data.X_test))
        if data.task in CLASSIFICATION_TASKS:
            np.testing.assert_array_equal(
                copy.predict_proba(data.X_test), model.predict_proba(data.X_test)
            )

    def test_unseen_categories_and_missing_values_at_predict_time(
        self, family: BaseModelFamily, data: ContractData
    ) -> None:
        model = self.fitted(family, data)
        hostile = _hostile(data.X_test)
        pred = np.asarray(model.predict(hostile))
        assert pred.shape == (len(hostile),)
        if data.task in CLASSIFICATION_TASKS:
            assert np.isfinite(np.asarray(model.predict_proba(hostile))).all()
        else:
            assert np.isfinite(pred.astype(float)).all()

    def test_same_seed_same_model(self, family: BaseModelFamily, data: ContractData) -> None:
        first = self.fitted(family, data, seed=3)
        second = self.fitted(family, data, seed=3)
        np.testing.assert_array_equal(first.predict(data.X_test), second.predict(data.X_test))
        if data.task in CLASSIFICATION_TASKS:
            np.testing.assert_array_equal(
                first.predict_proba(data.X_test), second.predict_proba(data.X_test)
            )

    def test_objective_hints_build_and_fit(
        self, family: BaseModelFamily, data: ContractData
    ) -> None:
        model = fit_model(
            self.make(family, data, primary=_HINTED[data.task]),
            data.X_train,
            data.y_train,
            eval_set=(data.X_test, data.y_test),
        )
        assert np.asarray(model.predict(data.X_test)).shape == (len(data.X_test),)

    def test_search_space_grid_and_defaults_agree(
        self, family: BaseModelFamily, data: ContractData
    ) -> None:
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        trial = study.ask()
        params = family.search_space(trial, data.task)
        assert set(params) == set(trial.params)
        assert set(family.defaults(data.task)) == set(params)
        defaults = family.defaults(data.task)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a default outside its range warns in Optuna
            fixed = family.search_space(
                cast(optuna.Trial, optuna.trial.FixedTrial(defaults)), data.task
            )
        assert fixed == defaults
        grid = family.grid(data.task)
        assert set(grid) <= set(params)
        assert all(isinstance(v, list) and v for v in grid.values())
        family.build({**params, **self._fast(family)}, data.context(text=self._text(family)))
