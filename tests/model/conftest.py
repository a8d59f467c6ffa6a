"""The registered project the serving tests use, shared here: scoring a loaded model needs one."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any


def _load_serving_fixtures() -> Any:
    path = Path(__file__).resolve().parents[1] / "serve" / "conftest.py"
    name = "assay_tests_serving_fixtures"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


serving_template = _load_serving_fixtures().serving_template
