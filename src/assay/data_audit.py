"""The user's path as library calls: what each CLI command does, minus the rendering."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from collections.abc import Sequence

from assay.audit.base import AuditReport, Finding
from assay.audit.runner import audit
from assay.config.draft import draft_spec
from assay.config.load import check_spec_against_data
from assay.data.dataset import Dataset, load_dataset
from assay.errors import DataError
from assay.project import Project
from assay.registry.registry import current_user

__all__ = ["audit_file", "audit_project", "audit_project_data", "labelling_findings"]

Progress = Callable[[str, int, int], None]


def audit_project(
    config: str | Path | None = None,
    *,
    progress: Progress | None = None,
    accept: Sequence[str] = (),
) -> AuditReport:
    """Audit the data of the project whose assay.yaml is ``config``.

    ``accept`` names checks whose blocking findings the user goes on despite: they
    become warnings that say who accepted them.
    """
    project = Project.open(config)
    return audit_project_data(project, project.load_data(), progress=progress, accept=accept)


def audit_project_data(
    project: Project,
    dataset: Dataset,
    *,
    progress: Progress | None = None,
    accept: Sequence[str] = (),
) -> AuditReport:
    """The data checks on ``dataset``, plus what labelling found, with ``accept`` applied."""
    report = audit(dataset, project.spec, root=project.root, progress=progress)
    report = report.with_findings(labelling_findings(project, dataset))
    return report.accepting(accept, actor=current_user())


def labelling_findings(project: Project, dataset: Dataset) -> list[Finding]:
    """Findings about the annotations behind the labels, when the data carries imported ones.

    Agreement below ``labelling.min_agreement`` blocks; labels from one annotator only
    cannot be checked for agreement, which is a warning.
    """
    if dataset.label_version is None:
        return []
    from assay.label.findings import LABEL_AGREEMENT, agreement_finding
    from assay.label.intake import label_agreement

    try:
        report = label_agreement(project, n_boot=200)
    except DataError as exc:
        return [
            Finding(
                check=LABEL_AGREEMENT,
                severity="warn",
                columns=(),
                message=f"annotator agreement is not measured: {exc.what}",
                evidence={"label_version": dataset.label_version},
                fix="Have a second annotator label a pilot sample of the same items and "
                "import it, so agreement can be checked before labelling at scale.",
            )
        ]
    if report is None:
        return []
    finding = agreement_finding(report, project.spec.labelling.min_agreement)
    return [] if finding is None else [finding]


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
