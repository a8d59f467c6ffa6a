"""What every CLI command module shares: the common options, the consoles, opening a project."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console

if TYPE_CHECKING:
    from assay.project import Project
    from assay.registry import ModelRegistry

__all__ = ["ConfigOpt", "JsonOpt", "err_console", "open_project", "out_console"]

ConfigOpt = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="assay.yaml to use (default: found from the working folder)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def out_console() -> Console:
    """Standard output: results and tables."""
    return Console(highlight=False, soft_wrap=True)


def err_console() -> Console:
    """Standard error: progress, warnings and the one-line error."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def open_project(config: Path | None) -> tuple[Project, ModelRegistry]:
    """The project of ``config`` (default: found from the working folder) and its registry."""
    from assay.registry import open_registry
    from assay.project import Project

    project = Project.open(config)
    return project, open_registry(project)
