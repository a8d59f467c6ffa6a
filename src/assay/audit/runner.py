"""Running the registered checks over a data set: ``run_audit``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

from assay.audit import checks as _checks  # noqa: F401 - registers the checks
from assay.audit.base import CHECKS, SEVERITY_ORDER, AuditContext, AuditReport, Finding

if TYPE_CHECKING:
    from pathlib import Path

    from assay.config.spec import ProjectSpec
    from assay.data.dataset import Dataset

__all__ = ["audit", "run_audit"]

Progress = Callable[[str, int, int], None]


def run_audit(
    ctx: AuditContext,
    *,
    skip: tuple[str, ...] | list[str] = (),
    only: tuple[str, ...] | list[str] | None = None,
    progress: Progress | None = None,
) -> AuditReport:
    """Run every registered check (minus ``skip``, or just ``only``) on ``ctx``.

    ``progress(check_name, index, total)`` is called before each check. A check that
    raises does not stop the audit: it yields a ``warn`` finding saying it could not run.
    """
    for name in [*skip, *(only or [])]:
        CHECKS.get(name, key="audit.skip")
    names = [n for n in CHECKS.names() if n not in skip and (only is None or n in only)]
    findings: list[Finding] = []
    seconds: dict[str, float] = {}
    ran: list[str] = []
    for i, name in enumerate(names):
        if progress is not None:
            progress(name, i, len(names))
        check = CHECKS.get(name)()
        start = time.perf_counter()
        if check.applies(ctx):
            ran.append(name)
            try:
                findings.extend(check.run(ctx))
            except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
                findings.append(
                    Finding(
                        check=name,
                        severity="warn",
                        columns=(),
                        message=f"the check could not run: {type(exc).__name__}: {exc}",
                        evidence={},
                        fix="Report this with the data's schema; the other checks are unaffected.",
                    )
                )
        seconds[name] = time.perf_counter() - start
    findings.sort(key=lambda f: (SEVERITY_ORDER[f.severity], f.check, f.columns))
    return AuditReport(
        data_version=ctx.dataset.version,
        rows=ctx.dataset.n_rows,
        columns=ctx.dataset.n_columns,
        findings=tuple(findings),
        source=ctx.dataset.source,
        checks_run=tuple(ran),
        seconds=seconds,
    )


def audit(
    dataset: Dataset,
    spec: ProjectSpec,
    *,
    root: Path | None = None,
    progress: Progress | None = None,
) -> AuditReport:
    """Audit ``dataset`` with the column roles and settings of ``spec``.

    ``root`` is the project folder: a relative ``model.base`` is read from there.
    """
    return run_audit(
        AuditContext.from_spec(dataset, spec, root=root),
        skip=tuple(spec.audit.skip),
        progress=progress,
    )
