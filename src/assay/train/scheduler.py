"""The search's machinery: the families' studies on one adaptive schedule, selection, refit.

:func:`assay.train.search.run_search` validates its inputs, then drives a
:class:`SearchScheduler`: :meth:`SearchScheduler.add` per family, :meth:`SearchScheduler.search`, then
:meth:`SearchScheduler.cv_candidates` / :meth:`SearchScheduler.cross_validate` on small data (and
:meth:`SearchScheduler.blend` for an ensemble of the candidates), and :meth:`SearchScheduler.refit` for
the final model. The module notes of
:mod:`assay.train.search` describe the schedule.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, cast

import lightgbm as lgb
import numpy as np
import optuna
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold

from assay.config.metrics import CLASSIFICATION_TASKS
from assay.data.values import native
from assay.errors import AssayError
from assay.train.context import BuildContext
from assay.train.curves import final_model
from assay.train.ensemble import (
    ENSEMBLE_STEPS,
    OutOfFoldScorer,
    aligned_proba,
    clear_gain,
    fitted_ensemble,
    select_blend,
)
from assay.train.families import BaseModelFamily, get_family
from assay.train.objective import ThresholdedClassifier, ThresholdMetric
from assay.train.pipeline import fit_model
from assay.train.result import (
    EnsembleMember,
    EnsembleRecord,
    SamplerName,
    TrialInfo,
    TrialRecord,
    TrialState,
)
from assay.train.scoring import score_estimator

__all__ = ["Arm", "Config", "CrossValidation", "Reporter", "SearchScheduler", "join_rows"]

_STATES: dict[optuna.trial.TrialState, TrialState] = {
    optuna.trial.TrialState.COMPLETE: "complete",
    optuna.trial.TrialState.PRUNED: "pruned",
    optuna.trial.TrialState.FAIL: "failed",
}

#: trials of the first phase per family (defaults + two), and its share of a time budget
WARM_TRIALS, WARM_SHARE = 3, 0.4
#: a family's share is exp(-gap / TEMPERATURE); below MIN_WEIGHT it gets no more trials
TEMPERATURE, MIN_WEIGHT = 0.1, 0.01
#: a one-parameter family stops after this many trials, the last ones without improvement
CONVERGE_AFTER, CONVERGE_STALE = 8, 5
#: most of a time budget kept for the cross-validated selection and the refit
FINISH_SHARE = 0.35
#: seconds to score one fold of out-of-fold predictions, generously (ensemble selection)
SCORE_SECONDS = 0.002


def join_rows(a: Any, b: Any) -> Any:
    """Training then validation rows (frames and series concatenated, else arrays)."""
    if isinstance(a, (pd.DataFrame, pd.Series)) and isinstance(b, (pd.DataFrame, pd.Series)):
        return pd.concat([a, b], ignore_index=True)
    return np.concatenate([np.asarray(a), np.asarray(b)])


def _take(data: Any, index: np.ndarray) -> Any:
    return data.iloc[index] if hasattr(data, "iloc") else np.asarray(data)[index]


def _fixed_share(estimator: Any) -> float:
    """The share of a trial's rounds/epochs a fixed-length refit repeats (1: not iterative)."""
    model = final_model(estimator)
    epochs = getattr(model, "n_epochs_", 0)
    if epochs and getattr(model, "best_epoch_", 0):
        return min(1.0, float(model.best_epoch_) / float(epochs))
    if isinstance(model, lgb.LGBMModel) and model.best_iteration_:
        best = float(model.best_iteration_)
        return min(1.0, best / max(float(model.booster_.current_iteration()), 1.0))
    return 1.0


def _warm_trials(trials: int | None, n_families: int) -> int:
    if trials is None:
        return WARM_TRIALS
    return max(1, min(WARM_TRIALS, trials // (2 * max(n_families, 1))))


def _make_sampler(
    sampler: SamplerName, family: BaseModelFamily, task: str, seed: int, trials: int | None
) -> optuna.samplers.BaseSampler:
    if sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if sampler == "grid":
        return optuna.samplers.GridSampler(family.grid(task), seed=seed)
    startup = 10 if trials is None else max(2, min(10, trials // 6))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)


@dataclass
class CrossValidation:
    """What :meth:`SearchScheduler.cross_validate` found, per candidate (``None``: not scored).

    Attributes:
        means: the mean fold score.
        predictions: the out-of-fold predictions of every row: probabilities in
            ``classes`` order for a classifier, else values.
        classes: the classes of all rows (``None``: regression).
        folds: the rows each fold scored.
    """

    means: list[float | None]
    predictions: list[np.ndarray | None]
    classes: np.ndarray | None = None
    folds: list[np.ndarray] = field(default_factory=list)


@dataclass
class Config:
    """A completed trial kept for the final choice.

    ``seconds`` estimates a fit of the configuration on the training rows without
    early stopping: the trial's time, less the rounds or epochs past the best one.
    """

    value: float
    params: dict[str, Any]
    estimator: Any
    seconds: float
    record: int = -1  # its position in SearchScheduler.records, once recorded


@dataclass
class Arm:
    """One family's study and how it has fared so far (``top``: best configurations first)."""

    alias: str
    family: BaseModelFamily
    study: optuna.Study
    size: int | None = None  # grid size: no more trials than grid points
    trials: int = 0
    seconds: float = 0.0
    dims: int = 0
    stale: int = 0
    done: bool = False
    top: list[Config] = field(default_factory=list)

    @property
    def value(self) -> float | None:
        """The best validation score so far."""
        return self.top[0].value if self.top else None

    def mean_seconds(self) -> float:
        """Mean wall time of one trial so far."""
        return self.seconds / self.trials if self.trials else 0.0


class SearchScheduler:
    """Runs the families' studies on one schedule and keeps each family's best models.

    Call order: :meth:`add` per family, :meth:`search`, then :meth:`ranked`,
    :meth:`cv_candidates`, :meth:`cross_validate`, :meth:`blend` and :meth:`refit`
    as needed.

    Args:
        data: training and validation rows and labels.
        context: what every model is built for (task, features, hints, seed); the
            studies' samplers and folds take the same task and seed.
        keep: configurations kept per family for a cross-validated choice.
        budget: the time budget in seconds, or ``None``.
        refit_ratio, cv_cost, blend_cost: what finishing costs, in units of a
            trial's seconds (0 when there is no refit / no cross-validation / no
            ensemble, whose members are refitted too).
    """

    def __init__(
        self,
        data: tuple[Any, Any, Any, Any],
        *,
        context: BuildContext,
        primary: str,
        higher: bool,
        sampler: SamplerName,
        pruning: bool,
        progress: Callable[[TrialInfo], None] | None,
        planned: int | None,
        baseline_value: float,
        keep: int,
        budget: float | None,
        refit_ratio: float,
        cv_cost: float,
        blend_cost: float = 0.0,
    ) -> None:
        self.data = data
        self.task, self.primary, self.higher = context.task, primary, higher
        self.sampler, self.pruning, self.seed = sampler, pruning, context.seed
        self.context, self.progress, self.planned = context, progress, planned
        self.baseline_value, self.keep = baseline_value, keep
        self.budget, self.refit_ratio, self.cv_cost = budget, refit_ratio, cv_cost
        self.blend_cost = blend_cost
        self.arms: dict[str, Arm] = {}
        self.records: list[TrialRecord] = []
        self.overall: tuple[str | None, float | None] = (None, None)
        self._errors: dict[tuple[str, int], str] = {}
        self._timings: dict[tuple[str, int], float] = {}
        self._configs: dict[tuple[str, int], Config] = {}

    def better(self, a: float, b: float | None) -> bool:
        """True when score ``a`` beats ``b`` (or ``b`` is missing)."""
        return b is None or (a > b if self.higher else a < b)

    def add(self, alias: str, trials: int | None) -> None:
        """Create the study of ``alias`` (defaults enqueued first, except for a grid)."""
        family = get_family(alias)
        size = None
        if self.sampler == "grid":
            grid = family.grid(self.task)
            size = math.prod(len(v) for v in grid.values()) if grid else 1
        pruner: optuna.pruners.BasePruner = (
            optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=5)
            if self.pruning
            else optuna.pruners.NopPruner()
        )
        study = optuna.create_study(
            direction="maximize" if self.higher else "minimize",
            sampler=_make_sampler(self.sampler, family, self.task, self.seed, trials),
            pruner=pruner,
        )
        if self.sampler != "grid":
            study.enqueue_trial(family.defaults(self.task))
        self.arms[alias] = Arm(alias, family, study, size=size)

    # the schedule ---------------------------------------------------------------------
    def search(self, trials: int | None, deadline: float | None) -> None:
        """A first phase for every family, then trials to the families by their shares."""
        arms = list(self.arms.values())
        if not arms:
            return
        warm = _warm_trials(trials, len(arms))
        cap = None if self.budget is None else WARM_SHARE * self.budget / len(arms)
        for arm in arms:
            for k in range(warm):
                if arm.done or (k > 0 and not self._affordable(arm, deadline, cap)):
                    break
                self._step(arm)
        limit = None if trials is None else max(trials, len(arms))
        # seconds under a time budget; trial counts otherwise (reproducible)
        used: Callable[[Arm], float] = (
            (lambda a: a.seconds) if deadline is not None else (lambda a: float(a.trials))
        )
        while limit is None or len(self.records) < limit:
            weights = self.weights()
            open_ = [
                a
                for a in arms
                if not a.done
                and weights[a.alias] >= MIN_WEIGHT
                and self._affordable(a, deadline, None)
            ]
            if not open_:
                return
            self._step(min(open_, key=lambda a: used(a) / weights[a.alias]))

    def _affordable(self, arm: Arm, deadline: float | None, cap: float | None) -> bool:
        if deadline is None:
            return True
        cost = arm.mean_seconds()
        if cap is not None and arm.seconds + cost > cap:
            return False
        return time.perf_counter() + cost <= deadline - self.reserve()

    def weights(self) -> dict[str, float]:
        """Each family's share: 1 for the leader, less the further its best trails.

        The gap is measured in units of the leader's improvement over the baseline.
        """
        sign = 1.0 if self.higher else -1.0
        scores = {a.alias: sign * a.value for a in self.arms.values() if a.value is not None}
        if not scores:
            return {alias: 1.0 for alias in self.arms}
        lead = max(scores.values())
        base = sign * self.baseline_value
        scale = lead - base if math.isfinite(base) else 0.0
        scale = max(scale, 1e-3 * abs(lead), 1e-12)
        return {
            alias: math.exp(-(lead - scores[alias]) / scale / TEMPERATURE)
            if alias in scores
            else 0.0
            for alias in self.arms
        }

    def ranked(self) -> list[Arm]:
        """Families with a completed trial, best validation score first (ties: listed order)."""
        sign = -1.0 if self.higher else 1.0
        done = [a for a in self.arms.values() if a.value is not None]
        return sorted(done, key=lambda a: sign * float(a.value or 0.0))

    def cv_candidates(self) -> list[tuple[Arm, Config]]:
        """The configurations a cross-validated choice compares.

        The kept configurations of each family still worth a trial (the leader
        always), by rank: every family's best first, then every second best, ...
        """
        weights = self.weights()
        arms = [a for i, a in enumerate(self.ranked()) if i == 0 or weights[a.alias] >= MIN_WEIGHT]
        return [(a, a.top[r]) for r in range(self.keep) for a in arms if r < len(a.top)]

    def reserve(self) -> float:
        """Seconds a time budget keeps for the cross-validated selection and the refit."""
        ranked = self.ranked()
        if self.budget is None or not ranked:
            return 0.0
        cost = ranked[0].top[0].seconds * self.refit_ratio
        candidates = self.cv_candidates() if self.cv_cost else []
        if len(candidates) > 1:
            cost += (self.cv_cost + self.blend_cost) * sum(c.seconds for _, c in candidates)
            if self.blend_cost:
                # the greedy selection scores up to ENSEMBLE_STEPS blends per candidate
                folds = self.cv_cost / max(self.refit_ratio, 1.0) + 1.0
                cost += ENSEMBLE_STEPS * len(candidates) * folds * SCORE_SECONDS
        return min(cost, FINISH_SHARE * self.budget)

    # trials ---------------------------------------------------------------------------
    def _step(self, arm: Arm) -> None:
        """One more trial of ``arm``'s study."""

        def objective(trial: optuna.Trial) -> float:
            t0 = time.perf_counter()
            try:
                return self._evaluate(trial, arm)
            finally:
                self._timings[(arm.alias, trial.number)] = time.perf_counter() - t0

        def record(_: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
            self._record(arm, frozen)

        before = arm.value
        arm.study.optimize(objective, n_trials=1, callbacks=[record])
        arm.trials += 1
        after = arm.value
        improved = after is not None and (
            before is None or abs(after - before) > 1e-4 * max(abs(before), 1e-12)
        )
        arm.stale = 0 if improved else arm.stale + 1
        if arm.size is not None and arm.trials >= arm.size:
            arm.done = True
        if arm.dims == 1 and arm.trials >= CONVERGE_AFTER and arm.stale >= CONVERGE_STALE:
            arm.done = True

    def _params(self, trial: optuna.Trial, family: BaseModelFamily) -> dict[str, Any]:
        if self.sampler != "grid":
            return family.search_space(trial, self.task)
        # the grid covers some parameters; the others keep their defaults
        grid = family.grid(self.task)
        drawn = {name: trial.suggest_categorical(name, values) for name, values in grid.items()}
        return {**family.defaults(self.task), **drawn}

    def _evaluate(self, trial: optuna.Trial, arm: Arm) -> float:
        X_train, y_train, X_val, y_val = self.data
        t0 = time.perf_counter()
        try:
            params = self._params(trial, arm.family)
            model = arm.family.build(params, self.context)
            report = Reporter(trial, self.higher) if self.pruning else None
            fit_model(model, X_train, y_train, eval_set=(X_val, y_val), on_step=report)
            value = score_estimator(self.primary, model, X_val, y_val)
            if not math.isfinite(value):
                raise ValueError(f"the validation {self.primary} is {value}")
        except (optuna.TrialPruned, AssayError):
            raise
        except Exception as exc:  # noqa: BLE001 - a configuration that fails is a failed trial
            self._errors[(arm.alias, trial.number)] = f"{type(exc).__name__}: {exc}"
            return float("nan")  # Optuna records a NaN objective as a failed trial
        seconds = (time.perf_counter() - t0) * _fixed_share(model)
        config = Config(value, dict(params), model, seconds)
        self._configs[(arm.alias, trial.number)] = config
        if all(c.params != config.params for c in arm.top):
            at = next((i for i, c in enumerate(arm.top) if self.better(value, c.value)), None)
            arm.top.insert(len(arm.top) if at is None else at, config)
            del arm.top[self.keep :]
        return value

    def _record(self, arm: Arm, frozen: optuna.trial.FrozenTrial) -> None:
        state = _STATES.get(frozen.state, "failed")
        value = None
        if state == "complete" and frozen.value is not None:
            value = float(frozen.value)
        key = (arm.alias, frozen.number)
        seconds = self._timings.get(key, 0.0)
        arm.seconds += seconds
        arm.dims = max(arm.dims, len(frozen.params))
        rec = TrialRecord(
            number=len(self.records),
            family=arm.alias,
            params={k: native(v, sequences=True) for k, v in frozen.params.items()},
            value=value,
            state=state,
            seconds=round(seconds, 4),
            error=self._errors.get(key),
        )
        self.records.append(rec)
        config = self._configs.pop(key, None)
        if config is not None:
            config.record = rec.number
        if value is not None and self.better(value, self.overall[1]):
            self.overall = (arm.alias, value)
        if self.progress is not None:
            info = TrialInfo(rec, self.overall[0], self.overall[1], len(self.records), self.planned)
            self.progress(info)

    def reject(self, arm: Arm, config: Config, reason: str) -> None:
        """Take ``config`` out of the final choice; its trial record keeps ``reason``."""
        arm.top[:] = [c for c in arm.top if c is not config]
        if 0 <= config.record < len(self.records):
            rec = self.records[config.record]
            self.records[config.record] = replace(rec, rejected=reason)

    def restore(self, arm: Arm, config: Config) -> None:
        """Put a rejected ``config`` back into the final choice (best first)."""
        if all(c is not config for c in arm.top):
            arm.top.append(config)
            sign = -1.0 if self.higher else 1.0
            arm.top.sort(key=lambda c: sign * c.value)
        if 0 <= config.record < len(self.records):
            self.records[config.record] = replace(self.records[config.record], rejected=None)

    # selection and refit --------------------------------------------------------------
    def cross_validate(
        self,
        candidates: list[tuple[Arm, Config]],
        X: Any,
        y: Any,
        folds: int,
        groups: Any,
        deadline: float | None,
    ) -> CrossValidation:
        """Each candidate's mean fold score and out-of-fold predictions.

        Each fold is fitted as the refit is (:meth:`refit`). Under a time budget whose
        finishing share cannot hold every fit (and the refit of an ensemble of them),
        the last candidates (never below two) and then folds (never below three) are
        dropped. A candidate whose fold fails
        or scores a non-finite value has neither a mean nor predictions.
        """
        n_train = len(self.data[0])
        result = CrossValidation(
            means=[None] * len(candidates),
            predictions=[None] * len(candidates),
            classes=np.unique(np.asarray(y)) if self.task in CLASSIFICATION_TASKS else None,
        )
        if deadline is not None and self.budget is not None:
            refit = candidates[0][1].seconds * self.refit_ratio
            allowed = max(deadline - time.perf_counter(), FINISH_SHARE * self.budget) - refit

            def cost(k: int, n: int) -> float:
                per_second = (k - 1) * len(y) / n_train + self.blend_cost
                return per_second * sum(c.seconds for _, c in candidates[:n])

            n = len(candidates)
            while cost(folds, n) > allowed and (n > 2 or folds > 3):
                if n > 2:
                    n -= 1
                else:
                    folds -= 1
            candidates = candidates[:n]
        splits = self._folds(y, folds, groups)
        if not splits:
            return result
        result.folds = [score_idx for _, score_idx in splits]
        for i, (arm, config) in enumerate(candidates):
            scores = []
            predicted = self._empty_prediction(len(y), result.classes)
            for fit_idx, score_idx in splits:
                X_fit, y_fit = _take(X, fit_idx), _take(y, fit_idx)
                X_score, y_score = _take(X, score_idx), _take(y, score_idx)
                try:
                    extra = arm.family.refit_params(
                        final_model(config.estimator), len(fit_idx) / n_train
                    )
                    model = self._fit_fixed(arm, config, extra or {}, X_fit, y_fit)
                    value = score_estimator(self.primary, model, X_score, y_score)
                    predicted[score_idx] = _prediction(model, X_score, result.classes)
                except Exception:  # noqa: BLE001 - a family that cannot fit a fold is left out
                    break
                if not math.isfinite(value):
                    break
                scores.append(value)
            if len(scores) == len(splits):
                result.means[i] = float(np.mean(scores))
                if np.all(np.isfinite(predicted)):
                    result.predictions[i] = predicted
        return result

    @staticmethod
    def _empty_prediction(n: int, classes: np.ndarray | None) -> np.ndarray:
        shape = (n,) if classes is None else (n, len(classes))
        return np.full(shape, np.nan)

    def _folds(self, y: Any, folds: int, groups: Any) -> list[tuple[np.ndarray, np.ndarray]]:
        y_arr = np.asarray(y)
        index = np.zeros(len(y_arr))
        if groups is not None:
            k = min(folds, len(np.unique(np.asarray(groups))))
            if k < 2:
                return []
            return list(GroupKFold(n_splits=k).split(index, y_arr, np.asarray(groups)))
        if self.task in CLASSIFICATION_TASKS:
            k = min(folds, int(np.unique(y_arr, return_counts=True)[1].min()))
            if k < 2:
                return []
            splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=self.seed)
            return list(splitter.split(index, y_arr))
        kfold = KFold(n_splits=min(folds, len(y_arr)), shuffle=True, random_state=self.seed)
        return list(kfold.split(index, y_arr))

    def refit(
        self, arm: Arm, config: Config, X: Any, y: Any, ratio: float, *, as_folds: bool = False
    ) -> tuple[Any, dict[str, Any]] | None:
        """``config`` fitted on ``X, y`` without validation rows; ``None`` when not sound.

        ``as_folds``: fit it the way the cross-validation fitted each fold, even where
        the family finds a refit unsound (an ensemble member must match its
        out-of-fold predictions).
        """
        extra = arm.family.refit_params(final_model(config.estimator), ratio)
        if extra is None:
            if not as_folds:
                return None
            extra = {}
        return self._fit_fixed(arm, config, extra, X, y), extra

    def blend(
        self,
        candidates: list[tuple[Arm, Config]],
        cv: CrossValidation,
        X: Any,
        y: Any,
        ratio: float,
        threshold_metric: ThresholdMetric | None,
        deadline: float | None,
    ) -> tuple[Any, EnsembleRecord] | None:
        """An ensemble of cross-validated candidates refitted on ``X, y``, if it is better.

        The weights come from :func:`select_blend` on the out-of-fold predictions;
        ``None`` when fewer than two candidates have them, when the blend does not
        beat the best single candidate by more than the folds' noise
        (:func:`clear_gain`), when refitting its extra members would pass
        the deadline, or when a member fails to refit.
        """
        usable = [i for i, p in enumerate(cv.predictions) if p is not None]
        if len(usable) < 2 or not cv.folds:
            return None
        y_arr = np.asarray(y)
        scorer = OutOfFoldScorer(
            self.primary,
            y_arr,
            tuple(cv.folds),
            cv.classes,
            threshold_metric if self.task == "binary" else None,
        )
        predictions = [cv.predictions[i] for i in usable]
        chosen = select_blend(
            cast(list[np.ndarray], predictions), scorer, higher_is_better=self.higher
        )
        if not chosen.improves:
            return None
        blended = np.asarray(
            sum(w * cast(np.ndarray, predictions[j]) for j, w in enumerate(chosen.weights) if w)
        )
        fold_values = scorer.fold_values(blended)
        single_folds = scorer.fold_values(cast(np.ndarray, predictions[chosen.single]))
        if not clear_gain(fold_values, single_folds, higher_is_better=self.higher):
            return None
        order = sorted(chosen.members, key=lambda j: (-chosen.weights[j], j))
        picked = [(candidates[usable[j]], chosen.weights[j], usable[j]) for j in order]
        if deadline is not None:
            single = candidates[usable[chosen.single]][1]
            extra_cost = sum(c.seconds for (_, c), _, _ in picked) - single.seconds
            if time.perf_counter() + extra_cost * max(self.refit_ratio, 1.0) > deadline:
                return None
        members, fitted, records = [], [], []
        for (arm, config), weight, i in picked:
            try:
                done = self.refit(arm, config, X, y, ratio, as_folds=True)
            except Exception:  # noqa: BLE001 - no ensemble then; the single model stands
                return None
            if done is None:
                return None
            model, extra = done
            if isinstance(model, ThresholdedClassifier):  # the ensemble has its own threshold
                members.append(clone(model.estimator))
                fitted.append(model.estimator_)
            else:
                members.append(clone(model))
                fitted.append(model)
            records.append(
                EnsembleMember(
                    family=arm.alias,
                    params={k: native(v, sequences=True) for k, v in config.params.items()},
                    weight=weight,
                    cv_value=float(cv.means[i] or 0.0),
                    refit_params={k: native(v, sequences=True) for k, v in extra.items()},
                )
            )
        threshold = scorer.threshold(blended)
        estimator = fitted_ensemble(
            members, fitted, [w for _, w, _ in picked], classes=cv.classes, threshold=threshold
        )
        record = EnsembleRecord(
            tuple(records),
            chosen.value,
            chosen.single_value,
            threshold,
            tuple(fold_values),
        )
        return estimator, record

    def _fit_fixed(self, arm: Arm, config: Config, extra: dict[str, Any], X: Any, y: Any) -> Any:
        """Fit without validation rows; a tuned threshold is the searched model's."""
        model = arm.family.build({**config.params, **extra}, self.context)
        searched = config.estimator
        if isinstance(model, ThresholdedClassifier) and isinstance(searched, ThresholdedClassifier):
            model.estimator_ = fit_model(clone(model.estimator), X, y)
            model.classes_ = searched.classes_
            model.threshold_ = searched.threshold_
            model.threshold_score_ = searched.threshold_score_
            return model
        return fit_model(model, X, y)


def _prediction(model: Any, X: Any, classes: np.ndarray | None) -> np.ndarray:
    """Probabilities in ``classes`` order (classification), else predicted values."""
    if classes is None:
        return np.asarray(model.predict(X), dtype=float).ravel()
    return aligned_proba(model.predict_proba(X), model.classes_, classes)


class Reporter:
    """``on_step`` for a trial: report the loss in the study's direction, prune if told."""

    def __init__(self, trial: optuna.Trial, maximise: bool) -> None:
        self.trial = trial
        self.sign = -1.0 if maximise else 1.0

    def __call__(self, step: int, loss: float) -> None:
        self.trial.report(self.sign * float(loss), step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step}")
