"""The model registry: runs, versions with lineage, champion/challenger aliases, the audit trail.

>>> from assay.store import Store
>>> from assay.registry import ModelRegistry
>>> registry = ModelRegistry(Store.open(project_root))    # doctest: +SKIP
>>> registry.promote(3, actor="ana", reason="beats v2", gate_passed=True)  # doctest: +SKIP
"""

from __future__ import annotations

from assay.registry.records import (
    MODEL_STATUSES,
    RUN_STATUSES,
    AuditRecord,
    Event,
    GateRecord,
    Lineage,
    ModelStatus,
    ModelVersion,
    Run,
    RunStatus,
    TestAccess,
)
from assay.registry.open import open_registry
from assay.registry.registry import CHALLENGER, CHAMPION, ModelRegistry, current_user

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "MODEL_STATUSES",
    "RUN_STATUSES",
    "AuditRecord",
    "Event",
    "GateRecord",
    "Lineage",
    "ModelRegistry",
    "ModelStatus",
    "ModelVersion",
    "Run",
    "RunStatus",
    "TestAccess",
    "current_user",
    "open_registry",
]
