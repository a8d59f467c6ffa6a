"""Opening a project's registry: the one place that turns ``store:`` in assay.yaml into a store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from assay.registry.registry import ModelRegistry
from assay.store.database import Store

if TYPE_CHECKING:
    from assay.project import Project

__all__ = ["open_registry"]


def open_registry(project: Project) -> ModelRegistry:
    """The registry of ``project``'s store (``.assay/`` unless ``store.url`` says otherwise).

    Runs left ``running`` by a process of this host that no longer exists (killed
    mid-run) are marked ``abandoned`` on the way, each with an audit-trail event.
    """
    spec = project.spec
    store = Store.open(root=project.root, url=spec.store.url, artifacts=spec.store.artifacts)
    registry = ModelRegistry(store)
    registry.abandon_dead_runs()
    return registry
