"""Labelling: annotations from several annotators, their agreement, consensus labels, a
labelling queue ranked by what the model would learn, and labels merged back as data."""

from assay.label.annotations import ANNOTATION_COLUMNS, Annotations

__all__ = ["ANNOTATION_COLUMNS", "Annotations"]
