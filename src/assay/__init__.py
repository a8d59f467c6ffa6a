"""assay: from a framed problem to a monitored production model, every step guarded."""

from __future__ import annotations

from assay.errors import AssayError, ConfigError, DataError, GateFailed

__version__ = "0.1.0"

__all__ = ["AssayError", "ConfigError", "DataError", "GateFailed", "__version__"]
