"""Hyper-parameter search over model families with Optuna, judged on the validation rows.

Design choices:

* **One study per family, budget moved to the promising ones.** Each family keeps
  its own Optuna study (its space is fixed, so multivariate TPE and the grid sampler
  work on it, and the pruner compares a trial's per-round or per-epoch validation
  losses only with trials of the same family). A first phase gives every family its
  defaults plus up to two trials (a bounded share of the budget); then each next
  trial goes to the family furthest below its share, where a family's share is
  ``exp(-gap / 0.1)``, ``gap`` being how far its best score trails the leader in
  units of the leader's improvement over the dummy baseline. Studies continue with
  the same sampler state. A one-parameter family (linear) stops once it converges;
  a family trailing far behind gets nothing more. Shares count trials under a trial
  budget (the schedule depends only on scores: reproducible) and seconds under a
  time budget, which also reserves time for the selection and the refit below.
* **Intermediate values are losses.** Pruning sees the model's own validation loss
  (negated when the study maximises the primary metric); the trial's final value is
  the primary metric on the validation rows, computed with scikit-learn.
* **The first TPE/random trial of each family is its default parameters**, so a
  small budget still tries a sensible point.
* **Small data: families are compared by cross-validation.** With fewer than
  ``cv_rows`` training rows one validation set is too noisy to pick a family (and
  the best of many trials on it is partly luck), so the three best configurations
  of each family still in contention are scored by K-fold cross-validation on
  training + validation rows (each fold fitted the way the refit is, below) and
  the best mean wins.
* **Small data: an ensemble when it cross-validates better.** The same folds give
  every candidate's out-of-fold predictions (probabilities, or values); greedy
  forward selection with replacement on them (:mod:`assay.train.ensemble`) picks
  a weighted average of candidates, possibly of several families. With
  ``ensemble=True`` (and ``refit``) it is returned, each member refitted on
  training + validation rows as the folds were, when its out-of-fold score beats
  the best single candidate's and refitting its extra members fits the time
  budget; ``SearchResult.ensemble`` then records the members and weights, and
  ``best_family``/``best_params``/``best_value``, the learning curve and
  ``searched`` stay those of the best single candidate.
* **The final model is refitted on training + validation rows** (``refit=True``)
  when the family says it is sound (:meth:`BaseModelFamily.refit_params`): the
  boosting rounds or epochs that early stopping found are kept (rounds scaled by
  the row ratio), and a tuned decision threshold keeps the value chosen on the
  validation rows. ``best_value`` stays the searched model's validation score, and
  the learning curve is the searched model's; ``SearchResult.searched`` holds it.
* The dummy baseline is always fitted (on the training rows) and scored; it is
  never searched.
* **Finalists over the latency objective are rejected in the search.** With
  ``latency_p99_ms``, each finalist (the leader on validation, or each candidate of a
  cross-validated choice, and a blend before it is returned) is timed one row at a
  time the way it will be served (``served``: the fast path when it has one; see
  :func:`assay.evaluate.measure_latency`: warm-up, rounds, the median round's p99,
  re-measured before it counts as over). One over the objective is rejected: its
  trial keeps the reason, ``SearchResult.latency_checks`` the measurements, and the
  next best configuration takes its place (a rejected blend leaves the best single
  model). When no finalist is within the objective, the choice is made as if nothing
  were measured and ``SearchResult.latency_note`` says so; the latency gate then
  refuses the model.
* Reproducible: with a trial budget, the same seed gives the same trials, the same
  best parameters and the same model (a time budget makes the trial count vary).

The search never sees a test set: it is given training and validation rows only.
The schedule, the cross-validation and the refit live in :mod:`assay.train.scheduler`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import optuna
from sklearn.utils.class_weight import compute_sample_weight

from assay.config.metrics import CLASSIFICATION_TASKS, HIGHER_IS_BETTER
from assay.data.schema import Schema
from assay.data.values import native
from assay.errors import AssayError, ConfigError, DataError
from assay.evaluate.latency import LatencyReport, ServedPath, measure_latency
from assay.train.scheduler import Arm, Config, Reporter, SearchScheduler, join_rows
from assay.train.context import BuildContext, TextOptions
from assay.train.curves import Diagnosis, LearningCurve, diagnose, learning_curve_for
from assay.train.ensemble import EnsembleClassifier, EnsembleRegressor
from assay.train.families import FAMILIES, get_family
from assay.train.objective import ObjectiveHints, ThresholdedClassifier, objective_for
from assay.train.pipeline import fit_model
from assay.train.result import (
    EnsembleRecord,
    LatencyCheck,
    SamplerName,
    SearchResult,
    Selection,
    TrialInfo,
    TrialRecord,
    TrialState,
)
from assay.train.scoring import score_estimator

__all__ = [
    "SamplerName",
    "SearchResult",
    "TrialInfo",
    "TrialRecord",
    "TrialState",
    "chosen_template",
    "run_search",
]

#: configurations of each family compared by cross-validation on small data
CV_CONFIGS = 3

_Reporter = Reporter  # the pruning callback, under the name tests and older code import


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


def _check_selection(
    cv_rows: int, cv_folds: int, cv_groups: tuple[Any, Any] | None, n_train: int, n_val: int
) -> None:
    if cv_folds < 2:
        raise ConfigError(
            "cross-validation needs at least two folds",
            key="search.cv_folds",
            expected="an integer >= 2",
            received=cv_folds,
            fix="Set search.cv_folds to 2 or more (5 is usual).",
        )
    if cv_rows < 0:
        raise ConfigError(
            "the row count below which families are cross-validated is negative",
            key="search.cv_rows",
            expected="an integer >= 0 (0 never cross-validates)",
            received=cv_rows,
            fix="Pass 0 or a positive row count.",
        )
    if cv_groups is not None and (len(cv_groups[0]), len(cv_groups[1])) != (n_train, n_val):
        raise DataError(
            "the groups do not match the training and validation rows",
            expected=f"{n_train} training and {n_val} validation group labels",
            received=f"{len(cv_groups[0])} and {len(cv_groups[1])}",
            fix="Pass the group column of exactly these rows.",
        )


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
    refit: bool = True,
    cv_rows: int = 2_000,
    cv_folds: int = 5,
    cv_groups: tuple[Any, Any] | None = None,
    time_ordered: bool = False,
    ensemble: bool = True,
    text: TextOptions | None = None,
    latency_p99_ms: float | None = None,
    served: Callable[[Any], ServedPath | None] | None = None,
) -> SearchResult:
    """Search each family's hyper-parameters on train/validation and keep the best model.

    Args:
        X_train, y_train, X_val, y_val: the training and validation rows (frames with
            the ``features`` columns) and labels. No test rows.
        task, schema, features, text_column: what is modelled, from what.
        families: family aliases (``dummy`` is the baseline and is always fitted).
        primary_metric: the metric that decides (a metric of the task).
        trials, minutes: the budget; either or both (the first reached stops). A time
            budget covers the search, the cross-validated selection and the refit.
        sampler: ``tpe`` (with ``pruning``: a median pruner), ``random`` or ``grid``.
        seed: seeds the samplers, the folds and every model.
        progress: called after each trial.
        refit: refit the chosen configuration on training + validation rows (see
            the module notes); ``False`` returns the model fitted in the search.
        cv_rows: with fewer training rows than this, the families' best
            configurations are compared by cross-validation (``0``: never).
        cv_folds: the folds of that cross-validation.
        cv_groups: group labels of the training and validation rows; folds then
            keep each group whole (pass them when the split is by group).
        time_ordered: the rows are in time order and validation follows training
            (a chronological split); shuffled folds would mix future and past, so the
            family is chosen on the validation rows.
        ensemble: on cross-validated small data, with ``refit``, return a weighted
            average of candidates when its out-of-fold score beats the best single
            candidate's (see the module notes); ``False``: always a single model.
        text: the pretrained base and how to read text, for the families that start
            from a checkpoint. Under a time budget, such a family whose estimated cost
            of one fit exceeds the budget is skipped, with the estimate as the reason.
        latency_p99_ms: the single-row p99 objective in milliseconds; finalists over it
            are rejected (see the module notes). ``None``: latency is not checked here.
        served: builds the call the server makes for one record of a fitted model
            (``None`` from it, or no ``served``: ``predict_proba``/``predict`` on a
            one-row frame).

    Raises:
        ConfigError: unknown family/sampler, metric not of the task, no budget, fewer
            than two folds, or no listed family supports the task.
        DataError: rows and labels differ in length, empty sets, missing features,
            groups of other rows.
        AssayError: every trial failed.
    """
    started = time.perf_counter()
    _check_inputs(X_train, y_train, X_val, y_val, features, families, sampler, trials, minutes)
    _check_selection(cv_rows, cv_folds, cv_groups, len(X_train), len(X_val))
    hints = objective_for(task, primary_metric)
    higher = HIGHER_IS_BETTER[primary_metric]
    context = BuildContext.of(
        task=task,
        schema=schema,
        features=features,
        text_column=text_column,
        objective=hints,
        seed=seed,
        text=text,
    )

    dummy = get_family("dummy")
    baseline = dummy.build(dummy.defaults(task), context)
    fit_model(baseline, X_train, y_train, eval_set=(X_val, y_val))
    baseline_value = score_estimator(primary_metric, baseline, X_val, y_val)

    n_train, n_all = len(X_train), len(X_train) + len(X_val)
    searched: list[str] = []
    skipped: dict[str, str] = {}
    for alias in dict.fromkeys(families):
        family = get_family(alias)
        if not family.searched:
            continue
        if not family.supports(task):
            skipped[alias] = f"does not support task '{task}'"
        elif family.max_rows is not None and n_all > family.max_rows:
            skipped[alias] = (
                f"fits at most {family.max_rows:,} rows; training + validation has {n_all:,}"
            )
        elif (why := _over_budget(family, context, X_train, n_all, minutes)) is not None:
            skipped[alias] = why
        else:
            searched.append(alias)
    if not searched and skipped:
        able = [
            a
            for a, c in FAMILIES.items()
            if c.searched and c().supports(task) and (c.max_rows is None or n_all <= c.max_rows)
        ]
        raise ConfigError(
            f"no listed model family can be trained for the task '{task}' on {n_all:,} rows",
            key="search.families",
            expected="families that can: " + ", ".join(able),
            received="; ".join(f"{a} {why}" for a, why in skipped.items()),
            fix="Add one of those families to search.families.",
        )

    cross = bool(n_train < cv_rows and not time_ordered)
    runner = SearchScheduler(
        (X_train, y_train, X_val, y_val),
        context=context,
        primary=primary_metric,
        higher=higher,
        sampler=sampler,
        pruning=pruning,
        progress=progress,
        planned=None if trials is None else max(trials, len(searched)),
        baseline_value=baseline_value,
        keep=CV_CONFIGS if cross else 1,
        budget=None if minutes is None else minutes * 60.0,
        refit_ratio=n_all / n_train if refit else 0.0,
        cv_cost=(cv_folds - 1) * n_all / n_train if cross else 0.0,
        blend_cost=n_all / n_train if cross and ensemble and refit else 0.0,
    )
    deadline = None if minutes is None else started + minutes * 60.0
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        for alias in searched:
            runner.add(alias, trials)
        runner.search(trials, deadline)
    finally:
        optuna.logging.set_verbosity(verbosity)

    ranked = runner.ranked()
    if not ranked and searched:
        first = next((r.error for r in runner.records if r.error), "no trial finished")
        raise AssayError(
            "no search trial completed",
            where="search",
            expected="at least one trial that fits and scores",
            received=first,
            fix="Check the data and the listed families, or raise the budget.",
        )
    checks: list[LatencyCheck] = []
    latency_note = ""
    screen: _Latency | None = None
    if latency_p99_ms is not None and ranked:
        screen = _Latency(latency_p99_ms, served, X_val, seed, text_column is not None)
        latency_note = screen.finalists(runner, cross)
        checks = screen.checks
        ranked = runner.ranked()
    X_all, y_all = join_rows(X_train, X_val), join_rows(y_train, y_val)
    selection: Selection = "validation"
    cv_values: dict[str, float] = {}
    refit_params: dict[str, Any] = {}
    refitted = False
    chosen_ensemble: EnsembleRecord | None = None
    if not ranked:
        best_family, best_params, best_value = "dummy", {}, baseline_value
        estimator = chosen_model = baseline
    else:
        arm, config = ranked[0], ranked[0].top[0]
        candidates = runner.cv_candidates() if cross else []
        blended = None
        if len(candidates) > 1:
            groups = None if cv_groups is None else join_rows(*cv_groups)
            cv = runner.cross_validate(candidates, X_all, y_all, cv_folds, groups, deadline)
            scored = [(m, c) for m, c in zip(cv.means, candidates, strict=True) if m is not None]
            if len(scored) > 1:
                sign = 1.0 if higher else -1.0
                selection = "cross_validation"
                for mean, (a, _) in scored:
                    if a.alias not in cv_values or sign * mean > sign * cv_values[a.alias]:
                        cv_values[a.alias] = mean
                arm, config = max(scored, key=lambda mc: sign * mc[0])[1]
                if ensemble and refit:
                    blended = runner.blend(
                        candidates,
                        cv,
                        X_all,
                        y_all,
                        n_all / n_train,
                        hints.threshold_metric,
                        deadline,
                    )
        best_family, best_params, best_value = arm.alias, config.params, config.value
        estimator = chosen_model = config.estimator
        if blended is not None and screen is not None and not screen.blend(blended):
            blended = None
        if blended is not None:
            estimator, chosen_ensemble = blended
            refitted = True
        elif refit:
            try:
                done = runner.refit(arm, config, X_all, y_all, n_all / n_train)
            except Exception:  # noqa: BLE001 - keep the searched model (refitted stays False)
                done = None
            if done is not None:
                estimator, refit_params = done
                refitted = True

    curve: LearningCurve | None
    try:
        curve = learning_curve_for(
            chosen_model, X_train, y_train, X_val, y_val, metric=primary_metric, seed=seed
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
        best_params={k: native(v, sequences=True) for k, v in best_params.items()},
        best_value=float(best_value),
        baseline_value=float(baseline_value),
        trials=tuple(runner.records),
        curve=curve,
        diagnosis=diagnosis,
        skipped=skipped,
        seconds=round(time.perf_counter() - started, 4),
        selection=selection,
        cv_values={k: float(v) for k, v in cv_values.items()},
        refitted=refitted,
        refit_params={k: native(v, sequences=True) for k, v in refit_params.items()},
        fit_rows=n_all if refitted else n_train,
        ensemble=chosen_ensemble,
        latency_sla_ms=latency_p99_ms,
        latency_checks=tuple(checks),
        latency_note=latency_note,
        estimator=estimator,
        baseline=baseline,
        searched=chosen_model,
    )


class _Latency:
    """Times finalists one row at a time and rejects those over the objective."""

    def __init__(
        self,
        sla_ms: float,
        served: Callable[[Any], ServedPath | None] | None,
        X: Any,
        seed: int,
        text: bool,
    ) -> None:
        self.sla_ms, self.served, self.X, self.seed = sla_ms, served, X, seed
        self.n_single = 30 if text else 100
        self.checks: list[LatencyCheck] = []

    def measure(self, estimator: Any) -> tuple[LatencyReport | None, str]:
        """The latency of one fitted model, or ``None`` and why it could not answer one row."""
        try:
            path = self.served(estimator) if self.served is not None else None
            report = measure_latency(
                estimator, self.X, n_single=self.n_single, batch_size=1, batch_repeats=1,
                seed=self.seed, rounds=3, served=path, warmup=10, sla_ms=self.sla_ms,
                max_seconds=10.0,
            )
        except Exception as exc:  # noqa: BLE001 - a finalist that cannot answer one row is refused
            return None, f"could not answer one row: {type(exc).__name__}: {exc}"
        if report.single_p99_ms > self.sla_ms:
            return report, (
                f"single-row p99 {report.single_p99_ms:.2f} ms over the {self.sla_ms:g} ms "
                f"serving.latency_p99_ms ({report.path}, measured {report.attempts} times)"
            )
        return report, ""

    def _check(
        self, family: str, params: dict[str, Any], value: float | None, estimator: Any
    ) -> LatencyCheck:
        report, reason = self.measure(estimator)
        check = LatencyCheck(
            family=family,
            params={k: native(v, sequences=True) for k, v in params.items()},
            value=value,
            p99_ms=None if report is None else report.single_p99_ms,
            p50_ms=None if report is None else report.single_p50_ms,
            path="" if report is None else report.path,
            attempts=0 if report is None else report.attempts,
            passed=not reason,
            reason=reason,
        )
        self.checks.append(check)
        return check

    def finalists(self, runner: SearchScheduler, cross: bool) -> str:
        """Reject finalists over the objective until the finalists are all within it.

        Returns a note when none is (the rejected ones are then put back).
        """
        measured: set[int] = set()
        rejected: list[tuple[Arm, Config]] = []
        while True:
            ranked = runner.ranked()
            finalists = runner.cv_candidates() if cross else [(a, a.top[0]) for a in ranked[:1]]
            pending = [(a, c) for a, c in finalists if id(c) not in measured]
            if not pending:
                break
            for arm, config in pending:
                measured.add(id(config))
                check = self._check(arm.alias, config.params, config.value, config.estimator)
                if not check.passed:
                    runner.reject(arm, config, check.reason)
                    rejected.append((arm, config))
        if runner.ranked() or not rejected:
            return ""
        for arm, config in rejected:
            runner.restore(arm, config)
        self.checks = [replace(c, reason=c.reason + "; kept: no finalist is within it")
                       for c in self.checks]
        return (
            f"no finalist answers one row within serving.latency_p99_ms ({self.sla_ms:g} ms): "
            "the best was kept and the latency gate will refuse it; raise the objective or "
            "search a faster family (e.g. linear, lightgbm with fewer rounds)"
        )

    def blend(self, blended: tuple[Any, EnsembleRecord]) -> bool:
        """Whether a blend of candidates is within the objective (a check is recorded)."""
        estimator, record = blended
        params = {"members": [m.family for m in record.members]}
        return self._check("ensemble", params, record.cv_value, estimator).passed


def _over_budget(
    family: Any, context: BuildContext, X_train: Any, n_rows: int, minutes: float | None
) -> str | None:
    """The reason to skip a family whose one fit is estimated to take longer than the budget."""
    estimate = getattr(family, "over_budget", None)
    if minutes is None or estimate is None or context.text_column is None:
        return None
    from assay.train.text_families import mean_tokens

    texts = X_train[context.text_column] if context.text_column in X_train else []
    reason: str | None = estimate(
        n_rows,
        minutes * 60.0,
        context.text.base,
        params=family.defaults(context.task),
        mean_tokens=mean_tokens(texts, context.text.max_length or 128),
        measure=True,
    )
    return reason


def chosen_template(
    result: SearchResult,
    *,
    schema: Schema,
    features: Sequence[str],
    text_column: str | None,
    text: TextOptions | None = None,
) -> Any:
    """An unfitted estimator of what the search chose, to fit again (e.g. on other folds).

    The best family built with the best parameters, or, when the search returned an
    ensemble, an ensemble of its members (built with their searched parameters,
    without the refit's fixed rounds or epochs) with the same weights and threshold.
    """
    context = BuildContext.of(
        task=result.task,
        schema=schema,
        features=features,
        text_column=text_column,
        objective=result.objective,
        seed=result.seed,
        text=text,
    )
    if result.ensemble is None:
        return get_family(result.best_family).build(result.best_params, context)
    members = []
    for member in result.ensemble.members:
        model = get_family(member.family).build(member.params, context)
        # the ensemble applies its own decision threshold
        members.append(model.estimator if isinstance(model, ThresholdedClassifier) else model)
    weights = [m.weight for m in result.ensemble.members]
    if result.task in CLASSIFICATION_TASKS:
        return EnsembleClassifier(members, weights, threshold=result.ensemble.threshold)
    return EnsembleRegressor(members, weights)


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
