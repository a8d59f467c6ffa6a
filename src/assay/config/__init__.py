"""The framing document: assay.yaml, its validation, and drafting it from data."""

from __future__ import annotations

from assay.config.draft import Draft, draft_spec, infer_task, render_yaml
from assay.config.load import MIN_ROWS, check_spec_against_data, check_target, load_spec, parse_spec
from assay.config.metrics import (
    CLASSIFICATION_TASKS,
    DEFAULT_PRIMARY,
    HIGHER_IS_BETTER,
    TASK_METRICS,
    metrics_for,
)
from assay.config.spec import AcceptanceThreshold, ProjectSpec, parse_threshold

__all__ = [
    "AcceptanceThreshold",
    "CLASSIFICATION_TASKS",
    "DEFAULT_PRIMARY",
    "Draft",
    "HIGHER_IS_BETTER",
    "MIN_ROWS",
    "ProjectSpec",
    "TASK_METRICS",
    "check_spec_against_data",
    "check_target",
    "draft_spec",
    "infer_task",
    "load_spec",
    "metrics_for",
    "parse_spec",
    "parse_threshold",
    "render_yaml",
]
