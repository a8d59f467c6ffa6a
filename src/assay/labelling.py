"""``assay label queue`` and ``assay label plan``: the labelling stages over a project.

:func:`build_queue` takes the project's unlabelled rows (target empty) as the pool, scores
them with the current model (the champion, else the latest registered version), describes
them in a model-independent representation (:mod:`assay.label.represent`), stratifies by
predicted class and the ``slices`` columns, and chooses a batch with
:func:`assay.label.queue.select_batch`. With ``review=True`` it also lists labelled rows
whose label looks wrong (out-of-fold probabilities of the version's own configuration, then
cleanlab). Rows of the version's sealed test set are never queued and never listed for
review: choosing test rows by what the model finds hard would bias the test set.

:func:`build_plan` reads the version's learning curve (refitted on growing shares of the
training rows, or the one its search stored) and extrapolates it to the acceptance
threshold of the primary metric (:func:`assay.label.plan.label_plan`).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import clone

from assay.candidate import text_options
from assay.config.metrics import CLASSIFICATION_TASKS, HIGHER_IS_BETTER
from assay.data.dataset import Dataset
from assay.errors import ConfigError, DataError, NotFoundError
from assay.label.annotations import label_text
from assay.label.plan import LabelPlan, label_plan
from assay.label.queue import Diversity, Strategy, review_list, select_batch
from assay.label.represent import representation
from assay.label.tasks import label_studio_tasks
from assay.model.loaded import LoadedModel, pipeline_scores
from assay.project import Project
from assay.registry import ModelRegistry, ModelVersion
from assay.split import SplitPlan, make_splits
from assay.train.curves import train_size_curve
from assay.train.families import get_family
from assay.train.pipeline import fit_model
from assay.train.result import SearchResult
from assay.train.search import chosen_template

__all__ = [
    "CURVE_FRACTIONS",
    "PlanResult",
    "QueueResult",
    "build_plan",
    "build_queue",
    "current_version",
    "sealed_test_ids",
]

#: shares of the training rows the refitted learning curve is measured at
CURVE_FRACTIONS = (0.1, 0.2, 0.35, 0.5, 0.7, 1.0)
#: labelled rows used at most for the review list's out-of-fold probabilities
REVIEW_MAX_ROWS = 20_000
REVIEW_FOLDS = 5
CurveSource = Literal["auto", "refit", "stored"]


@dataclass(frozen=True)
class QueueResult:
    """The next rows to label, ranked, and (when asked) labels to review.

    Attributes:
        version: the model version that scored the pool.
        id_column: the item id column (assay.yaml ``data.id``).
        strategy, diversity: how the batch was chosen.
        pool_rows: unlabelled rows considered.
        test_rows_excluded: unlabelled rows left out because they are sealed test rows.
        items: one row per chosen item, rank order: the id, ``rank``, ``uncertainty``,
            ``predicted``, ``confidence``, ``stratum``, ``cluster``, ``reason`` and the
            data columns.
        data_columns: what an annotator sees of an item.
        floors: stratum -> rows its floor reserved.
        review: labelled rows whose label looks wrong (the id, ``rank``, ``given``,
            ``suggested``, ``given_probability``), or None when not asked for.
        review_checked: labelled rows the review looked at (0 when not asked for).
        review_estimated: cleanlab's estimate of wrong labels among them.
        warnings: what the user should know.
    """

    version: int
    id_column: str
    strategy: str
    diversity: str
    pool_rows: int
    test_rows_excluded: int
    items: pd.DataFrame
    data_columns: tuple[str, ...]
    floors: dict[str, int]
    review: pd.DataFrame | None = None
    review_checked: int = 0
    review_estimated: int | None = None
    warnings: tuple[str, ...] = ()

    def tasks(self) -> list[dict[str, Any]]:
        """The queue as Label Studio import tasks (the model's guess pre-filled)."""
        return label_studio_tasks(
            self.items,
            id_column=self.id_column,
            data_columns=self.data_columns,
            model_version=f"assay version {self.version}",
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "version": self.version,
            "id_column": self.id_column,
            "strategy": self.strategy,
            "diversity": self.diversity,
            "pool_rows": self.pool_rows,
            "test_rows_excluded": self.test_rows_excluded,
            "floors": dict(self.floors),
            "items": _records(self.items),
            "review": None if self.review is None else _records(self.review),
            "review_checked": self.review_checked,
            "review_estimated": self.review_estimated,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class PlanResult:
    """How many more labels the primary metric needs to reach its acceptance threshold.

    Attributes:
        version: the model version whose configuration the curve measures.
        family: its model family.
        threshold: the acceptance criterion as written (``>= 0.85``).
        source: ``refit`` (the configuration refitted on growing shares of the training
            rows, several seeds each) or ``stored`` (the curve the search recorded).
        plan: the extrapolation, in training rows.
        training_rows, labelled_rows: the split's training rows and all labelled rows.
        additional_labels: labels to add (training rows needed beyond the current ones,
            scaled by labelled rows per training row: the split gives new labels to
            validation and test in the same shares); None when unreachable.
        additional_interval: the same for the ends of the plan's interval.
        hours, hours_interval: annotator hours for them, with ``seconds_per_label``.
        seconds_per_label: annotator seconds per labelled item the hours use.
        seconds_from: where that came from: ``option`` (given), ``annotations`` (the
            median time the imported annotations record per item, every judgement of
            the item counted), or None (no hours).
    """

    version: int
    family: str
    threshold: str
    source: str
    plan: LabelPlan
    training_rows: int
    labelled_rows: int
    additional_labels: int | None
    additional_interval: tuple[int | None, int | None]
    hours: float | None = None
    hours_interval: tuple[float | None, float | None] = (None, None)
    seconds_per_label: float | None = None
    seconds_from: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "seconds_per_label": self.seconds_per_label,
            "seconds_from": self.seconds_from,
            "version": self.version,
            "family": self.family,
            "threshold": self.threshold,
            "source": self.source,
            "plan": self.plan.to_dict(),
            "training_rows": self.training_rows,
            "labelled_rows": self.labelled_rows,
            "additional_labels": self.additional_labels,
            "additional_interval": list(self.additional_interval),
            "hours": self.hours,
            "hours_interval": list(self.hours_interval),
        }


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    from assay.data.values import native

    return [
        {k: native(v, missing_as_none=True, iso_timestamps=True) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


# -- which version ----------------------------------------------------------------------


def current_version(registry: ModelRegistry, version: int | None = None) -> ModelVersion:
    """``version``, else the champion, else the latest registered version.

    Raises:
        NotFoundError: no version is registered (or ``version`` does not exist).
    """
    if version is not None:
        return registry.get(version)
    champion = registry.champion()
    if champion is not None:
        return champion
    versions = registry.list()
    if not versions:
        raise NotFoundError(
            "no model version is registered, so there is no model to rank rows with",
            where="model registry",
            expected="a registered version (the champion, else the latest)",
            fix="Train one first: run `assay run`.",
        )
    return max(versions, key=lambda v: v.version)


def sealed_test_ids(
    registry: ModelRegistry, record: ModelVersion, dataset: Dataset, id_column: str
) -> tuple[set[str], str | None]:
    """The ids (as text) of the rows in ``record``'s sealed test set, and a warning if any.

    The stored split plan records test rows as positions into the data the version was
    trained on. They are read by id from that data when it is the current data (or the
    data snapshot a retrain stored). When labels were merged in since, the rows kept their
    place, so the positions are read from the current data when it has as many rows as the
    split saw; otherwise the test rows cannot be named and a warning says so.
    """
    digest = record.lineage.split_digest
    if not digest:
        return set(), (
            f"version {record.version} has no stored split plan: its test rows are unknown"
        )
    plan = SplitPlan.from_dict(registry.load_json(digest))
    test = plan.test
    frame: pd.DataFrame | None = None
    note: str | None = None
    if record.lineage.training_data:
        frame = pd.read_parquet(
            io.BytesIO(registry.store.artifacts.get_bytes(record.lineage.training_data))
        )
    elif dataset.version == record.data_version:
        frame = dataset.frame
    elif sum(int(v) for v in plan.sizes.values()) == len(dataset.frame):
        frame = dataset.frame
        note = (
            f"the data changed since version {record.version} was trained; its sealed test rows "
            "are taken by position (the rows kept their order)"
        )
    if frame is None or id_column not in frame.columns or (len(test) and test.max() >= len(frame)):
        return set(), (
            f"the sealed test rows of version {record.version} cannot be found in the current "
            "data (it has other rows now); run `assay run` to train on the current data"
        )
    return {label_text(v) for v in frame[id_column].iloc[test]}, note


# -- the queue --------------------------------------------------------------------------


def build_queue(
    project: Project,
    registry: ModelRegistry,
    budget: int,
    *,
    strategy: Strategy = "margin",
    diversity: Diversity = "kmeans",
    share_floor: float = 0.1,
    review: bool = False,
    version: int | None = None,
) -> QueueResult:
    """Rank the project's unlabelled rows by what the current model would learn from them.

    Raises:
        ConfigError: no ``data.id``, a budget below 1, a task without classes.
        NotFoundError: no registered version ("run `assay run` first").
        DataError: no unlabelled rows, repeated ids, columns the model needs are missing.
    """
    spec = project.spec
    _check_budget(budget)
    id_column = _id_column(project)
    if spec.task not in CLASSIFICATION_TASKS:
        raise ConfigError(
            f"the labelling queue ranks rows by class probabilities; a {spec.task} model has none",
            key="task",
            expected=", ".join(sorted(CLASSIFICATION_TASKS)),
            received=spec.task,
            fix="Rank regression rows by another rule (e.g. a random sample).",
        )
    record = current_version(registry, version)
    dataset = project.load_data()
    frame = dataset.frame
    _check_unique_ids(frame, id_column, project)
    target = spec.data.target
    unlabelled = frame[target].isna().to_numpy()
    if not unlabelled.any():
        raise DataError(
            f"there are no unlabelled rows to queue: every row has a value in '{target}'",
            path=project.data_label,
            column=target,
            fix=f"Add the rows to label to the data with '{target}' left empty.",
        )
    warnings: list[str] = []
    test_ids, note = sealed_test_ids(registry, record, dataset, id_column)
    if note:
        warnings.append(note)
    ids = frame[id_column].map(label_text)
    in_test = ids.isin(test_ids).to_numpy()
    pool_mask = unlabelled & ~in_test
    excluded = int((unlabelled & in_test).sum())
    if not pool_mask.any():
        raise DataError(
            f"every unlabelled row is in the sealed test set of version {record.version}",
            path=project.data_label,
            column=target,
            fix="Add new rows to label; test rows are labelled outside the queue.",
        )
    pool = frame.loc[pool_mask].reset_index(drop=True)

    loaded = LoadedModel.load(registry, record.version)
    _check_features(loaded, pool, project)
    _, proba = pipeline_scores(loaded.model, pool[loaded.features], classification=True)
    proba = np.asarray(proba, dtype=np.float64)
    classes = _model_classes(loaded)
    predicted = np.asarray([classes[i] for i in proba.argmax(axis=1)], dtype=object)
    text_column = loaded.text_column if spec.task == "text-classification" else None
    rep = representation(pool, loaded.features, text_column=text_column, seed=spec.seed)
    strata = pd.DataFrame({"predicted": predicted})
    for column in spec.slices:
        if column in pool.columns:
            strata[column] = pool[column].to_numpy()
    selection = select_batch(
        proba, rep, budget, strata=strata, strategy=strategy, diversity=diversity,
        share_floor=share_floor, seed=spec.seed,
    )
    chosen = selection.positions
    data_columns = _data_columns(loaded, spec.slices, text_column, pool)
    items = pd.DataFrame(
        {
            id_column: pool[id_column].iloc[chosen].to_numpy(),
            "rank": np.arange(1, len(chosen) + 1),
            "uncertainty": np.round(selection.scores, 6),
            "predicted": predicted[chosen],
            "confidence": np.round(proba[chosen].max(axis=1), 6),
            "stratum": list(selection.strata),
            "cluster": selection.clusters,
            "reason": list(selection.reasons),
        }
    )
    for column in data_columns:
        if column != id_column:
            items[column] = pool[column].iloc[chosen].to_numpy()
    if budget > int(pool_mask.sum()):
        warnings.append(
            f"the budget ({budget}) exceeds the unlabelled rows ({int(pool_mask.sum())}): "
            "every one is queued"
        )
    result = QueueResult(
        version=record.version, id_column=id_column, strategy=strategy, diversity=diversity,
        pool_rows=int(pool_mask.sum()), test_rows_excluded=excluded, items=items,
        data_columns=tuple(data_columns), floors=dict(selection.floors),
        warnings=tuple(warnings),
    )
    if not review:
        return result
    listed, checked, estimated = _review(
        project, registry, record, dataset, ~unlabelled & ~in_test, id_column, loaded
    )
    return replace(result, review=listed, review_checked=checked, review_estimated=estimated)


def _check_budget(budget: int) -> None:
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ConfigError(
            "the labelling budget must be a whole number of rows, at least 1",
            key="--budget",
            expected="an integer >= 1",
            received=repr(budget),
            fix="Pass --budget N with N >= 1.",
        )


def _id_column(project: Project) -> str:
    id_column = project.spec.data.id
    if id_column is None:
        raise ConfigError(
            "labelling names every item by its id, and assay.yaml names no id column",
            key="data.id",
            expected="a column with a unique value per row",
            fix=(
                f"Add 'id: <column>' under data in {project.config_path.name} (add an id "
                "column to the data if it has none)."
            ),
        )
    return id_column


def _check_unique_ids(frame: pd.DataFrame, id_column: str, project: Project) -> None:
    ids = frame[id_column]
    repeated = ids[ids.duplicated(keep=False) | ids.isna()]
    if not repeated.empty:
        shown = ", ".join(sorted({label_text(v) for v in repeated.head(50)})[:5])
        raise DataError(
            "item ids must name one row each",
            path=project.data_label,
            column=id_column,
            expected="unique, non-empty ids",
            received=f"{len(repeated)} rows with a repeated or empty id, e.g. {shown}",
            fix=f"Make '{id_column}' unique (it is assay.yaml data.id).",
        )


def _check_features(loaded: LoadedModel, frame: pd.DataFrame, project: Project) -> None:
    missing = [f for f in loaded.features if f not in frame.columns]
    if missing:
        raise DataError(
            f"the data lacks columns model version {loaded.version} reads",
            path=project.data_label,
            column=missing[0],
            expected="columns: " + ", ".join(loaded.features[:20]),
            received="missing: " + ", ".join(missing[:20]),
            fix="Restore the columns, or run `assay run` to train on the current data.",
        )


def _model_classes(loaded: LoadedModel) -> list[str]:
    """The class of each probability column, as text (the estimator's own order)."""
    order = getattr(loaded.model, "classes_", None)
    if order is None:
        order = loaded.classes or []
    return [label_text(c) for c in order]


def _data_columns(
    loaded: LoadedModel, slices: list[str], text_column: str | None, pool: pd.DataFrame
) -> list[str]:
    base = [text_column] if text_column else list(loaded.features)
    return list(dict.fromkeys([*base, *(c for c in slices if c in pool.columns)]))


def _review(
    project: Project,
    registry: ModelRegistry,
    record: ModelVersion,
    dataset: Dataset,
    mask: np.ndarray,
    id_column: str,
    loaded: LoadedModel,
) -> tuple[pd.DataFrame, int, int]:
    """Labelled, non-test rows whose label cleanlab finds implausible, least plausible first."""
    from sklearn.model_selection import StratifiedKFold

    spec = project.spec
    target = spec.data.target
    rows = dataset.frame.loc[mask].reset_index(drop=True)
    if len(rows) > REVIEW_MAX_ROWS:
        rng = np.random.default_rng(spec.seed)
        rows = rows.iloc[np.sort(rng.choice(len(rows), REVIEW_MAX_ROWS, replace=False))]
        rows = rows.reset_index(drop=True)
    labels = rows[target].map(label_text)
    counts = labels.value_counts()
    kept = labels.isin(counts[counts >= REVIEW_FOLDS].index).to_numpy()
    rows, labels = rows.loc[kept].reset_index(drop=True), labels[kept].reset_index(drop=True)
    classes = sorted(pd.unique(labels))
    empty = pd.DataFrame(
        columns=[id_column, "rank", "given", "suggested", "given_probability"]
    )
    if len(classes) < 2 or len(rows) < 2 * REVIEW_FOLDS:
        return empty, int(len(rows)), 0
    codes = pd.Categorical(labels, categories=classes).codes.astype(np.int64)
    y = rows[target].to_numpy()
    X, template = _review_model(project, registry, record, dataset, rows, loaded.features)
    proba = np.zeros((len(rows), len(classes)))
    folds = StratifiedKFold(n_splits=REVIEW_FOLDS, shuffle=True, random_state=spec.seed)
    for fit_idx, score_idx in folds.split(np.zeros(len(rows)), codes):
        model = fit_model(clone(template), _take(X, fit_idx), y[fit_idx])
        fold_classes = [label_text(c) for c in model.classes_]
        scored = np.asarray(model.predict_proba(_take(X, score_idx)))
        for j, name in enumerate(fold_classes):
            proba[score_idx, classes.index(name)] = scored[:, j]
    found = review_list(codes, proba)
    frame = found.to_frame(classes)
    frame.insert(0, id_column, rows[id_column].iloc[found.positions].to_numpy())
    frame["given_probability"] = frame["given_probability"].round(6)
    return frame.drop(columns="position"), int(len(rows)), found.estimated_errors


def _take(X: Any, idx: np.ndarray) -> Any:
    return X.iloc[idx] if hasattr(X, "iloc") else X[idx]


def _review_model(
    project: Project,
    registry: ModelRegistry,
    record: ModelVersion,
    dataset: Dataset,
    rows: pd.DataFrame,
    features: list[str],
) -> tuple[Any, Any]:
    """The inputs and an unfitted model for out-of-fold probabilities: the version's own
    configuration when it is cheap to refit, else logistic regression on the representation."""
    spec = project.spec
    template = _cheap_template(project, registry, record, dataset)
    if template is not None:
        return rows[features], template
    from sklearn.linear_model import LogisticRegression

    text_column = record.lineage.text_column if spec.task == "text-classification" else None
    rep = representation(rows, features, text_column=text_column, dims=64, seed=spec.seed)
    return rep, LogisticRegression(max_iter=1000)


def _cheap_template(
    project: Project,
    registry: ModelRegistry,
    record: ModelVersion,
    dataset: Dataset,
) -> Any | None:
    """The version's chosen configuration, unfitted, when every family in it is cheap to
    refit (cross-validated by the search); None otherwise or without a stored search."""
    digest = record.lineage.search
    if not digest:
        return None
    search = SearchResult.from_dict(registry.load_json(digest))
    families = (
        [m.family for m in search.ensemble.members] if search.ensemble else [search.best_family]
    )
    try:
        if not all(get_family(f).cross_validated for f in families):
            return None
    except Exception:  # noqa: BLE001 - a family this install does not know: no refit
        return None
    features = list(record.lineage.features)
    if not features or any(f not in dataset.schema for f in features):
        return None
    return chosen_template(
        search, schema=dataset.schema, features=features,
        text_column=record.lineage.text_column, text=text_options(project.spec, project.root),
    )


# -- the plan ---------------------------------------------------------------------------


def build_plan(
    project: Project,
    registry: ModelRegistry,
    *,
    version: int | None = None,
    source: CurveSource = "auto",
    seconds_per_label: float | None = None,
    repeats: int = 3,
    n_boot: int = 200,
) -> PlanResult:
    """Extrapolate the current version's learning curve to the acceptance threshold.

    Args:
        source: ``refit`` the version's configuration on growing shares of the training
            rows (``repeats`` seeds per share), use the curve its search ``stored``, or
            ``auto``: refit when every family of the version is cheap to refit, else stored.
        seconds_per_label: annotator time per label, for an estimate of the hours.

    Raises:
        ConfigError: no acceptance threshold on the primary metric.
        NotFoundError: no registered version ("run `assay run` first").
        DataError: no usable learning curve.
    """
    spec = project.spec
    metric = spec.primary_metric
    threshold = spec.thresholds.get(metric)
    if threshold is None:
        raise ConfigError(
            f"the label plan extrapolates to the acceptance threshold of the primary metric "
            f"{metric}, and assay.yaml sets none",
            key=f"acceptance.{metric}",
            expected=f"e.g. acceptance: {{{metric}: '{'>=' if HIGHER_IS_BETTER[metric] else '<='} "
            f"{0.85 if HIGHER_IS_BETTER[metric] else 1.0}'}}",
            fix=f"Set acceptance.{metric} in {project.config_path.name}.",
        )
    if seconds_per_label is not None and not (
        math.isfinite(seconds_per_label) and seconds_per_label > 0
    ):
        raise ConfigError(
            "the time per label must be a positive number of seconds",
            key="--seconds-per-label",
            received=seconds_per_label,
        )
    record = current_version(registry, version)
    greater = HIGHER_IS_BETTER[metric]
    dataset = project.load_data()
    template = None
    if source in ("auto", "refit"):
        template = _cheap_template(project, registry, record, dataset)
        if template is None and source == "refit":
            raise DataError(
                f"the configuration of version {record.version} ({record.family}) is too costly "
                "to refit for a learning curve, or has no stored search",
                where=f"model version {record.version}",
                fix="Use the stored curve (source 'stored').",
            )
    scores: list[float] | list[list[float]]
    if template is not None:
        sizes, scores, n_train, n_labelled = _refit_curve(
            project, dataset, template, record, metric, repeats
        )
        used = "refit"
    else:
        sizes, scores, n_train, n_labelled = _stored_curve(registry, record, metric)
        used = "stored"
    plan = label_plan(
        sizes, scores, threshold.value, greater_is_better=greater, n_boot=n_boot,
        seed=spec.seed, best_possible=1.0 if greater else 0.0, metric=metric,
    )
    per_row = n_labelled / max(n_train, 1)

    def more(rows: int | None) -> int | None:
        if rows is None:
            return None
        return int(math.ceil(max(rows - plan.current_rows, 0) * per_row - 1e-9))

    additional = more(plan.rows_needed) if plan.status != "met" else 0
    interval = (more(plan.interval[0]), more(plan.interval[1]))
    hours: float | None = None
    hours_interval: tuple[float | None, float | None] = (None, None)
    seconds_from: str | None = "option" if seconds_per_label is not None else None
    if seconds_per_label is None:
        seconds_per_label = _stored_seconds_per_item(registry)
        seconds_from = None if seconds_per_label is None else "annotations"
    if seconds_per_label is not None:
        def to_hours(n: int | None) -> float | None:
            return None if n is None else round(n * seconds_per_label / 3600.0, 2)

        hours, hours_interval = to_hours(additional), (to_hours(interval[0]), to_hours(interval[1]))
    return PlanResult(
        version=record.version, family=record.family, threshold=str(threshold), source=used,
        plan=plan, training_rows=n_train, labelled_rows=n_labelled,
        additional_labels=additional, additional_interval=interval, hours=hours,
        hours_interval=hours_interval, seconds_per_label=seconds_per_label,
        seconds_from=seconds_from,
    )


def _stored_seconds_per_item(registry: ModelRegistry) -> float | None:
    """The median annotator seconds an imported item took, all its judgements summed.

    Only items whose every judgement records its time count; None when there are none.
    """
    from assay.registry.labels import LabelStore

    rows = LabelStore(registry.store).annotation_rows()
    if rows.empty:
        return None
    spent = pd.to_numeric(rows["time_spent"], errors="coerce")
    timed = spent.notna().groupby(rows["item_id"]).all()
    per_item = spent.groupby(rows["item_id"]).sum()[timed]
    per_item = per_item[per_item > 0]
    return None if per_item.empty else float(per_item.median())


def _refit_curve(
    project: Project,
    dataset: Dataset,
    template: Any,
    record: ModelVersion,
    metric: str,
    repeats: int,
) -> tuple[list[float], list[list[float]], int, int]:
    """The configuration fitted on growing shares of the current training rows, several
    seeds per share, scored on the validation rows (the split the project's runs make)."""
    spec = project.spec
    features = list(record.lineage.features) or spec.feature_columns(dataset.frame.columns)
    plan = make_splits(dataset.frame, spec, data_version=dataset.version, features=features)
    train, val = plan.take(dataset.frame, "train"), plan.take(dataset.frame, "validation")
    target = spec.data.target
    by_size: dict[float, list[float]] = {}
    for r in range(max(1, repeats)):
        curve = train_size_curve(
            template, train[features], train[target].to_numpy(), val[features],
            val[target].to_numpy(), metric=metric, fractions=CURVE_FRACTIONS, seed=spec.seed + r,
        )
        for step, value in zip(curve.steps, curve.validation):
            by_size.setdefault(step, []).append(value)
    sizes = sorted(by_size)
    labelled = int(plan.sizes["train"] + plan.sizes["validation"] + plan.sizes["test"])
    return sizes, [by_size[s] for s in sizes], int(plan.sizes["train"]), labelled


def _stored_curve(
    registry: ModelRegistry, record: ModelVersion, metric: str
) -> tuple[list[float], list[float], int, int]:
    """The training-size curve the version's search recorded, on the primary metric."""
    curve = None
    if record.lineage.search:
        curve = SearchResult.from_dict(registry.load_json(record.lineage.search)).curve
    if curve is None or curve.kind != "train_size" or curve.metric != metric:
        kind = "none" if curve is None else f"a {curve.kind} curve of {curve.metric}"
        raise DataError(
            f"version {record.version} has no stored training-size curve of {metric} to "
            "extrapolate",
            where=f"model version {record.version}",
            expected=f"a train_size curve of {metric}",
            received=kind,
            fix="Refit the curve (source 'refit') with a family that is cheap to refit.",
        )
    sizes = (record.lineage.split or {}).get("sizes", {})
    n_train = int(sizes.get("train", max(curve.steps)))
    labelled = int(sum(int(sizes.get(k, 0)) for k in ("train", "validation", "test"))) or n_train
    return list(curve.steps), list(curve.validation), n_train, labelled
