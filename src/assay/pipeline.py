"""``assay run``: audit -> split -> train/search -> evaluate -> register -> gate.

Each stage is a library call with a typed result; this module strings them
together for one project, records every step in the store, and returns a
:class:`RunResult`. The sealed test set is scored only once a candidate is
chosen, and every scoring of it is recorded as an access.
"""

from __future__ import annotations

import pickle
import subprocess
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold, TimeSeriesSplit

import assay
from assay.audit.base import AuditContext
from assay.audit.runner import audit
from assay.config.metrics import CLASSIFICATION_TASKS
from assay.data.dataset import Dataset
from assay.errors import AssayError, ConfigError, GateFailed
from assay.evaluate import Evaluation, PairedComparison, evaluate, paired_bootstrap
from assay.gate import GateDecision, decide
from assay.lifecycle import registered_test_uses, write_version_report
from assay.project import Project
from assay.registry import ModelRegistry, RunStatus, open_registry
from assay.split import SplitPlan, make_splits
from assay.train import SearchResult, TrialInfo, run_search
from assay.train.pipeline import fit_model
from assay.train.scoring import score_estimator
from assay.train.search import chosen_template

__all__ = [
    "RunResult",
    "StageEvent",
    "code_version",
    "compare_with_champion",
    "cross_validate",
    "evaluated_metrics",
    "feature_schema",
    "metric_summary",
    "open_registry",
    "plain_value",
    "resolve_text_column",
    "run_project",
    "search_options",
    "split_summary",
]

#: rows used for the cross-validation spread on large training sets
CV_MAX_ROWS = 20_000


@dataclass(frozen=True)
class StageEvent:
    """Progress of a run: a stage started or finished, or a search trial ended."""

    stage: str
    message: str
    trial: TrialInfo | None = None


Listener = Callable[[StageEvent], None]


@dataclass(frozen=True)
class RunResult:
    """What one ``assay run`` did and decided."""

    run_id: int
    version: int
    family: str
    primary: str
    validation_value: float
    test_value: float | None
    baseline_value: float | None
    test_metrics: dict[str, Any]
    gate: GateDecision
    promoted: bool
    champion: int | None
    test_fingerprint: str
    test_uses: int
    max_test_uses: int
    split: dict[str, Any]
    diagnosis: dict[str, Any] | None
    audit_id: int
    warnings: tuple[str, ...] = ()
    report: str | None = None
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "version": self.version,
            "family": self.family,
            "primary": self.primary,
            "validation_value": self.validation_value,
            "test_value": self.test_value,
            "baseline_value": self.baseline_value,
            "test_metrics": self.test_metrics,
            "gate": self.gate.to_dict(),
            "promoted": self.promoted,
            "champion": self.champion,
            "test_fingerprint": self.test_fingerprint,
            "test_uses": self.test_uses,
            "max_test_uses": self.max_test_uses,
            "split": self.split,
            "diagnosis": self.diagnosis,
            "audit_id": self.audit_id,
            "warnings": list(self.warnings),
            "report": self.report,
            "seconds": round(self.seconds, 3),
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
        }


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


def run_project(
    project: Project,
    *,
    registry: ModelRegistry | None = None,
    listener: Listener | None = None,
    write_report: bool = True,
) -> RunResult:
    """Run the whole path for ``project`` and return what was decided.

    Raises:
        GateFailed: the data audit has a blocking finding (nothing is trained).
        ConfigError, DataError: unusable framing or data.
    """
    started = time.perf_counter()
    say = listener or (lambda event: None)
    spec = project.spec
    registry = registry or open_registry(project)
    seconds: dict[str, float] = {}

    def stage(name: str, message: str) -> float:
        say(StageEvent(name, message))
        return time.perf_counter()

    t = stage("load", f"loading {spec.data.source}")
    dataset = project.load_data()
    seconds["load"] = time.perf_counter() - t

    _check_acceptance_computable(spec, dataset)
    t = stage("audit", f"auditing {dataset.n_rows:,} rows")
    report = audit(dataset, spec)
    audit_id = registry.record_audit(report.to_dict(), dataset.version, report.passed)
    seconds["audit"] = time.perf_counter() - t
    if not report.passed:
        blocking = "; ".join(f"{f.check} ({', '.join(f.columns)}): {f.message}" for f in report.blocking)
        raise GateFailed(
            f"the data audit has {len(report.blocking)} blocking finding(s): {blocking}",
            where=project.data_label,
            fix="Fix the data or add the columns to data.drop in assay.yaml; "
            "'assay audit' shows every finding.",
        )

    ctx = AuditContext.from_spec(dataset, spec)
    features = ctx.features
    text_column = resolve_text_column(dataset, spec.data.text, features, spec.task)
    code = code_version(project)
    run_id = registry.start_run(
        spec.to_dict(), dataset.version, code,
        seeds={"seed": spec.seed, "split": spec.seed, "search": spec.seed},
    )
    try:
        result = _train_and_decide(
            project, registry, dataset, features, text_column, run_id, audit_id, say, seconds,
            write_report, code,
        )
    except BaseException as exc:
        status: RunStatus = "cancelled" if isinstance(exc, KeyboardInterrupt) else "failed"
        try:
            registry.finish_run(run_id, status, {"error": str(exc)})
        except Exception:  # noqa: BLE001 - the original error matters more
            pass
        raise
    return replace(result, seconds=time.perf_counter() - started, stage_seconds=dict(seconds))


def _train_and_decide(
    project: Project,
    registry: ModelRegistry,
    dataset: Dataset,
    features: list[str],
    text_column: str | None,
    run_id: int,
    audit_id: int,
    say: Listener,
    seconds: dict[str, float],
    write_report: bool,
    code: str,
) -> RunResult:
    spec = project.spec
    frame = dataset.frame
    target = spec.data.target
    warnings: list[str] = []

    t = time.perf_counter()
    say(StageEvent("split", f"{spec.split_strategy} split"))
    plan = make_splits(frame, spec, data_version=dataset.version, features=features)
    train_rows = _ordered(plan.take(frame, "train"), spec)
    val_rows = _ordered(plan.take(frame, "validation"), spec)
    X_train, y_train = train_rows[features], train_rows[target]
    X_val, y_val = val_rows[features], val_rows[target]
    seconds["split"] = time.perf_counter() - t

    t = time.perf_counter()
    say(StageEvent("search", f"searching {', '.join(spec.search.families)}"))
    search = run_search(
        X_train, y_train, X_val, y_val,
        task=spec.task, schema=dataset.schema, features=features, text_column=text_column,
        families=spec.search.families, primary_metric=spec.primary_metric,
        trials=spec.search.trials, minutes=spec.search.minutes, sampler=spec.search.sampler,
        pruning=spec.search.pruning, seed=spec.seed,
        progress=lambda info: say(StageEvent("trial", "", trial=info)),
        **search_options(spec, train_rows, val_rows),
    )
    seconds["search"] = time.perf_counter() - t
    if search.diagnosis is not None and search.diagnosis.verdict != "good":
        warnings.append(f"learning curve: {search.diagnosis.verdict}: {search.diagnosis.action}")

    t = time.perf_counter()
    say(StageEvent("cv", f"{spec.search.cv_folds}-fold cross-validation of {search.best_family}"))
    cv_scores = cross_validate(search, plan, frame, features, text_column, dataset, spec)
    seconds["cv"] = time.perf_counter() - t

    # The sealed test set is opened here, once, for the chosen candidate.
    t = time.perf_counter()
    say(StageEvent("evaluate", "scoring the sealed test set"))
    test = plan.take(frame, "test")
    X_test, y_test = test[features], test[target]
    slice_frame = test[spec.slices] if spec.slices else None
    protected = test[spec.fairness.protected] if spec.fairness.protected else None
    model = search.estimator
    size = len(pickle.dumps(model, protocol=5))
    evaluation = evaluate(
        model, X_test, y_test, task=spec.task, metrics=evaluated_metrics(spec),
        slices=slice_frame, protected=protected, min_slice_size=spec.fairness.min_slice_size,
        seed=spec.seed, cv_scores=cv_scores, artifact_size=size, X_reference=X_train,
        primary=spec.primary_metric,
    )
    baseline = evaluate(
        search.baseline, X_test, y_test, task=spec.task, metrics=evaluated_metrics(spec),
        seed=spec.seed, primary=spec.primary_metric, check_robustness=False, time_latency=False,
    )
    seconds["evaluate"] = time.perf_counter() - t

    t = time.perf_counter()
    lineage = {
        "audit_id": audit_id,
        "split": split_summary(plan),
        "split_digest": registry.store_json(plan.to_dict()),
        "search": registry.store_json(search.to_dict()),
        "evaluation": registry.store_json(evaluation.to_dict()),
        "baseline": registry.store_json(baseline.to_dict()),
        "reference": registry.store_json(
            _reference_profile(model, X_train, dataset, features, spec).to_dict()
        ),
        "features": features,
        "text_column": text_column,
        "target": target,
        "classes": [plain_value(c) for c in evaluation.classes],
        "diagnosis": search.diagnosis.to_dict() if search.diagnosis else None,
        "validation_value": search.best_value,
    }
    version = registry.register(
        run_id, model_obj=model, task=spec.task, family=search.model_family,
        params=search.model_params, metrics=metric_summary(evaluation, baseline, search),
        data_version=dataset.version, config=spec.to_dict(), code_version=code,
        schema=feature_schema(dataset, features), lineage=lineage,
        test_fingerprint=plan.test_fingerprint,
    )
    registry.record_test_access(plan.test_fingerprint, version.version, run_id, "register")
    seconds["register"] = time.perf_counter() - t

    t = time.perf_counter()
    say(StageEvent("gate", "checking the gates"))
    champion = registry.champion()
    comparison, note = compare_with_champion(
        registry, champion.version if champion else None, model, X_test, y_test, spec, run_id,
        plan.test_fingerprint,
    )
    decision = decide(
        evaluation, spec, comparison=comparison,
        champion_version=champion.version if champion else None, champion_note=note,
        baseline_value=baseline.metrics.get(spec.primary_metric),
    )
    registry.record_gate(version.version, decision.passed, [g.to_dict() for g in decision.gates])
    promoted = False
    if decision.passed:
        registry.promote(
            version.version, gate_passed=True, reason=f"assay run {run_id}: every gate passed"
        )
        promoted = True
    seconds["gate"] = time.perf_counter() - t

    uses = registry.test_access_count(plan.test_fingerprint)
    registered_uses = registered_test_uses(registry, plan.test_fingerprint)
    if registered_uses > spec.gate.max_test_uses:
        warnings.append(
            f"the sealed test set has now scored {registered_uses} registered candidates "
            f"(more than {spec.gate.max_test_uses}): its metrics are optimistically biased; "
            "collect fresh test data or change split.seed"
        )
    report_path = None
    if write_report:
        report_path = str(write_version_report(project, registry, version.version))
    registry.finish_run(
        run_id, "succeeded",
        {"version": version.version, "gate_passed": decision.passed, "promoted": promoted,
         "warnings": warnings},
    )
    test_value = evaluation.metrics.get(spec.primary_metric)
    return RunResult(
        run_id=run_id,
        version=version.version,
        family=search.model_family,
        primary=spec.primary_metric,
        validation_value=search.best_value,
        test_value=test_value,
        baseline_value=baseline.metrics.get(spec.primary_metric),
        test_metrics=dict(evaluation.metrics),
        gate=decision,
        promoted=promoted,
        champion=registry.alias("champion"),
        test_fingerprint=plan.test_fingerprint,
        test_uses=uses,
        max_test_uses=spec.gate.max_test_uses,
        split=split_summary(plan),
        diagnosis=search.diagnosis.to_dict() if search.diagnosis else None,
        audit_id=audit_id,
        warnings=tuple(warnings),
        report=report_path,
    )


#: training rows profiled for drift (predictions are computed on them)
REFERENCE_MAX_ROWS = 50_000
#: sorted values kept per numeric column for the KS test (keeps the profile well under 1 MB)
REFERENCE_SAMPLE = 5_000


def _reference_profile(
    model: Any, X_train: pd.DataFrame, dataset: Dataset, features: list[str], spec: Any
) -> Any:
    """The drift reference of a new version: its training rows, predictions and confidence."""
    from assay.monitor.reference import build_reference

    rows = X_train
    if len(rows) > REFERENCE_MAX_ROWS:
        keep = np.sort(np.random.default_rng(spec.seed).choice(len(rows), REFERENCE_MAX_ROWS, replace=False))
        rows = rows.iloc[keep]
    prediction = model.predict(rows)
    confidence = None
    if spec.task in CLASSIFICATION_TASKS and hasattr(model, "predict_proba"):
        confidence = np.asarray(model.predict_proba(rows)).max(axis=1)
    return build_reference(
        rows, [dataset.schema[c] for c in features], prediction=prediction,
        confidence=confidence, seed=spec.seed, sample=REFERENCE_SAMPLE,
    )


def _ordered(rows: pd.DataFrame, spec: Any) -> pd.DataFrame:
    """Rows in time order for chronological projects (cross-validation folds follow time)."""
    if spec.split_strategy == "chronological" and spec.data.time:
        return rows.sort_values(spec.data.time, kind="stable")
    return rows


def search_options(spec: Any, train: pd.DataFrame, validation: pd.DataFrame) -> dict[str, Any]:
    """How the search cross-validates on small data: by group or in time order, as the split does."""
    options: dict[str, Any] = {"cv_folds": spec.search.cv_folds, "ensemble": spec.search.ensemble}
    if spec.split_strategy == "group" and spec.data.group:
        options["cv_groups"] = (train[spec.data.group].to_numpy(), validation[spec.data.group].to_numpy())
    if spec.split_strategy == "chronological":
        options["time_ordered"] = True
    return options


def evaluated_metrics(spec: Any) -> list[str]:
    """Reported metrics plus every metric an acceptance criterion names."""
    return list(dict.fromkeys([spec.primary_metric, *spec.reported_metrics, *spec.acceptance]))


def _check_acceptance_computable(spec: Any, dataset: Dataset) -> None:
    """Refuse, before any training, acceptance criteria that cannot be evaluated on this data."""
    target = dataset.frame[spec.data.target].dropna()
    if "mape" in spec.acceptance and (target == 0).any():
        raise ConfigError(
            "MAPE is undefined because the target is 0 in some rows, so this criterion can never "
            "be evaluated",
            key="acceptance.mape",
            received=f"{int((target == 0).sum())} rows with target 0",
            fix="Use mae or rmse in acceptance instead.",
        )


def resolve_text_column(
    dataset: Dataset, configured: str | None, features: list[str], task: str
) -> str | None:
    """The free-text column: configured, or the only text feature of a text-classification task."""
    if configured is not None:
        return configured
    if task != "text-classification":
        return None
    texts = [c for c in features if dataset.schema[c].kind == "text"]
    return texts[0] if texts else None


def plain_value(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def split_summary(plan: SplitPlan) -> dict[str, Any]:
    data = plan.to_dict()
    for part in ("train", "validation", "test"):
        data.pop(part, None)
    return data


def feature_schema(dataset: Dataset, features: list[str]) -> dict[str, Any]:
    return {"columns": [dataset.schema[c].to_dict() for c in features]}


def metric_summary(evaluation: Evaluation, baseline: Evaluation, search: SearchResult) -> dict[str, Any]:
    return {
        "primary": evaluation.primary,
        "test": dict(evaluation.metrics),
        "test_intervals": {k: list(v) for k, v in evaluation.intervals.items()},
        "baseline_test": dict(baseline.metrics),
        "validation": search.best_value,
        "cv": evaluation.cv.to_dict() if evaluation.cv else None,
    }


def _cv_splitter(spec: Any, n_rows: int) -> Any:
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
    text_column: str | None, dataset: Dataset, spec: Any,
) -> list[float] | None:
    """The primary metric of the chosen configuration over folds of the training rows.

    An ensemble keeps the fold scores the search measured on its out-of-fold
    predictions (training + validation rows): refitting every member per fold again
    would cost several times the search's own cross-validation.
    """
    if search.ensemble is not None and search.ensemble.fold_values:
        return list(search.ensemble.fold_values)
    train = plan.take(frame, "train")
    if spec.split_strategy == "chronological" and spec.data.time:
        train = train.sort_values(spec.data.time, kind="stable")
    if len(train) > CV_MAX_ROWS:
        keep = np.sort(np.random.default_rng(spec.seed).choice(len(train), CV_MAX_ROWS, replace=False))
        train = train.iloc[keep]
    X, y = train[features], train[spec.data.target]
    groups = train[spec.data.group] if spec.split_strategy == "group" and spec.data.group else None
    template = chosen_template(
        search, schema=dataset.schema, features=features, text_column=text_column
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
    y_test: pd.Series, spec: Any, run_id: int, fingerprint: str,
) -> tuple[PairedComparison | None, str]:
    if champion is None or not spec.gate.compare_champion:
        return None, ""
    record = registry.get(champion)
    wanted = record.lineage.get("features") or list(X_test.columns)
    missing = [c for c in wanted if c not in X_test.columns]
    if missing:
        return None, f"the champion uses columns the new data lacks: {', '.join(missing[:5])}"
    try:
        champ = registry.load_model(champion)
        registry.record_test_access(fingerprint, champion, run_id, "champion comparison")
        task = spec.task
        classification = task in CLASSIFICATION_TASKS
        pred_a = champ.predict(X_test[wanted])
        pred_b = model.predict(X_test)
        proba_a = champ.predict_proba(X_test[wanted]) if classification else None
        proba_b = model.predict_proba(X_test) if classification else None
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
