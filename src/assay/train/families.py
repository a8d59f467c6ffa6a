"""Model families: what a candidate model is, and the space its hyper-parameters live in.

A family is named in assay.yaml (``search.families``) by its alias in
:data:`FAMILIES`. The search calls, per trial::

    family.supports(task)                           # skipped when False
    params = family.search_space(trial, task)       # or a point of family.grid(task),
                                                    # or family.defaults(task)
    model = family.build(params, context)           # a BuildContext: task, schema,
                                                    # features, text column, hints, seed
    fit_model(model, X_train, y_train, eval_set=(X_val, y_val), on_step=report)
    model.predict(X) / model.predict_proba(X)

and, to refit the chosen configuration on training + validation rows (no rows left
to stop on), ``family.refit_params(fitted_model, row_ratio)`` then ``build`` again.

``build`` returns an unfitted estimator: a :class:`ModelPipeline` (preprocessing
fitted on training rows only, then the model), wrapped in a
:class:`ThresholdedClassifier` when the hints ask for a tuned decision threshold.
Everything a family builds from besides its parameters is in the
:class:`~assay.train.context.BuildContext`; a new input is a field there, not a new
argument of every family's ``build``.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import lightgbm as lgb
import optuna
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.linear_model import HuberRegressor, LogisticRegression, Ridge

from assay.aliases import AliasTable
from assay.config.metrics import CLASSIFICATION_TASKS, TASK_METRICS
from assay.errors import ConfigError
from assay.train.context import BuildContext
from assay.train.objective import ObjectiveHints, ThresholdedClassifier
from assay.train.pipeline import ModelPipeline
from assay.train.preprocess import build_preprocessor

__all__ = [
    "FAMILIES",
    "BaseModelFamily",
    "DummyFamily",
    "ExtraTreesFamily",
    "LightGBMFamily",
    "LinearFamily",
    "MLPFamily",
    "SVMFamily",
    "TfidfLinearFamily",
    "get_family",
]

FAMILIES: AliasTable[type[BaseModelFamily]] = AliasTable("model family")

_TABULAR = frozenset({"binary", "multiclass", "regression"})


class BaseModelFamily(abc.ABC):
    """A kind of model: its supported tasks, search space, grid and how to build it.

    Subclasses implement :meth:`search_space`, :meth:`grid` and :meth:`build`, set
    ``tasks`` (or override :meth:`supports`) and may override :meth:`defaults` (the
    first point a search tries). Parameters are plain values named as in the search
    space (``n_layers``, ``width``), which ``build`` turns into estimator arguments.
    A family with ``searched = False`` (the baseline) is fitted once, never tuned.
    A family whose cost grows faster than the rows sets ``max_rows``: the search
    skips it when it would be fitted on more rows (training + validation).
    """

    alias: ClassVar[str]
    tasks: ClassVar[frozenset[str]] = frozenset(TASK_METRICS)
    searched: ClassVar[bool] = True
    max_rows: ClassVar[int | None] = None
    #: False for a family whose every fit is a long training run (fine-tuning a
    #: transformer): the chosen model's spread is then not re-measured on folds
    cross_validated: ClassVar[bool] = True

    def supports(self, task: str) -> bool:
        """True when the family can model ``task``."""
        return task in self.tasks

    @abc.abstractmethod
    def search_space(self, trial: optuna.Trial, task: str) -> dict[str, Any]:
        """Draw one parameter set with the trial's ``suggest_*`` calls."""

    @abc.abstractmethod
    def grid(self, task: str) -> dict[str, list[Any]]:
        """The values each parameter takes in a grid search (names as in the search space)."""

    def defaults(self, task: str) -> dict[str, Any]:
        """Sensible parameters to try first; by default the first value of each grid axis."""
        return {name: values[0] for name, values in self.grid(task).items()}

    def refit_params(self, model: Any, row_ratio: float) -> dict[str, Any] | None:
        """Extra parameters to refit a configuration on more rows without a validation set.

        ``model`` is the fitted final model of a search trial (inside any threshold
        wrapper and pipeline); ``row_ratio`` is the refit rows over the rows it was
        fitted on. Iterative families fix here what early stopping found (rounds,
        epochs). ``None`` (the default) means a refit is not sound for the family,
        and the search keeps the model it fitted.
        """
        return None

    @abc.abstractmethod
    def build(self, params: Mapping[str, Any], context: BuildContext) -> Any:
        """An unfitted estimator (preprocessing + model) for these parameters and context."""


def get_family(alias: str, key: str | None = "search.families") -> BaseModelFamily:
    """An instance of the family registered as ``alias`` (a ConfigError naming ``key`` if none)."""
    return FAMILIES.get(alias, key=key)()


def _finish(model: ModelPipeline, context: BuildContext) -> Any:
    """``model``, wrapped to tune its decision threshold when the hints ask for one."""
    threshold_metric = context.objective.threshold_metric
    if context.task == "binary" and threshold_metric is not None:
        return ThresholdedClassifier(model, threshold_metric, random_state=context.seed)
    return model


def _class_weight(objective: ObjectiveHints) -> Literal["balanced"] | None:
    return "balanced" if objective.balance_classes else None


@FAMILIES.register("dummy")
class DummyFamily(BaseModelFamily):
    """The baseline: class priors (classification) or the mean (median for an L1 objective)."""

    searched = False

    def search_space(self, trial: optuna.Trial, task: str) -> dict[str, Any]:
        """No parameters."""
        return {}

    def grid(self, task: str) -> dict[str, list[Any]]:
        """No parameters."""
        return {}

    def build(self, params: Mapping[str, Any], context: BuildContext) -> ModelPipeline:
        """A pipeline of one dummy model, which ignores the features."""
        if context.task in CLASSIFICATION_TASKS:
            model: Any = DummyClassifier(strategy="prior")
        else:
            median = context.objective.loss == "l1"
            model = DummyRegressor(strategy="median" if median else "mean")
        return ModelPipeline([("model", model)])

    def refit_params(self, model: Any, row_ratio: float) -> dict[str, Any] | None:
        """Nothing to fix: the baseline has no parameters."""
        return {}


@FAMILIES.register("linear")
class LinearFamily(BaseModelFamily):
    """Logistic regression, ridge, or (L1 objective) a Huber regressor on scaled, one-hot features.

    The Huber loss is linear beyond ``epsilon`` scale units, so it tracks the median
    like an L1 fit while staying a fast smooth optimisation on large data.
    """

    def search_space(self, trial: optuna.Trial, task: str) -> dict[str, Any]:
        """``C`` (classification) or ``alpha`` (regression), log-uniform."""
        if task in CLASSIFICATION_TASKS:
            return {"C": trial.suggest_float("C", 1e-3, 1e2, log=True)}
        return {"alpha": trial.suggest_float("alpha", 1e-3, 1e2, log=True)}

    def grid(self, task: str) -> dict[str, list[Any]]:
        """Four decades of regularisation."""
        if task in CLASSIFICATION_TASKS:
            return {"C": [1.0, 0.01, 0.1, 10.0]}
        return {"alpha": [1.0, 0.01, 0.1, 10.0]}

    def refit_params(self, model: Any, row_ratio: float) -> dict[str, Any] | None:
        """Nothing to fix: a linear model is fitted to convergence, without a validation set."""
        return {}

    def build(self, params: Mapping[str, Any], context: BuildContext) -> Any:
        """Scaled preprocessing + the linear model of the task."""
        pre = build_preprocessor(
            context.schema, context.features, scale=True, text_column=context.text_column
        )
        if context.task in CLASSIFICATION_TASKS:
            model: Any = LogisticRegression(
                C=float(params.get("C", 1.0)),
                class_weight=_class_weight(context.objective),
                max_iter=2000,
                random_state=context.seed,
            )
        elif context.objective.loss == "l1":
            model = HuberRegressor(alpha=float(params.get("alpha", 1.0)), max_iter=1000)
        else:
            model = Ridge(alpha=float(params.get("alpha", 1.0)), random_state=context.seed)
        return _finish(ModelPipeline([("preprocess", pre), ("model", model)]), context)


@FAMILIES.register("lightgbm")
class LightGBMFamily(BaseModelFamily):
    """Gradient-boosted trees (LightGBM) on ordinal-coded features, early-stopped on validation.

    Args:
        n_jobs: LightGBM threads (explicit: the default would take every core).
    """

    def __init__(self, n_jobs: int = 1) -> None:
        self.n_jobs = n_jobs

    def search_space(self, trial: optuna.Trial, task: str) -> dict[str, Any]:
        """Learning rate, leaves, leaf size, row/column subsampling, L2 penalty."""
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 7, 127, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 5, 100, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
        }

    def grid(self, task: str) -> dict[str, list[Any]]:
        """Eight points over learning rate, leaves and leaf size."""
        return {
            "learning_rate": [0.1, 0.03],
            "num_leaves": [31, 7],
            "min_child_samples": [20, 5],
        }

    def defaults(self, task: str) -> dict[str, Any]:
        """LightGBM's own defaults, with a little L2 penalty."""
        return {
            "learning_rate": 0.1,
            "num_leaves": 31,
            "min_child_samples": 20,
            "subsample": 1.0,
            "colsample_bytree": 1.0,
            "reg_lambda": 1e-3,
        }

    def refit_params(self, model: Any, row_ratio: float) -> dict[str, Any] | None:
        """``n_estimators``: the early-stopped best round, scaled by the row ratio.

        Each round adds one tree whatever the row count, and more rows support
        more rounds before over-fitting, hence the scaling.
        """
        if not isinstance(model, lgb.LGBMModel):
            return None
        best = int(getattr(model, "best_iteration_", 0) or 0)
        if best <= 0:
            best = int(model.booster_.current_iteration())
        return {"n_estimators": max(1, round(best * max(row_ratio, 1.0)))}

    def build(self, params: Mapping[str, Any], context: BuildContext) -> Any:
        """Unscaled, ordinal-coded preprocessing + LGBMClassifier/LGBMRegressor.

        ``n_estimators`` (default 500) caps the rounds; with a validation set the
        model stops 30 rounds after its best and keeps the best round.
        """
        pre = build_preprocessor(
            context.schema,
            context.features,
            scale=False,
            text_column=context.text_column,
            categorical="ordinal",
        )
        subsample = float(params.get("subsample", 1.0))
        common: dict[str, Any] = {
            "n_estimators": int(params.get("n_estimators", 500)),
            "learning_rate": float(params.get("learning_rate", 0.1)),
            "num_leaves": int(params.get("num_leaves", 31)),
            "min_child_samples": int(params.get("min_child_samples", 20)),
            "subsample": subsample,
            "subsample_freq": 1 if subsample < 1.0 else 0,
            "colsample_bytree": float(params.get("colsample_bytree", 1.0)),
            "reg_lambda": float(params.get("reg_lambda", 0.0)),
            "random_state": context.seed,
            "n_jobs": self.n_jobs,
            "verbose": -1,
            "deterministic": True,
            "force_col_wise": True,
        }
        if context.task in CLASSIFICATION_TASKS:
            model: Any = lgb.LGBMClassifier(
                class_weight=_class_weight(context.objective), **common
            )
        else:
            model = lgb.LGBMRegressor(
                objective="l1" if context.objective.loss == "l1" else "regression", **common
            )
        pipeline = ModelPipeline([("preprocess", pre), ("model", model)], stopping_rounds=30)
        return _finish(pipeline, context)


@FAMILIES.register("extra_trees")
class ExtraTreesFamily(BaseModelFamily):
    """Extremely randomised trees (scikit-learn): a bagged forest of random-split trees.

    Averaging many high-variance trees suits small data, where boosting over-fits
    its few validation rows, and its errors differ from boosting's, which helps an
    ensemble. There is no early stopping, so a refit on more rows is sound as is.
    The squared-error criterion serves an L1 objective too (an absolute-error forest
    costs orders of magnitude more to grow); the trees' leaf means then approximate
    the conditional median less well than LightGBM's L1 boosting. Trees are capped
    in leaves (and the forest in trees) so that on large data the artifact stays in
    tens of megabytes and a one-row prediction in milliseconds.

    Args:
        n_jobs: threads that grow and query the trees (explicit: one by default).
    """

    tasks = _TABULAR

    def __init__(self, n_jobs: int = 1) -> None:
        self.n_jobs = n_jobs

    def search_space(self, trial: optuna.Trial, task: str) -> dict[str, Any]:
        """Tree count, leaves per tree, share of features per split, leaf size, criterion."""
        params: dict[str, Any] = {
            "n_estimators": trial.suggest_int("n_estimators", 50, 250, log=True),
            "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 16, 2048, log=True),
            "max_features": trial.suggest_float("max_features", 0.05, 1.0, log=True),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True),
        }
        if task in CLASSIFICATION_TASKS:
            params["criterion"] = trial.suggest_categorical("criterion", ["gini", "entropy"])
        return params

    def grid(self, task: str) -> dict[str, list[Any]]:
        """Eight points over the share of features per split and the leaf size."""
        grid: dict[str, list[Any]] = {
            "n_estimators": [100],
            "max_leaf_nodes": [1024],
            "max_features": [self._default_features(task), 0.5],
            "min_samples_leaf": [1, 3, 10, 30],
        }
        if task in CLASSIFICATION_TASKS:
            grid["criterion"] = ["gini"]
        return grid

    @staticmethod
    def _default_features(task: str) -> float:
        # scikit-learn's defaults: sqrt(n) features for classification (about 0.1-0.3 of
        # tens to hundreds of columns), all of them for regression
        return 0.2 if task in CLASSIFICATION_TASKS else 1.0

    def refit_params(self, model: Any, row_ratio: float) -> dict[str, Any] | None:
        """Nothing to fix: a forest is grown in full, without a validation set."""
        return {}

    def build(self, params: Mapping[str, Any], context: BuildContext) -> Any:
        """Unscaled, ordinal-coded preprocessing + ExtraTreesClassifier/ExtraTreesRegressor."""
        from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor

        pre = build_preprocessor(
            context.schema,
            context.features,
            scale=False,
            text_column=context.text_column,
            categorical="ordinal",
        )
        common: dict[str, Any] = {
            "n_estimators": int(params.get("n_estimators", 100)),
            "max_leaf_nodes": int(params.get("max_leaf_nodes", 1024)),
            "max_features": float(
                params.get("max_features", self._default_features(context.task))
            ),
            "min_samples_leaf": int(params.get("min_samples_leaf", 1)),
            "random_state": context.seed,
            "n_jobs": self.n_jobs,
        }
        if context.task in CLASSIFICATION_TASKS:
            model: Any = ExtraTreesClassifier(
                criterion=str(params.get("criterion", "gini")),
                class_weight=_class_weight(context.objective),
                **common,
            )
        else:
            model = ExtraTreesRegressor(**common)
        return _finish(ModelPipeline([("preprocess", pre), ("model", model)]), context)


@FAMILIES.register("svm")
class SVMFamily(BaseModelFamily):
    """A support-vector machine with an RBF kernel, on scaled, one-hot features (small data).

    On a few thousand rows a kernel machine is often the most accurate family
    (smooth, local decision functions, a convex fit with no early stopping), and its
    errors differ from trees', which helps an ensemble. Its cost grows with the
    square of the rows, so it is skipped above ``max_rows``. The scaling is
    searched: standardising suits features of comparable spread, min-max scaling
    features with rare large values (pixels, counts) that standardising would turn
    into outliers. Classification probabilities come from Platt scaling; see
    :mod:`assay.train.kernel`.
    """

    tasks = _TABULAR
    max_rows = 5_000

    def search_space(self, trial: optuna.Trial, task: str) -> dict[str, Any]:
        """``C``, the kernel width, the scaling and (regression) ``epsilon``."""
        params: dict[str, Any] = {
            "C": trial.suggest_float("C", 0.1, 100.0, log=True),
            "gamma_factor": trial.suggest_float("gamma_factor", 0.1, 10.0, log=True),
            "scaling": trial.suggest_categorical("scaling", ["standard", "minmax"]),
        }
        if task not in CLASSIFICATION_TASKS:
            params["epsilon"] = trial.suggest_float("epsilon", 0.01, 0.5, log=True)
        return params

    def grid(self, task: str) -> dict[str, list[Any]]:
        """Eight points over ``C``, the kernel width and the scaling."""
        grid: dict[str, list[Any]] = {
            "C": [1.0, 10.0],
            "gamma_factor": [1.0, 3.0],
            "scaling": ["standard", "minmax"],
        }
        if task not in CLASSIFICATION_TASKS:
            grid["epsilon"] = [0.1]
        return grid

    def refit_params(self, model: Any, row_ratio: float) -> dict[str, Any] | None:
        """Nothing to fix: the fit is convex and needs no validation set."""
        return {}

    def build(self, params: Mapping[str, Any], context: BuildContext) -> Any:
        """Scaled preprocessing + RBFSupportVectorClassifier/RBFSupportVectorRegressor."""
        from assay.train.kernel import RBFSupportVectorClassifier, RBFSupportVectorRegressor

        scaling = str(params.get("scaling", "standard"))
        if scaling not in ("standard", "minmax"):
            raise ValueError(f"svm scaling must be 'standard' or 'minmax', not {scaling!r}")
        pre = build_preprocessor(
            context.schema,
            context.features,
            scale="minmax" if scaling == "minmax" else "standard",
            text_column=context.text_column,
        )
        C = float(params.get("C", 1.0))
        gamma_factor = float(params.get("gamma_factor", 1.0))
        if context.task in CLASSIFICATION_TASKS:
            model: Any = RBFSupportVectorClassifier(
                C=C,
                gamma_factor=gamma_factor,
                class_weight=_class_weight(context.objective),
                random_state=context.seed,
            )
        else:
            model = RBFSupportVectorRegressor(
                C=C, gamma_factor=gamma_factor, epsilon=float(params.get("epsilon", 0.1))
            )
        return _finish(ModelPipeline([("preprocess", pre), ("model", model)]), context)


@FAMILIES.register("mlp")
class MLPFamily(BaseModelFamily):
    """A PyTorch multi-layer perceptron with early stopping on the validation loss."""

    tasks = _TABULAR

    def search_space(self, trial: optuna.Trial, task: str) -> dict[str, Any]:
        """Depth, width, dropout, learning rate, weight decay, batch size."""
        return {
            "n_layers": trial.suggest_int("n_layers", 1, 3),
            "width": trial.suggest_int("width", 16, 256, log=True),
            "dropout": trial.suggest_float("dropout", 0.0, 0.5),
            "learning_rate": trial.suggest_float("learning_rate", 1e-4, 3e-2, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
            "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128]),
        }

    def grid(self, task: str) -> dict[str, list[Any]]:
        """Eight points over depth, width and dropout."""
        return {
            "n_layers": [2, 1],
            "width": [64, 256],
            "dropout": [0.1, 0.3],
            "learning_rate": [1e-3],
            "weight_decay": [1e-4],
            "batch_size": [64],
        }

    def refit_params(self, model: Any, row_ratio: float) -> dict[str, Any] | None:
        """``max_epochs``: the early-stopped best epoch, with no rows held out.

        The epoch count is not scaled: an epoch over more rows already takes
        proportionally more optimiser steps.
        """
        best = int(getattr(model, "best_epoch_", 0) or 0)
        if best <= 0:
            return None
        return {"max_epochs": best, "validation_fraction": 0.0}

    def build(self, params: Mapping[str, Any], context: BuildContext) -> Any:
        """Scaled, one-hot preprocessing + TorchMLPClassifier/TorchMLPRegressor.

        ``max_epochs`` (default 200), ``patience`` (default 10) and
        ``validation_fraction`` (default 0.1, used without an ``eval_set``) may be
        passed in params.
        """
        from assay.train.mlp import TorchMLPClassifier, TorchMLPRegressor  # imports torch

        pre = build_preprocessor(
            context.schema, context.features, scale=True, text_column=context.text_column
        )
        common: dict[str, Any] = {
            "hidden_layers": (int(params.get("width", 64)),) * int(params.get("n_layers", 2)),
            "dropout": float(params.get("dropout", 0.1)),
            "learning_rate": float(params.get("learning_rate", 1e-3)),
            "weight_decay": float(params.get("weight_decay", 1e-4)),
            "batch_size": int(params.get("batch_size", 64)),
            "max_epochs": int(params.get("max_epochs", 200)),
            "patience": int(params.get("patience", 10)),
            "validation_fraction": float(params.get("validation_fraction", 0.1)),
            "random_state": context.seed,
        }
        if context.task in CLASSIFICATION_TASKS:
            model: Any = TorchMLPClassifier(
                class_weight=_class_weight(context.objective), **common
            )
        elif context.objective.loss == "l1":
            model = TorchMLPRegressor(loss="absolute_error", **common)
        else:
            model = TorchMLPRegressor(loss="squared_error", **common)
        return _finish(ModelPipeline([("preprocess", pre), ("model", model)]), context)


@FAMILIES.register("tfidf_linear")
class TfidfLinearFamily(BaseModelFamily):
    """Text classification: TF-IDF of the text column + logistic regression.

    Only the text column is used; other features are ignored (a tabular family
    sees them alongside the text).
    """

    tasks = frozenset({"text-classification"})

    def search_space(self, trial: optuna.Trial, task: str) -> dict[str, Any]:
        """``C``, the longest n-gram and the minimum document frequency."""
        return {
            "C": trial.suggest_float("C", 1e-2, 1e2, log=True),
            "ngram_max": trial.suggest_int("ngram_max", 1, 2),
            "min_df": trial.suggest_int("min_df", 1, 3),
        }

    def grid(self, task: str) -> dict[str, list[Any]]:
        """Regularisation by n-gram length."""
        return {"C": [10.0, 1.0, 100.0], "ngram_max": [2, 1], "min_df": [1]}

    def refit_params(self, model: Any, row_ratio: float) -> dict[str, Any] | None:
        """Nothing to fix: TF-IDF and the linear model need no validation set."""
        return {}

    def build(self, params: Mapping[str, Any], context: BuildContext) -> Any:
        """TF-IDF (sublinear tf, word n-grams) + LogisticRegression."""
        if context.text_column is None:
            raise ConfigError(
                "the tfidf_linear family needs a text column",
                key="data.text",
                expected="the name of the free-text column",
                received="no text column",
                fix="Set data.text in assay.yaml, or remove tfidf_linear from search.families.",
            )
        options = {
            "ngram_range": (1, int(params.get("ngram_max", 2))),
            "min_df": int(params.get("min_df", 1)),
        }
        pre = build_preprocessor(
            context.schema, [], scale=False, text_column=context.text_column, text_options=options
        )
        model = LogisticRegression(
            C=float(params.get("C", 10.0)),
            class_weight=_class_weight(context.objective),
            max_iter=2000,
            random_state=context.seed,
        )
        return _finish(ModelPipeline([("preprocess", pre), ("model", model)]), context)
