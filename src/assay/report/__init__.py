"""The report stage: a self-contained HTML report and a model card per model version.

The renderers read plain dicts (the ``to_dict()`` forms of the stage results,
bundled in :class:`ReportInput`), so they work the same on a fresh run and on
records read back from the store.
"""

from __future__ import annotations

from assay.report.card import render_model_card
from assay.report.html import render_html, write_report
from assay.report.inputs import ReportInput
from assay.report.sections import SECTIONS

__all__ = ["SECTIONS", "ReportInput", "render_html", "render_model_card", "write_report"]
