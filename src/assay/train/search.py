"""Hyper-parameter search over model families with Optuna, judged on the validation rows.

Design choices:

* **One study per family.** Each family gets its own Optuna study with the budget
  split evenly (at least one trial each; unused time carries over to the next
  family). A family's space is then fixed, so multivariate TPE and the grid
  sampler work on it directly, and the pruner compares a trial's per-round (trees)
  or per-epoch (nets) validation losses only with trials of the same family.
* **Intermediate values are losses.** Pruning sees the model's own validation loss
  (negated when the study maximises the primary metric); the trial's final value is
  the primary metric on the validation rows, computed with scikit-learn.
* **The first TPE/random trial of each family is its default parameters**, so a
  small budget still tries a sensible point.
* **The best estimator is the one fitted in the best trial**: trained on the
  training rows, with the validation rows used for early stopping and to choose
  the decision threshold. It is not refitted on train + validation: that would
  leave no rows to stop on or to choose a threshold on, and the fitted model would
  differ from the one whose score is reported.
* The dummy baseline is always fitted and scored; it is never searched.
* Reproducible: with a trial budget, the same seed gives the same trials, the same
  best parameters and the same model (a time budget makes the trial count vary).

The search never sees a test set: it is given training and validation rows only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from sklearn.utils.class_weight import compute_sample_weight

from assay.config.metrics import CLASSIFICATION_TASKS, HIGHER_IS_BETTER
from assay.data.schema import Schema
from assay.errors import AssayError, ConfigError, DataError
from assay.train.curves import Diagnosis, LearningCurve, diagnose, learning_curve_for
from assay.train.families import FAMILIES, BaseModelFamily, get_family
from assay.train.objective import ObjectiveHints, objective_for
from assay.train.pipeline import fit_model
from assay.train.result import (
    SamplerName,
    SearchResult,
    TrialInfo,
    TrialRecord,
    TrialState,
    plain,
)
from assay.train.scoring import score_estimator

__all__ = [
    "SamplerName",
    "SearchResult",
    "TrialInfo",
    "TrialRecord",
    "TrialState",
    "run_search",
]

_STATES: dict[optuna.trial.TrialState, TrialState] = {
    optuna.trial.TrialState.COMPLETE: "complete",
    optuna.trial.TrialState.PRUNED: "pruned",
    optuna.trial.TrialState.FAIL: "failed",
}


@dataclass
class _FamilyBest:
    """The best trial of one family so far, with its fitted model."""

    value: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    estimator: Any = None


def _check_inputs(
    X_train: Any,
    y_train: Any,
    X_val: Any,
    y_val: Any,
    features: Sequence[str],
    families: Sequence[str],
    sampler: str,
    trials: int | None,
    minutes: float | None,
) -> None:
    for name, X, y in (("training", X_train, y_train), ("validation", X_val, y_val)):
        if len(X) != len(y):
            raise DataError(
                f"the {name} rows and labels differ in length",
                expected="one label per row",
                received=f"{len(X)} rows, {len(y)} labels",
                fix="Pass the labels of exactly these rows.",
            )
        if len(X) == 0:
            raise DataError(
                f"there are no {name} rows",
                expected="at least one row",
                received="0 rows",
                fix="Check the split sizes and the data source.",
            )
    columns = set(getattr(X_train, "columns", []))
    for name in features:
        if columns and name not in columns:
            raise DataError(
                "a feature is missing from the training frame",
                column=name,
                expected="every feature column in the frame",
                received="columns: " + ", ".join(sorted(map(str, columns))[:20]),
                fix="Pass the frame the schema was inferred from.",
            )
    if not families:
        raise ConfigError(
            "no model family to search",
            key="search.families",
            expected="a list of family names, e.g. [dummy, linear, lightgbm, mlp]",
            received="[]",
            fix="Name at least one family.",
        )
    for i, alias in enumerate(families):
        FAMILIES.get(alias, key=f"search.families[{i}]")
    if sampler not in ("tpe", "random", "grid"):
        raise ConfigError(
            f"unknown sampler '{sampler}'",
            key="search.sampler",
            expected="tpe, random or grid",
            received=sampler,
            fix="Choose one of the three samplers.",
        )
    if trials is not None and trials < 1:
        raise ConfigError(
            "the trial budget must be at least 1",
            key="search.trials",
            expected="an integer >= 1, or null with search.minutes set",
            received=trials,
            fix="Raise search.trials.",
        )
    if minutes is not None and minutes <= 0:
        raise ConfigError(
            "the time budget must be positive",
            key="search.minutes",
            expected="minutes > 0, or null with search.trials set",
            received=minutes,
            fix="Raise search.minutes or remove it.",
        )
    if trials is None and minutes is None:
        raise ConfigError(
            "the search has no budget",
            key="search.trials",
            expected="search.trials or search.minutes",
            received="neither",
            fix="Set search.trials (e.g. 20) or search.minutes.",
        )


def _split_trials(total: int | None, n: int) -> list[int | None]:
    if total is None:
        return [None] * n
    base, extra = divmod(total, n)
    return [max(1, base + (1 if i < extra else 0)) for i in range(n)]


def _make_sampler(
    sampler: SamplerName, family: BaseModelFamily, task: str, seed: int, n_trials: int | None
) -> optuna.samplers.BaseSampler:
    if sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if sampler == "grid":
        return optuna.samplers.GridSampler(family.grid(task), seed=seed)
    startup = 10 if n_trials is None else max(2, min(10, n_trials // 3))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)


def run_search(
    X_train: Any,
    y_train: Any,
    X_val: Any,
    y_val: Any,
    *,
    task: str,
    schema: Schema,
    features: Sequence[str],
    text_column: str | None,
    families: Sequence[str],
    primary_metric: str,
    trials: int | None,
    minutes: float | None,
    sampler: SamplerName,
    pruning: bool,
    seed: int,
    progress: Callable[[TrialInfo], None] | None = None,
) -> SearchResult:
    """Search each family's hyper-parameters on train/validation and keep the best model.

    Args:
        X_train, y_train, X_val, y_val: the training and validation rows (frames with
            the ``features`` columns) and labels. No test rows.
        task, schema, features, text_column: what is modelled, from what.
        families: family aliases (``dummy`` is the baseline and is always fitted).
        primary_metric: the metric that decides (a metric of the task).
        trials, minutes: the budget; either or both (the first reached stops).
        sampler: ``tpe`` (with ``pruning``: a median pruner), ``random`` or ``grid``.
        seed: seeds the samplers and every model.
        progress: called after each trial.

    Raises:
        ConfigError: unknown family/sampler, metric not of the task, no budget, or
            no listed family supports the task.
        DataError: rows and labels differ in length, empty sets, missing features.
        AssayError: every trial failed.
    """
    started = time.perf_counter()
    _check_inputs(X_train, y_train, X_val, y_val, features, families, sampler, trials, minutes)
    hints = objective_for(task, primary_metric)
    higher = HIGHER_IS_BETTER[primary_metric]
    build_kw: dict[str, Any] = {
        "task": task,
        "schema": schema,
        "features": list(features),
        "text_column": text_column,
        "objective": hints,
        "seed": seed,
    }

    dummy = get_family("dummy")
    baseline = dummy.build(dummy.defaults(task), **build_kw)
    fit_model(baseline, X_train, y_train, eval_set=(X_val, y_val))
    baseline_value = score_estimator(primary_metric, baseline, X_val, y_val)

    searched: list[str] = []
    skipped: dict[str, str] = {}
    for alias in dict.fromkeys(families):
        family = get_family(alias)
        if not family.searched:
            continue
        if not family.supports(task):
            skipped[alias] = f"does not support task '{task}'"
            continue
        searched.append(alias)
    if not searched and skipped:
        able = [a for a, c in FAMILIES.items() if c.searched and c().supports(task)]
        raise ConfigError(
            f"no listed model family supports the task '{task}'",
            key="search.families",
            expected=f"families that support {task}: " + ", ".join(able),
            received=", ".join(families),
            fix="Add a family that supports the task.",
        )

    budgets = _split_trials(trials, len(searched)) if searched else []
    runner = _Runner(
        X_train,
        y_train,
        X_val,
        y_val,
        task=task,
        primary=primary_metric,
        higher=higher,
        sampler=sampler,
        pruning=pruning,
        seed=seed,
        build_kw=build_kw,
        progress=progress,
        planned=None if trials is None else sum(n or 0 for n in budgets),
    )
    deadline = None if minutes is None else started + minutes * 60.0
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        for index, alias in enumerate(searched):
            timeout = None
            if deadline is not None:
                timeout = (deadline - time.perf_counter()) / (len(searched) - index)
            runner.run_family(alias, budgets[index], timeout)
    finally:
        optuna.logging.set_verbosity(verbosity)
    records, bests, better = runner.records, runner.bests, runner.better

    winner: str | None = None
    for alias in searched:
        value = bests[alias].value
        if value is not None and (winner is None or better(value, bests[winner].value)):
            winner = alias
    if winner is None and searched:
        first = next((r.error for r in records if r.error), "no trial finished")
        raise AssayError(
            "no search trial completed",
            where="search",
            expected="at least one trial that fits and scores",
            received=first,
            fix="Check the data and the listed families, or raise the budget.",
        )
    if winner is None:
        best_family, best_params, best_value, estimator = "dummy", {}, baseline_value, baseline
    else:
        chosen = bests[winner]
        best_family, best_params = winner, chosen.params
        best_value, estimator = float(chosen.value or 0.0), chosen.estimator

    curve: LearningCurve | None
    try:
        curve = learning_curve_for(
            estimator, X_train, y_train, X_val, y_val, metric=primary_metric, seed=seed
        )
    except ValueError:  # no training share could be fitted
        curve = None
    diagnosis = None
    if curve is not None:
        diagnosis = _diagnose(curve, primary_metric, baseline, baseline_value, X_val, y_val, hints)
    return SearchResult(
        task=task,
        primary_metric=primary_metric,
        higher_is_better=higher,
        sampler=sampler,
        seed=seed,
        objective=hints,
        best_family=best_family,
        best_params={k: plain(v) for k, v in best_params.items()},
        best_value=float(best_value),
        baseline_value=float(baseline_value),
        trials=tuple(records),
        curve=curve,
        diagnosis=diagnosis,
        skipped=skipped,
        seconds=round(time.perf_counter() - started, 4),
        estimator=estimator,
        baseline=baseline,
    )


class _Runner:
    """Runs one study per family and keeps the records and each family's best model."""

    def __init__(
        self,
        X_train: Any,
        y_train: Any,
        X_val: Any,
        y_val: Any,
        *,
        task: str,
        primary: str,
        higher: bool,
        sampler: SamplerName,
        pruning: bool,
        seed: int,
        build_kw: dict[str, Any],
        progress: Callable[[TrialInfo], None] | None,
        planned: int | None,
    ) -> None:
        self.data = (X_train, y_train, X_val, y_val)
        self.task, self.primary, self.higher = task, primary, higher
        self.sampler, self.pruning, self.seed = sampler, pruning, seed
        self.build_kw, self.progress, self.planned = build_kw, progress, planned
        self.records: list[TrialRecord] = []
        self.bests: dict[str, _FamilyBest] = {}
        self.overall: tuple[str | None, float | None] = (None, None)

    def better(self, a: float, b: float | None) -> bool:
        """True when score ``a`` beats ``b`` (or ``b`` is missing)."""
        return b is None or (a > b if self.higher else a < b)

    def run_family(self, alias: str, n_trials: int | None, timeout: float | None) -> None:
        """One study for ``alias``: at least one trial even when the time share is spent."""
        family = get_family(alias)
        self.bests[alias] = _FamilyBest()
        if self.sampler == "grid":
            grid = family.grid(self.task)
            size = math.prod(len(v) for v in grid.values()) if grid else 1
            n_trials = size if n_trials is None else min(n_trials, size)
        if timeout is not None and timeout <= 0:
            n_trials, timeout = 1, None
        pruner: optuna.pruners.BasePruner = (
            optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=5)
            if self.pruning
            else optuna.pruners.NopPruner()
        )
        study = optuna.create_study(
            direction="maximize" if self.higher else "minimize",
            sampler=_make_sampler(self.sampler, family, self.task, self.seed, n_trials),
            pruner=pruner,
        )
        if self.sampler != "grid":
            study.enqueue_trial(family.defaults(self.task))
        errors: dict[int, str] = {}
        timings: dict[int, float] = {}

        def objective(trial: optuna.Trial) -> float:
            t0 = time.perf_counter()
            try:
                return self._evaluate(trial, alias, family, errors)
            finally:
                timings[trial.number] = time.perf_counter() - t0

        def record(_: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
            self._record(alias, frozen, errors, timings)

        study.optimize(objective, n_trials=n_trials, timeout=timeout, callbacks=[record])

    def _params(self, trial: optuna.Trial, family: BaseModelFamily) -> dict[str, Any]:
        if self.sampler != "grid":
            return family.search_space(trial, self.task)
        # the grid covers some parameters; the others keep their defaults
        grid = family.grid(self.task)
        drawn = {name: trial.suggest_categorical(name, values) for name, values in grid.items()}
        return {**family.defaults(self.task), **drawn}

    def _evaluate(
        self, trial: optuna.Trial, alias: str, family: BaseModelFamily, errors: dict[int, str]
    ) -> float:
        X_train, y_train, X_val, y_val = self.data
        try:
            params = self._params(trial, family)
            model = family.build(params, **self.build_kw)
            report = _Reporter(trial, self.higher) if self.pruning else None
            fit_model(model, X_train, y_train, eval_set=(X_val, y_val), on_step=report)
            value = score_estimator(self.primary, model, X_val, y_val)
            if not math.isfinite(value):
                raise ValueError(f"the validation {self.primary} is {value}")
        except (optuna.TrialPruned, AssayError):
            raise
        except Exception as exc:  # a configuration that fails is a failed trial, not a crash
            errors[trial.number] = f"{type(exc).__name__}: {exc}"
            return float("nan")  # Optuna records a NaN objective as a failed trial
        best = self.bests[alias]
        if self.better(value, best.value):
            best.value, best.params, best.estimator = value, dict(params), model
        return value

    def _record(
        self,
        alias: str,
        frozen: optuna.trial.FrozenTrial,
        errors: dict[int, str],
        timings: dict[int, float],
    ) -> None:
        state = _STATES.get(frozen.state, "failed")
        value = None
        if state == "complete" and frozen.value is not None:
            value = float(frozen.value)
        rec = TrialRecord(
            number=len(self.records),
            family=alias,
            params={k: plain(v) for k, v in frozen.params.items()},
            value=value,
            state=state,
            seconds=round(timings.get(frozen.number, 0.0), 4),
            error=errors.get(frozen.number),
        )
        self.records.append(rec)
        if value is not None and self.better(value, self.overall[1]):
            self.overall = (alias, value)
        if self.progress is not None:
            info = TrialInfo(rec, self.overall[0], self.overall[1], len(self.records), self.planned)
            self.progress(info)


class _Reporter:
    """``on_step`` for a trial: report the loss in the study's direction, prune if told."""

    def __init__(self, trial: optuna.Trial, maximise: bool) -> None:
        self.trial = trial
        self.sign = -1.0 if maximise else 1.0

    def __call__(self, step: int, loss: float) -> None:
        self.trial.report(self.sign * float(loss), step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step}")


def _diagnose(
    curve: LearningCurve,
    primary: str,
    baseline: Any,
    baseline_value: float,
    X_val: Any,
    y_val: Any,
    hints: ObjectiveHints,
) -> Diagnosis:
    if curve.kind == "train_size":
        return diagnose(curve, HIGHER_IS_BETTER[primary], baseline=baseline_value)
    weight = None
    if hints.task in CLASSIFICATION_TASKS and hints.balance_classes:
        # the models' losses are class-weighted, so the baseline's must be too
        weight = compute_sample_weight("balanced", np.asarray(y_val))
    try:
        reference = score_estimator(curve.metric, baseline, X_val, y_val, sample_weight=weight)
    except ValueError:
        reference = None
    if reference is not None and not math.isfinite(reference):
        reference = None
    return diagnose(curve, False, baseline=reference)
