"""The built-in checks; importing this package registers them in ``CHECKS``."""

from __future__ import annotations

from assay.audit.checks import (  # noqa: F401
    codes,
    duplicates,
    fairness,
    proxy,
    quality,
    target,
    text,
)
