"""The candidate stage: one path from audited data to a registered model version.

``assay run`` and ``assay retrain`` both call :func:`build_candidate`: split, rows in
time order for chronological projects, search, cross-validation of the chosen
configuration, evaluation on the sealed test rows (and the baseline's), the drift
reference, the lineage, registration. What each caller does next differs (``run``
gates against the champion on the test set and may promote; a retrain judges on a
fresh holdout and shadows) and stays with the caller.
"""

from __future__ import annotations

import pickle
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold, TimeSeriesSplit

import assay
from assay.audit.base import Finding, resolve_text_column
from assay.config.metrics import CLASSIFICATION_TASKS
from assay.config.spec import ProjectSpec
from assay.data.dataset import Dataset
from assay.data.values import native
from assay.errors import AssayError
from assay.evaluate import (
    Evaluation,
    PairedComparison,
    ServedPath,
    check_fairness,
    evaluate,
    paired_bootstrap,
)
from assay.evaluate.calibration import Recalibration, probability_ece
from assay.explain import (
    Explanation,
    NoExplainer,
    explain_model,
    rank_features,
    token_attributions,
)
from assay.model.served import served_path
from assay.monitor.reference import ReferenceProfile, build_reference
from assay.monitor.text_drift import profile_text_columns, text_columns
from assay.project import STATE_DIR, Project
from assay.registry import Lineage, ModelRegistry, ModelVersion
from assay.split import SplitPlan, make_splits
from assay.text.checkpoint import resolve_base
from assay.train import SearchResult, TrialInfo, run_search
from assay.train.pipeline import fit_model
from assay.train.scoring import score_estimator
from assay.train.context import TextOptions
from assay.train.calibration import recalibrate
from assay.train.families import FAMILIES, get_family
from assay.train.mitigation import mitigate, plan_mitigation
from assay.train.search import chosen_template

__all__ = [
    "CV_MAX_ROWS",
    "REFERENCE_MAX_ROWS",
    "REFERENCE_SAMPLE",
    "Candidate",
    "Listener",
    "StageEvent",
    "build_candidate",
    "code_version",
    "compare_with_baseline",
    "compare_with_champion",
    "cross_validate",
    "evaluated_metrics",
    "feature_schema",
    "metric_summary",
    "resolve_text_column",
    "search_options",
    "split_summary",
]

#: rows used for the cross-validation spread on large training sets
CV_MAX_ROWS = 20_000
#: training rows profiled for drift (predictions are computed on them)
REFERENCE_MAX_ROWS = 50_000
#: rows a text model scores for its reference: each is a pass through a transformer on the CPU
TEXT_REFERENCE_MAX_ROWS = 2_000
#: sorted values kept per numeric column for the KS test (keeps the profile well under 1 MB)
REFERENCE_SAMPLE = 5_000


@dataclass(frozen=True)
class StageEvent:
    """Progress of a run: a stage started or finished, or a search trial ended."""

    stage: str
    message: str
    trial: TrialInfo | None = None


Listener = Callable[[StageEvent], None]


@dataclass(frozen=True)
class Candidate:
    """A registered candidate version and what it was judged on, before any gate.

    Attributes:
        record: the registered version (its lineage included).
        model: the fitted estimator.
        plan: the split (its sealed test rows are scored once, in ``evaluation``).
        search: the search that chose the configuration.
        evaluation: the candidate on the sealed test rows.
        baseline: the baseline on the same rows.
        features: the model's input columns, in order.
        baseline_comparison: the baseline (A) against the candidate (B) on the primary
            metric, paired on the same sealed test rows (None when it could not be computed).
        warnings: what the caller should tell the user (learning curve, reference).
        seconds: wall time per stage (split, search, cv, evaluate, register).
    """

    record: ModelVersion
    model: Any
    plan: SplitPlan
    search: SearchResult
    evaluation: Evaluation
    baseline: Evaluation
    features: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    seconds: dict[str, float] = field(default_factory=dict)
    baseline_comparison: PairedComparison | None = None

    @property
    def version(self) -> int:
        """The registered version number."""
        return self.record.version

    @property
    def lineage(self) -> Lineage:
        """The registered lineage."""
        return self.record.lineage


def build_candidate(
    project: Project,
    registry: ModelRegistry,
    dataset: Dataset,
    *,
    run_id: int,
    audit_id: int,
    reason: str,
    extra_lineage: Mapping[str, Any] | None = None,
    code: str | None = None,
    listener: Listener | None = None,
) -> Candidate:
    """Train, evaluate and register a candidate on ``dataset`` under the project's spec.

    Args:
        project: the project (its spec frames everything).
        registry: where the version, its artifacts and the test access are recorded.
        dataset: the audited data (the project's, or a retrain's refreshed rows).
        run_id: the run the version belongs to.
        audit_id: the passed audit of ``dataset``.
        reason: why it is trained (kept in the lineage).
        extra_lineage: further :class:`Lineage` fields (a retrain's ``training_data``,
            ``retrain_id``, ``retrain``); an unknown name is a ``TypeError``.
        code: the code version (default: :func:`code_version` of the project).
        listener: told when each stage starts and when each search trial ends.
    """
    say = listener or (lambda event: None)
    spec = project.spec
    inputs = _inputs(spec, dataset, project.root)
    warnings: list[str] = []
    seconds: dict[str, float] = {}

    with _timed(seconds, "split"):
        say(StageEvent("split", f"{spec.split_strategy} split"))
        rows = _split(inputs)

    with _timed(seconds, "search"):
        say(StageEvent("search", f"searching {', '.join(spec.search.families)}"))
        search = _search(inputs, rows, say)
    warnings.extend(_curve_warnings(search))

    with _timed(seconds, "cv"):
        folds = spec.search.cv_folds
        say(StageEvent("cv", f"{folds}-fold cross-validation of {search.best_family}"))
        cv_scores = cross_validate(
            search, rows.plan, dataset.frame, inputs.features, inputs.text_column, dataset, spec,
            text=inputs.text,
        )

    recalibration = None
    if spec.calibration.max_ece is not None and spec.task in CLASSIFICATION_TASKS:
        with _timed(seconds, "calibrate"):
            say(StageEvent("calibrate", "measuring calibration on the validation rows"))
            search, recalibration = _recalibrate(inputs, rows, search)

    # The sealed test set is opened here, once, for the chosen candidate.
    with _timed(seconds, "evaluate"):
        say(StageEvent("evaluate", "scoring the sealed test set"))
        evaluation, baseline = _evaluate_on_test(inputs, rows, search, cv_scores)
        if recalibration is not None:
            evaluation = _recalibration_on_test(inputs, rows, search, evaluation, recalibration)
        versus_baseline = compare_with_baseline(inputs, rows, search, warnings)

    if spec.fairness.mitigation != "off" and spec.fairness.protected:
        with _timed(seconds, "mitigate"):
            evaluation = _mitigate(inputs, registry, rows, search, evaluation, audit_id, say)

    with _timed(seconds, "register"):
        reference = _reference_profile(
            search.estimator, rows.X_train, dataset, inputs.features, spec, warnings,
            root=project.root, text_column=inputs.text_column, text=inputs.text,
        )
        explanation = _explanation(inputs, rows, search, warnings)
        lineage = _lineage(
            inputs, registry, rows.plan, search, evaluation, baseline, reference,
            audit_id=audit_id, reason=reason, extra=extra_lineage, explanation=explanation,
        )
        record = _register(
            inputs, registry, rows.plan, search, evaluation, baseline, lineage,
            run_id=run_id, code=code if code is not None else code_version(project),
        )
    return Candidate(
        record=record, model=search.estimator, plan=rows.plan, search=search,
        evaluation=evaluation, baseline=baseline, features=tuple(inputs.features),
        warnings=tuple(warnings), seconds=seconds, baseline_comparison=versus_baseline,
    )


@dataclass(frozen=True)
class _Inputs:
    """What a candidate learns from: the data, its feature and text columns, under the spec."""

    spec: ProjectSpec
    dataset: Dataset
    features: list[str]
    text_column: str | None
    text: TextOptions | None = None


@dataclass(frozen=True)
class _Rows:
    """The split and its training and validation rows (in time order when chronological).

    ``X_train`` is the training rows' feature columns, taken once: the search fits on
    it, the evaluation compares the test rows with it and the drift reference profiles it.
    """

    plan: SplitPlan
    train: pd.DataFrame
    validation: pd.DataFrame
    X_train: pd.DataFrame


@contextmanager
def _timed(seconds: dict[str, float], stage: str) -> Iterator[None]:
    """Record the wall time of the ``with`` block as ``seconds[stage]`` (when it finishes)."""
    t = time.perf_counter()
    yield
    seconds[stage] = time.perf_counter() - t


def _inputs(spec: ProjectSpec, dataset: Dataset, root: Path) -> _Inputs:
    """The feature columns of ``dataset`` under ``spec``, its free-text column if any, and
    the pretrained base the text families read it with."""
    features = spec.feature_columns(dataset.frame.columns)
    text_column = resolve_text_column(dataset, spec.data.text, features, spec.task)
    return _Inputs(spec, dataset, features, text_column, text_options(spec, root))


def text_options(spec: ProjectSpec, root: Path) -> TextOptions | None:
    """``model.*`` for the listed families that start from a pretrained checkpoint, if any.

    The base is resolved (checked whole and hashed) once here, so a bad ``model.base``
    fails before the search with the key and the fix, and every fit reads the same,
    verified weights. Embeddings are cached in the project's state folder.
    """
    if spec.task != "text-classification":
        return None
    uses_base = [
        alias for alias in spec.search.families
        if alias in FAMILIES and getattr(FAMILIES.get(alias), "uses_base", False)
    ]
    if not uses_base:
        return None
    model = spec.model
    return TextOptions(
        base=resolve_base(model.base, root=root),
        max_length=model.max_length,
        device=None if model.device == "auto" else model.device,
        cache_dir=root / STATE_DIR / "cache" / "embeddings",
        quantize=model.quantize,
    )


def _split(inputs: _Inputs) -> _Rows:
    """Split the rows as the spec says; training and validation rows in time order if chronological.

    The split's duplicate check compares rows on the feature columns (and the target).
    """
    spec, dataset, frame = inputs.spec, inputs.dataset, inputs.dataset.frame
    plan = make_splits(frame, spec, data_version=dataset.version, features=inputs.features)
    train = _ordered(plan.take(frame, "train"), spec)
    validation = _ordered(plan.take(frame, "validation"), spec)
    return _Rows(plan, train, validation, train[inputs.features])


def _search(inputs: _Inputs, rows: _Rows, say: Listener) -> SearchResult:
    """Search the spec's families on the training and validation rows; ``say`` hears each trial."""
    spec, features, target = inputs.spec, inputs.features, inputs.spec.data.target
    train, validation = rows.train, rows.validation
    return run_search(
        rows.X_train, train[target], validation[features], validation[target],
        task=spec.task, schema=inputs.dataset.schema, features=features,
        text_column=inputs.text_column, families=spec.search.families,
        primary_metric=spec.primary_metric, trials=spec.search.trials,
        minutes=spec.search.minutes, sampler=spec.search.sampler,
        pruning=spec.search.pruning, seed=spec.seed, text=inputs.text,
        progress=lambda info: say(StageEvent("trial", "", trial=info)),
        latency_p99_ms=spec.serving.latency_p99_ms, served=lambda model: _served(inputs, model),
        **search_options(spec, train, validation),
    )


def _served(inputs: _Inputs, model: Any) -> ServedPath:
    """How the server will answer one record with ``model`` (the fast path when it has one)."""
    schema = inputs.dataset.schema
    return served_path(
        model, task=inputs.spec.task, features=inputs.features,
        columns=[schema[f] for f in inputs.features if f in schema],
        text_column=inputs.text_column,
    )


def _curve_warnings(search: SearchResult) -> list[str]:
    """A warning when the chosen model's learning curve is not ``good``, with its remedy."""
    diagnosis = search.diagnosis
    if diagnosis is not None and diagnosis.verdict != "good":
        return [f"learning curve: {diagnosis.verdict}: {diagnosis.action}"]
    return []


def _evaluate_on_test(
    inputs: _Inputs, rows: _Rows, search: SearchResult, cv_scores: list[float] | None
) -> tuple[Evaluation, Evaluation]:
    """The candidate and the baseline, scored on the sealed test rows.

    Only the candidate gets the slices, the fairness groups, robustness and latency;
    the baseline is the yardstick of its headline metrics.
    """
    spec, features = inputs.spec, inputs.features
    test = rows.plan.take(inputs.dataset.frame, "test")
    X_test, y_test = test[features], test[spec.data.target]
    model = search.estimator
    metrics = evaluated_metrics(spec)
    evaluation = evaluate(
        model, X_test, y_test, task=spec.task, metrics=metrics,
        slices=test[spec.slices] if spec.slices else None,
        protected=test[spec.fairness.protected] if spec.fairness.protected else None,
        min_slice_size=spec.fairness.min_slice_size, seed=spec.seed, cv_scores=cv_scores,
        artifact_size=len(pickle.dumps(model, protocol=5)), X_reference=rows.X_train,
        primary=spec.primary_metric,
        text_columns=(inputs.text_column,) if inputs.text_column else (),
        served=_served(inputs, model), latency_sla_ms=spec.serving.latency_p99_ms,
        slice_interval_metrics=[
            name for criteria in spec.slice_acceptance.values() for name in criteria
        ],
    )
    baseline = evaluate(
        search.baseline, X_test, y_test, task=spec.task, metrics=metrics,
        seed=spec.seed, primary=spec.primary_metric, check_robustness=False, time_latency=False,
    )
    return evaluation, baseline


def compare_with_baseline(
    inputs: _Inputs, rows: _Rows, search: SearchResult, warnings: list[str]
) -> PairedComparison | None:
    """The dummy baseline (A) against the candidate (B) on the primary metric, paired on
    the sealed test rows (the same rows and resamples for both; no further test access).

    None, with a warning, when the metric cannot be computed for both on these rows.
    """
    spec, features = inputs.spec, inputs.features
    test = rows.plan.take(inputs.dataset.frame, "test")
    X_test, y_test = test[features], test[spec.data.target]
    classification = spec.task in CLASSIFICATION_TASKS
    model, dummy = search.estimator, search.baseline
    try:
        classes = getattr(model, "classes_", None)
        return paired_bootstrap(
            spec.task, spec.primary_metric, y_test.to_numpy(),
            dummy.predict(X_test), dummy.predict_proba(X_test) if classification else None,
            model.predict(X_test), model.predict_proba(X_test) if classification else None,
            classes=classes, n_boot=1000, seed=spec.seed,
        )
    except (AssayError, ValueError) as exc:
        shown = exc.render() if isinstance(exc, AssayError) else str(exc)
        warnings.append(f"the model could not be compared with the dummy baseline: {shown}")
        return None


def _lineage(
    inputs: _Inputs, registry: ModelRegistry, plan: SplitPlan, search: SearchResult,
    evaluation: Evaluation, baseline: Evaluation, reference: ReferenceProfile | None, *,
    audit_id: int, reason: str, extra: Mapping[str, Any] | None,
    explanation: Explanation | None = None,
) -> Lineage:
    """Where the version came from: its documents stored in the registry, by digest.

    ``extra`` adds further :class:`Lineage` fields (an unknown name is a ``TypeError``).
    """
    search_diagnosis = search.diagnosis
    lineage = Lineage(
        audit_id=audit_id,
        split=split_summary(plan),
        split_digest=registry.store_json(plan.to_dict()),
        search=registry.store_json(search.to_dict()),
        evaluation=registry.store_json(evaluation.to_dict()),
        baseline=registry.store_json(baseline.to_dict()),
        reference=registry.store_json(reference.to_dict()) if reference is not None else None,
        features=tuple(inputs.features),
        text_column=inputs.text_column,
        target=inputs.spec.data.target,
        classes=tuple(native(c) for c in evaluation.classes),
        diagnosis=search_diagnosis.to_dict() if search_diagnosis else None,
        validation_value=search.best_value,
        reason=reason,
        base=_base_lineage(inputs, search),
        labels=inputs.dataset.label_version,
        explanation=registry.store_json(explanation.to_dict()) if explanation is not None else None,
    )
    return replace(lineage, **extra) if extra else lineage


def _explanation(
    inputs: _Inputs, rows: _Rows, search: SearchResult, warnings: list[str]
) -> Explanation | None:
    """What the chosen model leans on: its global explanation on (a seeded sample of) the
    sealed test rows, with the training rows as the background of a linear model's mean.

    None (with a warning) when it cannot be computed: the registered model matters more
    than its explanation. A text model also gets word attributions by occlusion on
    sampled texts (:func:`assay.explain.token_attributions`); without an exact explainer
    (a fine-tuned transformer) they are its whole explanation: permutation importance
    would score every sampled text several times over and say only that the text matters.
    """
    spec, features = inputs.spec, inputs.features
    test = rows.plan.take(inputs.dataset.frame, "test")
    labels = None if spec.task == "text-classification" else test[spec.data.target]
    explanation: Explanation | None = None
    try:
        explanation = explain_model(
            search.estimator, test[features], labels, task=spec.task, features=features,
            background=rows.X_train, seed=spec.seed, family=search.model_family,
        )
    except NoExplainer as exc:
        if inputs.text_column is None:
            warnings.append(f"no explanation: {exc.what}")
    except Exception as exc:  # noqa: BLE001 - the registered model matters more than its explanation
        warnings.append(f"the explanation could not be computed ({type(exc).__name__}: {exc})")
    if inputs.text_column is None or spec.task not in CLASSIFICATION_TASKS:
        return explanation
    try:
        tokens = token_attributions(
            search.estimator, test[features], inputs.text_column, seed=spec.seed
        )
    except Exception as exc:  # noqa: BLE001 - as above
        warnings.append(f"the word attributions could not be computed ({type(exc).__name__}: {exc})")
        return explanation
    if explanation is not None:
        return replace(explanation, tokens=tokens)
    return Explanation(
        method="occlusion", output="probability",
        features=rank_features([inputs.text_column], np.asarray([tokens.mean_abs])),
        rows=tokens.texts, seed=spec.seed, tokens=tokens,
        note=f"{search.model_family} has no exact explainer: its words are attributed by "
        f"occlusion ({tokens.target} without each word) on {tokens.texts} sampled test texts",
    )


def _base_lineage(inputs: _Inputs, search: SearchResult) -> dict[str, Any] | None:
    """The pretrained base of the chosen model (or of a member of its ensemble), if it has one."""
    if inputs.text is None or inputs.text.base is None:
        return None
    chosen = [search.best_family]
    if search.ensemble is not None:
        chosen = [member.family for member in search.ensemble.members]
    if not any(getattr(get_family(alias), "uses_base", False) for alias in chosen):
        return None
    return inputs.text.base.lineage()


def _register(
    inputs: _Inputs, registry: ModelRegistry, plan: SplitPlan, search: SearchResult,
    evaluation: Evaluation, baseline: Evaluation, lineage: Lineage, *, run_id: int, code: str,
) -> ModelVersion:
    """Register the candidate under ``run_id``, and record that it saw the sealed test set."""
    spec, dataset = inputs.spec, inputs.dataset
    record = registry.register(
        run_id, model_obj=search.estimator, task=spec.task, family=search.model_family,
        params=search.model_params, metrics=metric_summary(evaluation, baseline, search),
        data_version=dataset.version, config=spec.to_dict(), code_version=code,
        schema=feature_schema(dataset, inputs.features), lineage=lineage,
        test_fingerprint=plan.test_fingerprint,
    )
    registry.record_test_access(plan.test_fingerprint, record.version, run_id, "register")
    if evaluation.mitigation is not None:
        registry.record_test_access(
            plan.test_fingerprint, record.version, run_id, "fairness mitigation comparison"
        )
    return record


def code_version(project: Project) -> str:
    """assay's version, plus the project's git commit when it is a git work tree."""
    version = f"assay {assay.__version__}"
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=project.root, capture_output=True,
            text=True, timeout=5, check=False,
        )
        if out.returncode == 0 and out.stdout.strip():
            dirty = subprocess.run(
                ["git", "status", "--porcelain"], cwd=project.root, capture_output=True,
                text=True, timeout=5, check=False,
            ).stdout.strip()
            version += f"; project {out.stdout.strip()}{'-dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        pass
    return version


def _reference_profile(
    model: Any, X_train: pd.DataFrame, dataset: Dataset, features: list[str],
    spec: ProjectSpec, warnings: list[str], *, root: Path | None = None,
    text_column: str | None = None, text: TextOptions | None = None,
) -> ReferenceProfile | None:
    """The drift reference of a new version: its training rows, predictions and confidence,
    and for a free-text column its lengths, unknown tokens and base-encoder embeddings.

    None (with a warning) when the model cannot score its own training rows: monitoring
    then rebuilds the reference from the stored split, so the candidate is not lost. A
    text model is profiled on at most :data:`TEXT_REFERENCE_MAX_ROWS` rows: each row it
    scores is a pass through a transformer.
    """
    rows = X_train
    cap = REFERENCE_MAX_ROWS if spec.task != "text-classification" else TEXT_REFERENCE_MAX_ROWS
    if len(rows) > cap:
        rng = np.random.default_rng(spec.seed)
        rows = rows.iloc[np.sort(rng.choice(len(rows), cap, replace=False))]
    try:
        prediction = model.predict(rows)
        confidence = None
        if spec.task in CLASSIFICATION_TASKS and hasattr(model, "predict_proba"):
            confidence = np.asarray(model.predict_proba(rows)).max(axis=1)
        schema = [dataset.schema[c] for c in features]
        reference = build_reference(
            rows, schema, prediction=prediction,
            confidence=confidence, seed=spec.seed, sample=REFERENCE_SAMPLE,
        )
        model_spec = spec.model
        return profile_text_columns(
            reference, rows, text_columns(schema, text_column),
            # the base the search already resolved and hashed, when it used one
            base=text.base if text is not None and text.base is not None else model_spec.base,
            root=root,
            max_length=model_spec.max_length,
            device=None if model_spec.device == "auto" else model_spec.device,
        )
    except Exception as exc:  # noqa: BLE001 - the registered model matters more than its profile
        warnings.append(
            f"the drift reference could not be built ({type(exc).__name__}: {exc}); "
            "monitoring rebuilds it from the training rows"
        )
        return None


def _ordered(rows: pd.DataFrame, spec: ProjectSpec) -> pd.DataFrame:
    """Rows in time order for chronological projects (cross-validation folds follow time)."""
    if spec.split_strategy == "chronological" and spec.data.time:
        return rows.sort_values(spec.data.time, kind="stable")
    return rows


def search_options(
    spec: ProjectSpec, train: pd.DataFrame, validation: pd.DataFrame
) -> dict[str, Any]:
    """How the search cross-validates on small data: by group or in time order, as the split does."""
    options: dict[str, Any] = {"cv_folds": spec.search.cv_folds, "ensemble": spec.search.ensemble}
    if spec.split_strategy == "group" and spec.data.group:
        options["cv_groups"] = (
            train[spec.data.group].to_numpy(), validation[spec.data.group].to_numpy()
        )
    if spec.split_strategy == "chronological":
        options["time_ordered"] = True
    return options


def evaluated_metrics(spec: ProjectSpec) -> list[str]:
    """Reported metrics plus every metric an acceptance criterion (global or per slice) names."""
    per_slice = [name for criteria in spec.slice_acceptance.values() for name in criteria]
    return list(dict.fromkeys(
        [spec.primary_metric, *spec.reported_metrics, *spec.acceptance, *per_slice]
    ))


def split_summary(plan: SplitPlan) -> dict[str, Any]:
    """The split plan without its row positions."""
    data = plan.to_dict()
    for part in ("train", "validation", "test"):
        data.pop(part, None)
    return data


def feature_schema(dataset: Dataset, features: list[str]) -> dict[str, Any]:
    """The registered input schema: the features' column schemas, in order."""
    return {"columns": [dataset.schema[c].to_dict() for c in features]}


def metric_summary(
    evaluation: Evaluation, baseline: Evaluation, search: SearchResult
) -> dict[str, Any]:
    """The metrics a version is registered with (test, intervals, baseline, validation, cv)."""
    return {
        "primary": evaluation.primary,
        "test": dict(evaluation.metrics),
        "test_intervals": {k: list(v) for k, v in evaluation.intervals.items()},
        "baseline_test": dict(baseline.metrics),
        "validation": search.best_value,
        "cv": evaluation.cv.to_dict() if evaluation.cv else None,
    }


def _cv_splitter(spec: ProjectSpec, n_rows: int) -> Any:
    folds = min(spec.search.cv_folds, max(2, n_rows // 50))
    strategy = spec.split_strategy
    if strategy == "chronological":
        return TimeSeriesSplit(n_splits=folds)
    if strategy == "group":
        return GroupKFold(n_splits=folds)
    if spec.task in CLASSIFICATION_TASKS:
        return StratifiedKFold(n_splits=folds, shuffle=True, random_state=spec.seed)
    return KFold(n_splits=folds, shuffle=True, random_state=spec.seed)


def cross_validate(
    search: SearchResult, plan: SplitPlan, frame: pd.DataFrame, features: list[str],
    text_column: str | None, dataset: Dataset, spec: ProjectSpec,
    text: TextOptions | None = None,
) -> list[float] | None:
    """The primary metric of the chosen configuration over folds of the training rows.

    An ensemble keeps the fold scores the search measured on its out-of-fold
    predictions (training + validation rows): refitting every member per fold again
    would cost several times the search's own cross-validation. A family that is not
    cross-validated (fine-tuning a transformer: each fold is a whole training run)
    has no fold scores.
    """
    if search.ensemble is not None and search.ensemble.fold_values:
        return list(search.ensemble.fold_values)
    if search.ensemble is None and not get_family(search.best_family).cross_validated:
        return None
    train = _ordered(plan.take(frame, "train"), spec)
    if len(train) > CV_MAX_ROWS:
        rng = np.random.default_rng(spec.seed)
        train = train.iloc[np.sort(rng.choice(len(train), CV_MAX_ROWS, replace=False))]
    X, y = train[features], train[spec.data.target]
    groups = train[spec.data.group] if spec.split_strategy == "group" and spec.data.group else None
    template = chosen_template(
        search, schema=dataset.schema, features=features, text_column=text_column, text=text
    )
    scores = []
    try:
        for fit_idx, score_idx in _cv_splitter(spec, len(train)).split(X, y, groups):
            model = clone(template)
            X_fit, y_fit = X.iloc[fit_idx], y.iloc[fit_idx]
            X_score, y_score = X.iloc[score_idx], y.iloc[score_idx]
            if spec.task in CLASSIFICATION_TASKS and y_fit.nunique() < 2:
                continue
            fit_model(model, X_fit, y_fit, eval_set=(X_score, y_score))
            value = score_estimator(spec.primary_metric, model, X_score, y_score)
            if np.isfinite(value):
                scores.append(float(value))
    except (ValueError, AssayError):
        return scores or None
    return scores or None


def compare_with_champion(
    registry: ModelRegistry, champion: int | None, model: Any, X_test: pd.DataFrame,
    y_test: pd.Series, spec: ProjectSpec, run_id: int, fingerprint: str,
    features: list[str] | None = None,
) -> tuple[PairedComparison | None, str]:
    """The candidate against the champion on the same rows (paired bootstrap), or why not.

    ``X_test`` holds the test rows with every column at hand (the candidate's features
    and any column the champion was trained on, dropped from features since); each
    model scores its own feature columns (the candidate ``features``, default all of
    ``X_test``; the champion those of its lineage). A note without a comparison means
    the champion could not be scored on these rows at all.
    """
    if champion is None or not spec.gate.compare_champion:
        return None, ""
    record = registry.get(champion)
    own = list(X_test.columns) if features is None else list(features)
    wanted = list(record.lineage.features) or own
    missing = [c for c in wanted if c not in X_test.columns]
    if missing:
        return None, (
            f"the champion was trained on columns the current data no longer has: "
            f"{', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}"
        )
    try:
        champ = registry.load_model(champion)
        registry.record_test_access(fingerprint, champion, run_id, "champion comparison")
        task = spec.task
        classification = task in CLASSIFICATION_TASKS
        pred_a = champ.predict(X_test[wanted])
        pred_b = model.predict(X_test[own])
        proba_a = champ.predict_proba(X_test[wanted]) if classification else None
        proba_b = model.predict_proba(X_test[own]) if classification else None
        classes = getattr(model, "classes_", None)
        if classification and list(getattr(champ, "classes_", [])) != (
            [] if classes is None else list(classes)
        ):
            return None, "the champion predicts a different set of classes"
        comparison = paired_bootstrap(
            task, spec.primary_metric, y_test.to_numpy(), pred_a, proba_a, pred_b, proba_b,
            classes=classes, n_boot=1000, seed=spec.seed,
        )
    except AssayError as exc:
        return None, exc.render()
    except Exception as exc:  # noqa: BLE001 - an old champion that cannot score must not crash a run
        return None, f"the champion could not score the test set: {type(exc).__name__}: {exc}"
    return comparison, ""


def _recalibrate(
    inputs: _Inputs, rows: _Rows, search: SearchResult
) -> tuple[SearchResult, Recalibration]:
    """The search with its estimator recalibrated on the validation rows when that lowers
    the ECE there (see :func:`assay.train.calibration.recalibrate`), and the decision.

    A model refitted on training + validation rows is calibrated on the validation
    probabilities of its search-time fit, which has not seen those rows.
    """
    spec = inputs.spec
    validation = rows.validation
    model, record = recalibrate(
        search.estimator, validation[inputs.features], validation[spec.data.target],
        max_ece=float(spec.calibration.max_ece or 0.0), method=spec.calibration.method,
        seed=spec.seed,
        scorer=search.searched if search.refitted and search.searched is not None else None,
    )
    return (replace(search, estimator=model) if record.adopted else search), record


def _mitigate(
    inputs: _Inputs, registry: ModelRegistry, rows: _Rows, search: SearchResult,
    evaluation: Evaluation, audit_id: int, say: Listener,
) -> Evaluation:
    """The evaluation with a comparison of fairness-mitigated alternatives, when a fairness
    limit fails on the test rows or the audit found the labels biased; else unchanged."""
    spec, features, target = inputs.spec, inputs.features, inputs.spec.data.target
    findings = [
        Finding.from_dict(f) for f in registry.get_audit(audit_id).report.get("findings", [])
    ]
    criteria = check_fairness(evaluation, dict(spec.fairness.limits))
    plan = plan_mitigation(criteria, findings, spec.fairness.protected)
    if plan is None:
        return evaluation
    say(StageEvent("mitigate", f"training fairness-mitigated alternatives ({plan.attribute})"))
    test = rows.plan.take(inputs.dataset.frame, "test")
    template = chosen_template(
        search, schema=inputs.dataset.schema, features=features,
        text_column=inputs.text_column, text=inputs.text,
    )
    parts = {"train": rows.train, "validation": rows.validation, "test": test}
    costly = search.ensemble is None and not get_family(search.best_family).cross_validated
    comparison = mitigate(
        plan, task=spec.task, model=search.estimator, template=template,
        train=(rows.X_train, rows.train[target]),
        validation=(rows.validation[features], rows.validation[target]),
        test=(test[features], test[target]),
        protected={k: v[spec.fairness.protected] for k, v in parts.items()},
        primary=spec.primary_metric, limits=dict(spec.fairness.limits),
        mode=spec.fairness.mitigation, seed=spec.seed,
        min_group_size=spec.fairness.min_slice_size,
        no_refit=f"{search.best_family} is not retrained for mitigation: each fit is a whole "
        "training run" if costly else "",
    )
    return replace(evaluation, mitigation=comparison)


def _recalibration_on_test(
    inputs: _Inputs, rows: _Rows, search: SearchResult, evaluation: Evaluation,
    recalibration: Recalibration,
) -> Evaluation:
    """The evaluation with the recalibration record and the test ECE before (the model as
    fitted) and after (the registered model, as evaluated)."""
    after = evaluation.curves.calibration.ece if evaluation.curves.calibration else None
    before = after
    if recalibration.adopted:
        test = rows.plan.take(inputs.dataset.frame, "test")
        fitted = search.estimator.estimator
        before = probability_ece(
            test[inputs.spec.data.target], fitted.predict_proba(test[inputs.features]),
            list(fitted.classes_),
        )
    return replace(
        evaluation, recalibration=replace(recalibration, test_before=before, test_after=after)
    )
