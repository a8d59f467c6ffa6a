"""The data audit: checks that find what would sink a model before it is trained."""

from __future__ import annotations

from assay.audit.base import CHECKS, AuditContext, AuditReport, BaseCheck, Finding, Severity
from assay.audit.runner import audit, run_audit

__all__ = ["CHECKS", "AuditContext", "AuditReport", "BaseCheck", "Finding", "Severity", "audit", "run_audit"]
