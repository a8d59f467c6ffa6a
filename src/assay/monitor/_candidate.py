"""A retrain candidate: its refreshed data, its training with the project's spec, and its
judgement on a fresh holdout.

The data: the project's data plus the labelled logged traffic of the last
``retrain.horizon_days`` (answered predictions only: served, canary and ``assay predict``), labels that copy the model's own
predictions excluded, rows validated against the training schema, traffic rows that
duplicate another row dropped.

The candidate stage of ``assay run`` (:func:`assay.candidate.build_candidate`: split,
search, cross-validation, evaluation on the candidate's sealed test rows, registration),
without its promotion: a retrain candidate is shadowed before it may become champion. The champion gate is
computed on the *fresh holdout*: the candidate's sealed test rows that the champion
never saw either (rows outside the champion's own training and validation rows; when
those cannot be recovered, only traffic logged after the champion was registered).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from assay.config.metrics import CLASSIFICATION_TASKS
from assay.data.dataset import Dataset
from assay.gate import GateDecision, decide
from assay.monitor.performance import (
    FeedbackLoopCheck,
    attach_label_sources,
    coerce_labels,
    detect_feedback_loop,
)
from assay.project import Project
from assay.registry import ModelRegistry, ModelVersion
from assay.store.database import utcnow

__all__ = ["MIN_HOLDOUT", "JudgedCandidate", "assemble_training_data", "train_candidate"]

#: fresh holdout rows (unseen by both models) needed to compare candidate and champion
MIN_HOLDOUT = 30


@dataclass(frozen=True)
class _Assembled:
    frame: pd.DataFrame
    is_traffic: np.ndarray
    logged_at: pd.Series
    summary: dict[str, Any]
    feedback_loop: FeedbackLoopCheck | None
    label_version: int | None = None


def assemble_training_data(
    project: Project,
    registry: ModelRegistry,
    champion: ModelVersion,
    *,
    now: datetime | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The refreshed training rows (project data + labelled recent traffic) and a summary.

    See the module doc, step 1. The summary counts the original rows, the labelled
    traffic in the horizon, the labels excluded as copies of the model's predictions,
    the rows validation refused, the duplicates dropped and the traffic rows used.
    """
    assembled = _assemble(project, registry, champion, now or utcnow())
    return assembled.frame, assembled.summary


def _assemble(
    project: Project, registry: ModelRegistry, champion: ModelVersion, now: datetime
) -> _Assembled:
    from assay.data.keys import exact_duplicate_groups
    from assay.monitor.monitor import traffic_frame
    from assay.model.predictions import read_predictions

    spec = project.spec
    target = spec.data.target
    dataset = project.load_data()
    original = dataset.frame.reset_index(drop=True)
    features = spec.feature_columns(dataset.frame.columns)
    horizon = spec.retrain.horizon_days
    since = now - timedelta(days=horizon) if horizon else None
    log = read_predictions(registry.store, since=since)
    input_columns = list(log.attrs.get("input_columns") or [])
    answered = log["route"].isin(["champion", "canary", "batch"]).to_numpy() & log["label"].notna().to_numpy()
    log = log.loc[answered].reset_index(drop=True)
    log.attrs["input_columns"] = input_columns
    classification = spec.task in CLASSIFICATION_TASKS
    classes = sorted(original[target].dropna().unique().tolist(), key=repr) if classification else None
    loop: FeedbackLoopCheck | None = None
    summary: dict[str, Any] = {
        "original_rows": int(len(original)),
        "labelled_traffic": int(len(log)),
        "horizon_days": horizon,
        "since": since.isoformat() if since else None,
    }
    if len(log):
        log = attach_label_sources(registry.store, log)
        test = (champion.metrics or {}).get("test") or {}
        accuracy = test.get("accuracy")
        loop = detect_feedback_loop(
            log, task=spec.task, classes=classes,
            test_accuracy=float(accuracy) if accuracy is not None else None,
        )
        kept = ~loop.mask(log)
        log = log.loc[kept].reset_index(drop=True)
        log.attrs["input_columns"] = input_columns
    summary["excluded_feedback_loop"] = loop.excluded_labels if loop else 0
    columns = [dataset.schema[f] for f in features]
    inputs, positions = traffic_frame(log, columns, features)
    picked = log.iloc[positions].reset_index(drop=True)
    labels, valid = coerce_labels(picked["label"], spec.task, classes)
    summary["refused_rows"] = int(len(log) - len(positions))
    summary["unknown_labels"] = int((~valid).sum())
    traffic = inputs.loc[valid].reset_index(drop=True)
    picked = picked.loc[valid].reset_index(drop=True)
    traffic[target] = _as_dtype(pd.Series(labels[valid]), original[target].dtype)
    at = pd.to_datetime(picked["at"], utc=True)
    if spec.data.time is not None and spec.data.time in original.columns:
        traffic[spec.data.time] = _as_time(at, original[spec.data.time])
    for role in (spec.data.id, spec.data.group):
        if role is not None and role in original.columns and len(traffic):
            original[role] = original[role].astype(object).where(original[role].notna(), None)
            original[role] = [None if v is None else str(v) for v in original[role]]
            traffic[role] = [f"prediction:{pid}" for pid in picked["id"]]
    combined = pd.concat([original, traffic], ignore_index=True)
    is_traffic = np.r_[np.zeros(len(original), bool), np.ones(len(traffic), bool)]
    logged_at = pd.Series(
        pd.concat([pd.Series(pd.NaT, index=range(len(original)), dtype=at.dtype), at],
                  ignore_index=True)
    )
    duplicates = 0
    if len(traffic):
        keys = exact_duplicate_groups(combined, [*features, target])
        repeated = pd.Series(keys).duplicated().to_numpy() & is_traffic
        duplicates = int(repeated.sum())
        combined = combined.loc[~repeated].reset_index(drop=True)
        logged_at = logged_at.loc[~repeated].reset_index(drop=True)
        is_traffic = is_traffic[~repeated]
    summary["duplicates_removed"] = duplicates
    summary["traffic_rows"] = int(is_traffic.sum())
    summary["rows"] = int(len(combined))
    summary["original_version"] = dataset.version
    summary["feedback_loop"] = loop.to_dict() if loop else None
    return _Assembled(combined, is_traffic, logged_at, summary, loop, dataset.label_version)


def _as_dtype(values: pd.Series, dtype: Any) -> pd.Series:
    try:
        return values.astype(dtype)
    except (TypeError, ValueError):
        return values


def _as_time(at: pd.Series, like: pd.Series) -> pd.Series:
    tz = getattr(like.dtype, "tz", None)
    if pd.api.types.is_datetime64_any_dtype(like.dtype):
        out = at.dt.tz_convert(tz) if tz is not None else at.dt.tz_convert(None)
        try:
            return out.astype(like.dtype)
        except (TypeError, ValueError):
            return out
    return at


@dataclass(frozen=True)
class JudgedCandidate:
    """A registered retrain candidate and its offline verdict."""

    version: int
    decision: GateDecision
    holdout: dict[str, Any]


def train_candidate(
    project: Project,
    registry: ModelRegistry,
    dataset: Dataset,
    data: _Assembled,
    champion: ModelVersion,
    retrain_id: str,
    reason: str,
    run_id: int,
    audit_id: int,
) -> JudgedCandidate:
    """Register a candidate on ``dataset`` (the candidate stage); gate it on the fresh holdout."""
    from assay.candidate import build_candidate, compare_with_champion
    from assay.monitor.monitor import model_columns

    spec = project.spec
    frame = dataset.frame
    target = spec.data.target
    candidate = build_candidate(
        project, registry, dataset, run_id=run_id, audit_id=audit_id, reason=reason,
        extra_lineage={
            "training_data": _snapshot(registry, frame),
            "retrain_id": retrain_id,
            "retrain": {"reason": reason, "champion": champion.version, **_counts(data)},
        },
    )
    record, features, model = candidate.record, list(candidate.features), candidate.model
    plan, evaluation, baseline = candidate.plan, candidate.evaluation, candidate.baseline

    holdout_pos, how = _fresh_holdout(project, registry, champion, data, plan.test, features, target)
    comparison, note = None, ""
    holdout: dict[str, Any] = {
        "rows": int(len(holdout_pos)),
        "traffic_rows": int(data.is_traffic[holdout_pos].sum()) if len(holdout_pos) else 0,
        "selection": how,
    }
    champ_features, _ = model_columns(champion)
    if len(holdout_pos) < MIN_HOLDOUT:
        note = (
            f"the fresh holdout has {len(holdout_pos)} rows unseen by both models "
            f"(needs {MIN_HOLDOUT}); send more feedback labels and retrain again"
        )
    else:
        from assay.split.plan import fingerprint_test_set

        rows = frame.iloc[holdout_pos]
        fingerprint = fingerprint_test_set(holdout_pos, dataset.version)
        holdout["fingerprint"] = fingerprint
        registry.record_test_access(fingerprint, record.version, run_id, "fresh holdout")
        wanted = list(dict.fromkeys([*features, *champ_features]))
        present = [c for c in wanted if c in rows.columns]
        comparison, note = compare_with_champion(
            registry, champion.version, model, rows[present], rows[target], spec, run_id,
            fingerprint,
        )
        if comparison is not None:
            holdout["comparison"] = comparison.to_dict()
    decision = decide(
        evaluation, spec, comparison=comparison, champion_version=champion.version,
        champion_note=note, baseline_value=baseline.metrics.get(spec.primary_metric),
        baseline=candidate.baseline_comparison,
    )
    registry.record_gate(record.version, decision.passed, [g.to_dict() for g in decision.gates])
    return JudgedCandidate(record.version, decision, holdout)


def _counts(data: _Assembled) -> dict[str, Any]:
    keys = ("original_rows", "traffic_rows", "duplicates_removed", "excluded_feedback_loop",
            "refused_rows", "rows", "horizon_days", "since")
    return {k: data.summary.get(k) for k in keys}


def _fresh_holdout(
    project: Project,
    registry: ModelRegistry,
    champion: ModelVersion,
    data: _Assembled,
    test: np.ndarray,
    features: list[str],
    target: str,
) -> tuple[np.ndarray, str]:
    """Positions of the candidate's test rows that the champion never saw, and how chosen."""
    from assay.data.keys import exact_duplicate_groups
    from assay.monitor.monitor import version_rows

    test = np.asarray(test, dtype=np.int64)
    frame = data.frame
    columns = [*features, target]
    try:
        seen, why = version_rows(project, registry, champion.version, ("train", "validation"))
    except Exception as exc:  # noqa: BLE001 - an unreadable snapshot falls back to time
        seen, why = None, f"{type(exc).__name__}: {exc}"
    if seen is not None and all(c in seen.columns for c in columns):
        both = pd.concat([frame[columns], seen[columns]], ignore_index=True)
        keys = exact_duplicate_groups(both, columns)
        seen_keys = np.unique(keys[len(frame):])
        unseen = ~np.isin(keys[: len(frame)], seen_keys)
        how = f"test rows outside the {len(seen)} training and validation rows of v{champion.version}"
    else:
        registered = pd.Timestamp(champion.created_at)
        at = pd.to_datetime(data.logged_at, utc=True)
        unseen = data.is_traffic & (at > registered).to_numpy(dtype=bool)
        how = (
            f"test rows logged after v{champion.version} was registered "
            f"(its training rows are unknown: {why})"
        )
    return test[unseen[test]], how


def _snapshot(registry: ModelRegistry, frame: pd.DataFrame) -> str | None:
    """The training rows as a Parquet artifact (None when they cannot be written)."""
    buffer = io.BytesIO()
    try:
        frame.to_parquet(buffer, index=False)
    except Exception:  # noqa: BLE001 - e.g. mixed-type object columns; lineage says None
        return None
    return registry.store.artifacts.put_bytes(buffer.getvalue())
