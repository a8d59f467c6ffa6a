"""``assay monitor``: one monitoring pass over the champion's recent traffic.

:func:`monitor_project` reads a window of the champion's logged predictions (the
last ``monitoring.window`` of them, or those of the last ``monitoring.window_span``),
or a data file standing in for traffic, and

1. measures drift of the inputs and of the model outputs against the training
   reference of the version (:func:`reference_for`);
2. computes live metrics from the feedback labels and compares them with the
   registered test metrics (:mod:`assay.monitor.performance`);
3. judges the whole contract on the window (:mod:`assay.monitor.contract`): every
   acceptance threshold and fairness limit on the labelled traffic, and the logged
   latencies against ``serving.latency_p99_ms``, each with a bootstrap interval;
4. counts flagged inputs (unknown categories, out-of-range values, ...), by code and by
   field, re-validating the logged records against the version's schema (declared
   ``data.id``/``data.time``/``data.drop`` columns are passed through, not flagged);
5. compares the model's attributions on a sample of the window with the training
   reference stored in the version's explanation (:mod:`assay.monitor.attribution_drift`);
6. turns what it found into alerts, told apart where labels allow: inputs drifted
   -> ``data_drift``; error rising while no input drifted -> ``concept_drift``;
   error rising with drifted inputs -> ``performance`` (beside the ``data_drift``
   alert that likely explains it); many flagged inputs -> ``flagged_inputs``; a
   criterion of the contract failed beyond noise -> ``acceptance_breach``,
   ``fairness_breach`` or ``latency_breach`` (one alert per criterion); a column whose
   share of the attributions moved by more than ``monitoring.attribution_shift`` ->
   ``attribution_drift``;
7. stores the report (``drift_reports``) and the alerts (deduplicated, sent to
   ``monitoring.webhook``).

The window holds the server's answers (route ``champion``) and the champion's batch
predictions (``assay predict``, route ``batch``); latency is judged on the server's only.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import insert, select

from assay.config.metrics import CLASSIFICATION_TASKS, metrics_for
from assay.config.spec import ProjectSpec
from assay.data.schema import ColumnSchema
from assay.data.values import native
from assay.errors import ConfigError, DataError, NotFoundError, StoreError
from assay.monitor.alerts import (
    AlertDraft,
    AlertOutcome,
    Transport,
    raise_alerts,
)
from assay.monitor.alerts import Severity as AlertSeverity
from assay.monitor.attribution_drift import MIN_ROWS as ATTRIBUTION_MIN_ROWS
from assay.monitor.attribution_drift import AttributionDrift, attribution_drift
from assay.monitor.contract import breach_drafts, judge_contract
from assay.monitor.drift import ColumnDrift, DriftReport, detect_drift
from assay.monitor.performance import (
    LivePerformance,
    attach_label_sources,
    detect_feedback_loop,
    live_performance,
)
from assay.monitor.reference import ReferenceProfile, build_reference
from assay.monitor.report import FlaggedInputs, MonitorReport
from assay.monitor.text_drift import (
    TextDriftConfig,
    add_text_drift,
    profile_text_columns,
    text_columns,
)
from assay.project import Project
from assay.registry import ModelRegistry, ModelVersion
from assay.model.explained import stored_explanation
from assay.model.loaded import declared_columns, model_columns
from assay.model.predictions import LOG_COLUMNS, read_predictions
from assay.model.validation import ValidatedBatch
from assay.store.database import Store, as_utc, utcnow
from assay.store.serialize import to_jsonable
from assay.store.tables import drift_reports

__all__ = [
    "current_window",
    "latest_reports",
    "model_columns",
    "monitor_project",
    "parse_span",
    "reference_for",
    "WINDOW_ROUTES",
    "traffic_batch",
    "traffic_frame",
    "version_rows",
]

# the logged model outputs joined to the inputs, under names no feature can have
_OUTPUTS = ("id", "prediction", "probabilities", "confidence", "flags", "label")
#: the routes a monitoring window reads: the server's answers and batch predictions
WINDOW_ROUTES = ("champion", "batch")
_PREDICTION = "__assay_prediction__"
_CONFIDENCE = "__assay_confidence__"

_CACHE_LOCK = threading.Lock()
_REFERENCES: dict[tuple[str, int], ReferenceProfile] = {}


# -- the training side --------------------------------------------------------------


def version_rows(
    project: Project,
    registry: ModelRegistry,
    version: int,
    parts: Sequence[str] = ("train",),
) -> tuple[pd.DataFrame | None, str]:
    """The rows of ``parts`` (train / validation / test) that ``version`` was fitted on.

    Read from the data snapshot a retrain stored with the version (lineage
    ``training_data``), else from the project's data when its version is still the
    one the model was trained on. Returns ``(None, why)`` when the rows cannot be
    recovered exactly (the data file changed since).
    """
    from assay.split import SplitPlan

    record = registry.get(version)
    lineage = record.lineage
    frame: pd.DataFrame | None = None
    snapshot = lineage.training_data
    if snapshot:
        import io

        frame = pd.read_parquet(io.BytesIO(registry.store.artifacts.get_bytes(snapshot)))
    else:
        dataset = project.load_data()
        if dataset.version != record.data_version:
            return None, (
                f"the data of version {version} ({record.data_version[:19]}) is no longer "
                f"{project.data_label} ({dataset.version[:19]})"
            )
        frame = dataset.frame
    digest = lineage.split_digest
    if not digest:
        return None, f"version {version} has no stored split plan"
    plan = SplitPlan.from_dict(registry.load_json(digest))
    taken = pd.concat([plan.take(frame, part) for part in parts], ignore_index=True)
    return taken, ""


def reference_for(project: Project, registry: ModelRegistry, version: int) -> ReferenceProfile:
    """The training reference of ``version``: the stored one (lineage ``reference``), else
    built from its training rows (scored by the model for the output profiles) and kept
    in memory for the next call.

    Raises:
        NotFoundError: neither a stored reference nor the training rows exist.
    """
    record = registry.get(version)
    digest = record.lineage.reference
    if digest:
        return ReferenceProfile.from_dict(registry.load_json(digest))
    key = (registry.store.url, int(version))
    with _CACHE_LOCK:
        cached = _REFERENCES.get(key)
    if cached is not None:
        return cached
    rows, why = version_rows(project, registry, version, ("train",))
    if rows is None:
        dataset = project.load_data()
        rows = dataset.frame
        if rows.empty:
            raise NotFoundError(
                f"model version {version} has no training reference",
                where=f"model version {version}",
                expected="a stored reference profile or the training rows",
                received=why,
                fix="Re-register the model with `assay run` on its data.",
            )
    profile = _build_reference(registry, record, rows, project.root)
    with _CACHE_LOCK:
        _REFERENCES[key] = profile
    return profile


def _build_reference(
    registry: ModelRegistry, record: ModelVersion, rows: pd.DataFrame, root: Path
) -> ReferenceProfile:
    from assay.model.loaded import pipeline_scores

    features, columns = model_columns(record)
    model = registry.load_model(record.version)
    classification = record.task in CLASSIFICATION_TASKS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels, proba = pipeline_scores(model, rows[features], classification=classification)
    confidence = np.max(proba, axis=1) if proba is not None else None
    config = record.config if isinstance(record.config, Mapping) else {}
    seed = int(config.get("seed", 0))
    profile = build_reference(
        rows, columns, prediction=np.asarray(labels), confidence=confidence, seed=seed
    )
    model = config.get("model")
    text: Mapping[str, Any] = model if isinstance(model, Mapping) else {}
    return profile_text_columns(
        profile, rows, text_columns(columns, record.lineage.text_column),
        base=text.get("base"), root=root, max_length=text.get("max_length"),
    )


# -- the traffic side ---------------------------------------------------------------


def parse_span(text: str, key: str = "monitoring.window_span") -> timedelta:
    """A duration such as ``"1d"``, ``"12h"``, ``"30min"`` as a timedelta (a ConfigError
    naming ``key`` when it is not a positive duration)."""
    units = {"d": "D", "day": "D", "days": "D", "w": "W", "week": "W", "weeks": "W"}
    raw = str(text).strip()
    value = raw
    for suffix, unit in units.items():
        number = raw[: -len(suffix)].strip()
        if raw.lower().endswith(suffix) and number.replace(".", "", 1).isdigit():
            value = f"{number}{unit}"
            break
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            delta = pd.Timedelta(value)
    except (ValueError, TypeError):
        delta = pd.NaT
    if pd.isna(delta) or delta <= pd.Timedelta(0):
        raise ConfigError(
            "the value is not a positive duration",
            key=key,
            expected="a duration such as '1d', '12h' or '30min'",
            received=text,
            fix=f"Write {key} as e.g. '1d'.",
        )
    result: timedelta = delta.to_pytimedelta()
    return result


def current_window(
    store: Store,
    version: int,
    *,
    window: int | str | None,
    default_size: int,
    default_span: str | None,
    now: datetime | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The champion predictions of ``version`` in the window, and how the window was chosen.

    ``window`` is a number of predictions or a duration (``"1d"``); None uses
    ``monitoring.window_span`` when set, else ``monitoring.window``.
    """
    chosen: int | str = window if window is not None else (default_span or default_size)
    if isinstance(chosen, str) and chosen.strip().isdigit():
        chosen = int(chosen)
    if isinstance(chosen, bool) or (isinstance(chosen, int) and chosen < 1):
        raise ConfigError(
            "the monitoring window must hold at least one prediction",
            key="monitoring.window",
            expected="a number of predictions >= 1 or a duration such as '1d'",
            received=chosen,
            fix="Pass a positive window.",
        )
    if isinstance(chosen, int):
        frame = read_predictions(store, version=version, route=WINDOW_ROUTES, limit=chosen)
        info: dict[str, Any] = {"kind": "predictions", "size": chosen}
    else:
        span = parse_span(chosen)
        since = (now or utcnow()) - span
        frame = read_predictions(store, version=version, route=WINDOW_ROUTES, since=since)
        info = {"kind": "span", "span": chosen, "since": since.isoformat()}
    if len(frame):
        info["first"] = as_utc(frame["at"].iloc[0].to_pydatetime()).isoformat()
        info["last"] = as_utc(frame["at"].iloc[-1].to_pydatetime()).isoformat()
    return frame, info


def traffic_frame(
    log: pd.DataFrame,
    columns: Sequence[ColumnSchema],
    features: Sequence[str],
    *,
    passthrough: Sequence[str] = (),
) -> tuple[pd.DataFrame, np.ndarray]:
    """The logged inputs of ``log`` (from ``read_predictions``) as a frame with the training
    dtypes, and the positions of ``log`` they come from (records validation refuses are
    left out)."""
    batch = traffic_batch(log, columns, features, passthrough=passthrough)
    return batch.frame.reset_index(drop=True), np.asarray(batch.valid_index, dtype=np.int64)


def traffic_batch(
    log: pd.DataFrame,
    columns: Sequence[ColumnSchema],
    features: Sequence[str],
    *,
    passthrough: Sequence[str] = (),
) -> ValidatedBatch:
    """The logged records of ``log`` validated again against the version's schema: the
    valid rows, their positions in ``log`` and each row's flagged issues, naming the field
    (``passthrough``: the declared non-feature columns, accepted without a flag)."""
    from assay.model.validation import validate_records

    input_columns = list(log.attrs.get("input_columns") or [])
    names = {
        col: col[len("input."):] if col.startswith("input.") and col[len("input."):] in LOG_COLUMNS
        else col
        for col in input_columns
    }
    rows: Any = (
        log[input_columns].itertuples(index=False, name=None) if input_columns else [()] * len(log)
    )
    records = [
        {names[c]: native(v) for c, v in zip(input_columns, values) if not _missing(v)}
        for values in rows
    ]
    return validate_records(records, list(columns), list(features), passthrough=passthrough)


def _file_window(
    registry: ModelRegistry, record: ModelVersion, current: pd.DataFrame, target: str
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A data file standing in for traffic: the validated inputs, the model's answers
    (labelled by the target column when present) and the file's rows they come from."""
    from assay.model.loaded import LoadedModel
    from assay.model.validation import validate_records

    features, columns = model_columns(record)
    absent = [f for f in features if f not in current.columns]
    if absent:
        raise DataError(
            f"column '{absent[0]}' of the model is not in the current data",
            column=absent[0],
            expected="every input column of the model: " + ", ".join(features[:20]),
            received="columns: " + ", ".join(map(str, list(current.columns)[:20])),
            fix="Pass a file with the model's input columns (the target is optional).",
        )
    records = [
        {k: native(v) for k, v in row.items() if not _missing(v)}
        for row in current[features].to_dict("records")
    ]
    batch = validate_records(records, columns, features, passthrough=declared_columns(record))
    model = LoadedModel.load(registry, record.version)
    answers = model.predict(batch.frame) if len(batch.frame) else []
    positions = list(batch.valid_index)
    labels = (
        [native(current[target].iloc[i]) for i in positions]
        if target in current.columns
        else [None] * len(positions)
    )
    outputs = pd.DataFrame(
        {
            "id": [f"row-{i}" for i in positions],
            "prediction": [a.prediction for a in answers],
            "probabilities": [a.probabilities for a in answers],
            "confidence": [np.nan if a.confidence is None else a.confidence for a in answers],
            "flags": [list(f) for f in batch.flags],
            "label": [None if _missing(v) else v for v in labels],
        }
    )
    outputs["flag_fields"] = [batch.flag_fields(i) for i in range(len(positions))]
    rows = current.iloc[positions].reset_index(drop=True)
    return batch.frame.reset_index(drop=True), outputs, rows


def _revalidated_flags(outputs: pd.DataFrame, batch: ValidatedBatch) -> pd.DataFrame:
    """``outputs`` with ``flag_fields`` naming the field of each logged flag (``code:field``,
    found by validating the logged record again; a flag validation does not place, such as
    the log's ``truncated``, keeps its bare code).

    The logged flags stay the record of what was answered, with one exception: a logged
    ``unknown_field`` that validation no longer finds is dropped - it was a declared column
    (``data.id``, ``data.time``, ...) flagged before such columns were passed through.
    """
    out = outputs.copy()
    flags: list[list[str]] = []
    named: list[list[str]] = []
    for i, old in enumerate(out["flags"]):
        now = set(batch.flags[i]) if i < len(batch.flags) else set()
        codes = [f for f in dict.fromkeys(old or []) if f != "unknown_field" or f in now]
        placed = [item for item in batch.flag_fields(i) if item.split(":", 1)[0] in codes]
        found = {item.split(":", 1)[0] for item in placed}
        flags.append(codes)
        named.append([*placed, *(c for c in codes if c not in found)])
    out["flags"] = flags
    out["flag_fields"] = named
    return out


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


# -- the pass -----------------------------------------------------------------------


def monitor_project(
    project: Project,
    *,
    current: pd.DataFrame | None = None,
    window: int | str | None = None,
    registry: ModelRegistry | None = None,
    now: datetime | None = None,
    record: bool = True,
    cooldown: timedelta | None = None,
    flagged_threshold: float | None = None,
    min_rows: int | None = None,
    min_labels: int | None = None,
    transport: Transport | None = None,
) -> MonitorReport:
    """Monitor the champion of ``project`` over a window of traffic (see the module doc).

    Args:
        project: the project.
        current: a frame standing in for traffic (the model's input columns, and the
            target column for live metrics); default: the logged predictions.
        window: a number of predictions or a duration; default from ``monitoring``.
        registry: the project's registry (default: opened from the project).
        now: the time of the pass (default: now).
        record: store the report and the alerts (and send them); False for a dry run.
        cooldown: how long an open alert silences the same condition (default:
            ``monitoring.alert_cooldown``).
        flagged_threshold: the flagged share that raises a ``flagged_inputs`` alert
            (default: ``monitoring.flagged_share``).
        min_rows: the smallest window checked for drift (default: ``monitoring.min_window``).
        min_labels: the labelled predictions needed to judge live performance (default:
            ``monitoring.min_labels``).
        transport: the webhook sender (tests pass their own).

    Raises:
        NotFoundError: there is no champion to monitor.
    """
    spec = project.spec
    monitoring = spec.monitoring
    if cooldown is None:
        cooldown = parse_span(monitoring.alert_cooldown, "monitoring.alert_cooldown")
    flagged_threshold = monitoring.flagged_share if flagged_threshold is None else flagged_threshold
    min_rows = monitoring.min_window if min_rows is None else min_rows
    min_labels = monitoring.min_labels if min_labels is None else min_labels
    registry = registry or _open(project)
    now = now or utcnow()
    champion = registry.champion()
    if champion is None:
        raise NotFoundError(
            "there is no champion to monitor",
            where=registry.store.url,
            expected="a promoted model version",
            received="no champion",
            fix="Run `assay run` (or promote a version) first.",
        )
    version = champion.version
    features, columns = model_columns(champion)
    notes: list[str] = []
    reference = reference_for(project, registry, version)
    if current is not None:
        inputs, outputs, rows = _file_window(registry, champion, current, spec.data.target)
        info: dict[str, Any] = {"kind": "file", "rows": int(len(current))}
        refused = int(len(current) - len(inputs))
    else:
        log, info = current_window(
            registry.store, version, window=window, default_size=monitoring.window,
            default_span=monitoring.window_span, now=now,
        )
        batch = traffic_batch(log, columns, features, passthrough=declared_columns(champion))
        inputs = batch.frame.reset_index(drop=True)
        positions = np.asarray(batch.valid_index, dtype=np.int64)
        rows = log.iloc[positions].reset_index(drop=True)
        outputs = _revalidated_flags(rows[list(_OUTPUTS)], batch)
        outputs = attach_label_sources(registry.store, outputs)
        refused = int(len(log) - len(positions))
    if refused:
        notes.append(f"{refused} row(s) of the window no longer validate against the schema")
    n_rows = int(len(inputs))
    drift_frame = inputs.copy()
    drift_frame[_PREDICTION] = outputs["prediction"].to_numpy()
    drift_frame[_CONFIDENCE] = outputs["confidence"].to_numpy(dtype=float)
    drift = detect_drift(
        reference, drift_frame, psi_moderate=monitoring.psi_moderate,
        psi_significant=monitoring.psi_significant, js_threshold=monitoring.js_threshold,
        min_rows=min_rows, prediction=_PREDICTION, confidence=_CONFIDENCE,
    )
    if reference.text:
        device = None if spec.model.device == "auto" else spec.model.device
        drift = add_text_drift(
            drift, reference, inputs, root=project.root, device=device,
            config=TextDriftConfig(seed=spec.seed),
        )
        profiled = {t.name for t in reference.text}
        notes.extend(
            f"text column '{s.name}' was not checked for drift: {s.reason}"
            for s in drift.skipped if s.name in profiled
        )
    performance = _performance(champion, outputs, spec, min_labels)
    if performance.feedback_loop is not None and performance.feedback_loop.detected:
        notes.append(performance.feedback_loop.message)
    flagged = _flagged(outputs, flagged_threshold)
    contract = judge_contract(champion, spec, performance, outputs, rows, min_labels, notes)
    attribution = _attribution(registry, champion, inputs, spec)
    drafts = _drafts(version, drift, performance, flagged, info)
    drafts.extend(breach_drafts(version, contract, info))
    drafts.extend(_attribution_drafts(version, attribution, info))
    assessed = {"flagged_inputs"} if n_rows else set()
    if drift.checked:
        assessed.add("data_drift")
    if performance.assessed:
        assessed.update({"performance", "concept_drift"})
    for kind in ("acceptance", "fairness", "latency"):
        if contract.judged(kind):
            assessed.add(f"{kind}_breach")
    if attribution.judged:
        assessed.add("attribution_drift")
    outcome = AlertOutcome()
    if record:
        outcome = raise_alerts(
            registry.store, drafts, version=version, assessed=assessed,
            webhook=monitoring.webhook, cooldown=cooldown, project=spec.name or project.root.name,
            now=now, transport=transport,
        )
    report = MonitorReport(
        at=now, version=version, window=info, n_rows=n_rows, drift=drift,
        performance=performance, flagged=flagged, alerts=outcome,
        verdict=_verdict(drafts, drift, performance), notes=tuple(notes), contract=contract,
        attribution=attribution,
    )
    if record:
        report = _store(registry.store, report)
    return report


def latest_reports(store: Store, limit: int = 10) -> list[MonitorReport]:
    """The stored monitoring reports, newest first."""
    query = select(drift_reports).order_by(drift_reports.c.id.desc()).limit(limit)
    with store.connect() as conn:
        rows = list(conn.execute(query))
    out = []
    for row in rows:
        data = dict(row.report)
        data["report_id"] = int(row.id)
        out.append(MonitorReport.from_dict(data))
    return out


def _open(project: Project) -> ModelRegistry:
    from assay.registry import open_registry

    return open_registry(project)


def _store(store: Store, report: MonitorReport) -> MonitorReport:
    from dataclasses import replace

    with store.transaction() as conn:
        result = conn.execute(
            insert(drift_reports).values(
                at=report.at,
                version=report.version,
                window=to_jsonable(report.window, "window"),
                report=to_jsonable(report.to_dict(), "report"),
            )
        )
        key = result.inserted_primary_key
    return replace(report, report_id=int(key[0]) if key is not None else None)


def _performance(
    record: ModelVersion, frame: pd.DataFrame, spec: ProjectSpec, min_labels: int
) -> LivePerformance:
    classes = (
        list(record.lineage.classes) or None if record.task in CLASSIFICATION_TASKS else None
    )
    test = dict((record.metrics or {}).get("test") or {})
    loop = None
    if frame["label"].notna().any():
        loop = detect_feedback_loop(
            frame, task=record.task, classes=classes, test_accuracy=_number(test.get("accuracy"))
        )
    names = list(dict.fromkeys([*metrics_for(record.task), *spec.acceptance]))
    return live_performance(
        frame, version=record.version, task=record.task, classes=classes,
        primary=spec.primary_metric, reference=test,
        tolerance=spec.monitoring.performance_tolerance, feedback_loop=loop,
        min_labels=min_labels, seed=spec.seed, metrics=names,
    )


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _flagged(frame: pd.DataFrame, threshold: float) -> FlaggedInputs:
    n = int(len(frame))
    counts: dict[str, int] = {}
    fields: dict[str, int] = {}
    n_flagged = 0
    named = frame["flag_fields"] if "flag_fields" in frame.columns else [[]] * n
    for flags, where in zip(frame["flags"], named) if n else []:
        codes = set(flags or [])
        if codes:
            n_flagged += 1
        for code in codes:
            counts[code] = counts.get(code, 0) + 1
        for item in set(where or []):
            fields[item] = fields.get(item, 0) + 1
    return FlaggedInputs(
        n_rows=n,
        n_flagged=n_flagged,
        by_code={code: count / n for code, count in sorted(counts.items())},
        threshold=threshold,
        by_field={item: count / n for item, count in sorted(fields.items())},
    )


def _drafts(
    version: int,
    drift: DriftReport,
    performance: LivePerformance,
    flagged: FlaggedInputs,
    window: Mapping[str, Any],
) -> list[AlertDraft]:
    drafts: list[AlertDraft] = []
    drifted = drift.ranked if drift.checked else ()
    if drifted:
        detail = [drift[name] for name in drifted]
        shown = ", ".join(_drift_phrase(c) for c in detail[:5])
        more = f" and {len(detail) - 5} more" if len(detail) > 5 else ""
        prediction = drift.prediction
        drafts.append(
            AlertDraft(
                kind="data_drift",
                version=version,
                severity="critical" if drift.dataset_drift else "warning",
                message=(
                    f"model v{version}: {len(detail)} of {len(drift.features)} input feature(s) "
                    f"drifted from the training data: {shown}{more}"
                ),
                evidence={
                    "features": [c.to_dict() for c in detail],
                    "share_drifted": drift.share_drifted,
                    "dataset_drift": drift.dataset_drift,
                    "prediction": prediction.to_dict() if prediction else None,
                    "n_current": drift.n_current,
                    "window": dict(window),
                },
                key=tuple(drifted),
            )
        )
    if performance.assessed and performance.degraded:
        metric = performance.checked_metric
        evidence = {
            "metric": metric,
            "live": performance.live_value,
            "test": performance.reference_value,
            "interval": performance.intervals.get(metric) if metric else None,
            "drop": performance.drop,
            "tolerance": performance.tolerance,
            "n_labelled": performance.n_labelled,
            "drifted_features": list(drifted),
            "drift_checked": drift.checked,
            "window": dict(window),
        }
        change = (
            f"{metric} fell from {performance.reference_value:.4g} (test) to "
            f"{performance.live_value:.4g} on {performance.n_labelled} labelled predictions "
            f"(drop {performance.drop:.4g} > tolerance {performance.tolerance:g})"
        )
        drop = performance.drop or 0.0
        severity: AlertSeverity = "critical" if drop > 2 * performance.tolerance else "warning"
        if drift.checked and not drifted:
            drafts.append(
                AlertDraft(
                    kind="concept_drift",
                    version=version,
                    severity=severity,
                    message=(
                        f"model v{version}: concept drift: the inputs are stable (no feature "
                        f"drifted) but {change}: the relation between inputs and labels changed"
                    ),
                    evidence=evidence,
                    key=(str(metric),),
                )
            )
        else:
            why = (
                f"; {len(drifted)} input feature(s) drifted too, which likely explains it"
                if drifted
                else "; drift was not checked (window too small)"
            )
            drafts.append(
                AlertDraft(
                    kind="performance",
                    version=version,
                    severity=severity,
                    message=f"model v{version}: live performance dropped: {change}{why}",
                    evidence=evidence,
                    key=(str(metric),),
                )
            )
    if flagged.alarming:
        codes = ", ".join(
            f"{code} {share:.1%}" + _fields_of(code, flagged.by_field)
            for code, share in flagged.by_code.items()
        )
        drafts.append(
            AlertDraft(
                kind="flagged_inputs",
                version=version,
                severity="warning",
                message=(
                    f"model v{version}: {flagged.share:.1%} of {flagged.n_rows} answered inputs "
                    f"were flagged (threshold {flagged.threshold:.0%}): {codes}"
                ),
                evidence={**flagged.to_dict(), "window": dict(window)},
            )
        )
    return drafts


def _attribution(
    registry: ModelRegistry, record: ModelVersion, inputs: pd.DataFrame, spec: ProjectSpec
) -> AttributionDrift:
    """The attribution shares of the window's valid rows against the version's explanation."""
    threshold = spec.monitoring.attribution_shift
    version = record.version
    try:
        explanation = stored_explanation(registry, record)
    except StoreError as exc:
        return AttributionDrift(judged=False, reason=exc.what, threshold=threshold)
    features, _ = model_columns(record)
    # nothing to load when the shares cannot be judged anyway
    model = (
        registry.load_model(version)
        if explanation is not None and explanation.method != "permutation"
        and len(inputs) >= ATTRIBUTION_MIN_ROWS
        else None
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return attribution_drift(
            model, features, explanation, inputs, threshold=threshold, family=record.family,
            version=version, seed=spec.seed,
        )


def _attribution_drafts(
    version: int, attribution: AttributionDrift, window: Mapping[str, Any]
) -> list[AlertDraft]:
    """One ``attribution_drift`` alert naming the columns whose share moved too far."""
    moved = attribution.drifted
    if not moved:
        return []
    shown = ", ".join(
        f"{f.feature} {f.reference_share:.1%} -> {f.live_share:.1%} "
        f"(rank {f.reference_rank} -> {f.live_rank})"
        for f in moved[:5]
    )
    more = f" and {len(moved) - 5} more" if len(moved) > 5 else ""
    severity: AlertSeverity = (
        "critical" if attribution.largest_shift > 2 * attribution.threshold else "warning"
    )
    return [
        AlertDraft(
            kind="attribution_drift",
            version=version,
            severity=severity,
            message=(
                f"model v{version} leans on its inputs differently than at training: {shown}{more} "
                f"(share of the mean |attribution|; attribution_shift {attribution.threshold:g})"
            ),
            evidence={
                "features": [f.to_dict() for f in moved],
                "reference": attribution.reference_ranking(),
                "live": attribution.live_ranking(),
                "threshold": attribution.threshold,
                "method": attribution.method,
                "n_rows": attribution.n_rows,
                "window": dict(window),
            },
            key=tuple(f.feature for f in moved),
        )
    ]


def _fields_of(code: str, by_field: Mapping[str, float]) -> str:
    """`` (fields: plan 40.0%, region 5.0%)`` for a flag code, or nothing."""
    shown = [
        f"{item.split(':', 1)[1]} {share:.1%}"
        for item, share in sorted(by_field.items(), key=lambda kv: -kv[1])
        if item.startswith(code + ":")
    ]
    if not shown:
        return ""
    more = f" and {len(shown) - 5} more" if len(shown) > 5 else ""
    return f" (fields: {', '.join(shown[:5])}{more})"


def _drift_phrase(column: ColumnDrift) -> str:
    """A drifted column in an alert: its PSI, or for free text the test that flagged it."""
    if column.kind != "text":
        return f"{column.name} (PSI {column.psi:.2f})"
    shown = [
        f"{c.test} {c.statistic:.3g}" + (f", p={c.p_value:.2g}" if c.p_value is not None else "")
        for c in column.checks
        if c.drifted and c.statistic is not None
    ]
    return f"{column.name} (text: {'; '.join(shown) or column.test})"


def _verdict(
    drafts: Sequence[AlertDraft], drift: DriftReport, performance: LivePerformance
) -> str:
    kinds = {d.kind for d in drafts}
    for kind in (
        "acceptance_breach", "fairness_breach", "latency_breach", "concept_drift",
        "performance", "data_drift", "attribution_drift", "flagged_inputs",
    ):
        if kind in kinds:
            return kind
    if not drift.checked and not performance.assessed:
        return "insufficient_data"
    return "ok"
