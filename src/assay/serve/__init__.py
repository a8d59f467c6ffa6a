"""The serving stage: validated requests, hot-swapped models, a logged REST service.

Importing this package is cheap: each public name loads its module on first use, so
``import assay.serve`` pulls in neither pandas models nor the web framework.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "FastPathUnsupported",
    "FastPredictor",
    "LoadedModel",
    "ModelRuntime",
    "Prediction",
    "RecordIssue",
    "Routing",
    "ValidatedBatch",
    "compile_fast",
    "validate_records",
]

_LAZY: dict[str, str] = {
    "RecordIssue": "assay.model.validation",
    "ValidatedBatch": "assay.model.validation",
    "validate_records": "assay.model.validation",
    "LoadedModel": "assay.model.loaded",
    "ModelRuntime": "assay.serve.runtime",
    "Prediction": "assay.model.loaded",
    "Routing": "assay.serve.runtime",
    "FastPredictor": "assay.model.fastpath",
    "FastPathUnsupported": "assay.model.fastpath",
    "compile_fast": "assay.model.fastpath",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'assay.serve' has no attribute '{name}'")
    return getattr(importlib.import_module(module), name)
