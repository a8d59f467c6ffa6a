"""The framing document: assay.yaml, its validation, and drafting it from data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from assay.config.load import MIN_ROWS, check_spec_against_data, check_target, load_spec, parse_spec
from assay.config.metrics import (
    CLASSIFICATION_TASKS,
    DEFAULT_PRIMARY,
    HIGHER_IS_BETTER,
    TASK_METRICS,
    metrics_for,
)
from assay.config.spec import AcceptanceThreshold, ProjectSpec, parse_threshold

if TYPE_CHECKING:
    from assay.config.draft import Draft, draft_spec, infer_task, render_yaml

_DRAFT_NAMES = frozenset({"Draft", "draft_spec", "infer_task", "render_yaml"})


def __getattr__(name: str) -> Any:
    # drafting profiles data with pandas; loading a spec must not pay for that import
    if name in _DRAFT_NAMES:
        from assay.config import draft

        return getattr(draft, name)
    raise AttributeError(f"module 'assay.config' has no attribute {name!r}")

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
