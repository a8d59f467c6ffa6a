"""The user's path as library calls: what each CLI command does, minus the rendering."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from assay.audit.base import AuditReport
from assay.audit.runner import audit
from assay.config.draft import draft_spec
from assay.config.load import check_spec_against_data
from assay.data.dataset import load_dataset
from assay.project import Project

__all__ = ["audit_file", "audit_project"]

Progress = Callable[[str, int, int], None]


def audit_project(config: str | Path | None = None, *, progress: Progress | None = None) -> AuditReport:
    """Audit the data of the project whose assay.yaml is ``config``."""
    project = Project.open(config)
    dataset = project.load_data()
    return audit(dataset, project.spec, root=project.root, progress=progress)


def audit_file(
    data: str,
    *,
    target: str,
    task: str | None = None,
    time: str | None = None,
    protected: list[str] | None = None,
    query: str | None = None,
    progress: Progress | None = None,
) -> AuditReport:
    """Audit a file without a project: the framing is drafted from the data, as ``init`` would."""
    dataset = load_dataset(data, query=query, parse_dates=[time] if time else None)
    draft = draft_spec(
        dataset, source=data, target=target, task=task, time=time, protected=protected, query=query
    )
    check_spec_against_data(draft.spec, dataset.frame, origin=dataset.source)
    return audit(dataset, draft.spec, progress=progress)
