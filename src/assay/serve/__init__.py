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
    "RecordIssue": "assay.serve.validation",
    "ValidatedBatch": "assay.serve.validation",
    "validate_records": "assay.serve.validation",
    "LoadedModel": "assay.serve.runtime",
    "ModelRuntime": "assay.serve.runtime",
    "Prediction": "assay.serve.runtime",
    "Routing": "assay.serve.runtime",
    "FastPredictor": "assay.serve.fastpath",
    "FastPathUnsupported": "assay.serve.fastpath",
    "compile_fast": "assay.serve.fastpath",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'assay.serve' has no attribute '{name}'")
    return getattr(importlib.import_module(module), name)
