"""Labelling: annotations from several annotators, their agreement, consensus labels, a
labelling queue ranked by what the model would learn, and labels merged back as data."""

from assay.label.agreement import AgreementReport, agreement_report
from assay.label.annotations import ANNOTATION_COLUMNS, Annotations
from assay.label.consensus import (
    Consensus,
    ConsensusMethod,
    DawidSkeneModel,
    consensus_labels,
    dawid_skene,
    majority_vote,
)

__all__ = [
    "ANNOTATION_COLUMNS",
    "AgreementReport",
    "Annotations",
    "Consensus",
    "ConsensusMethod",
    "DawidSkeneModel",
    "agreement_report",
    "consensus_labels",
    "dawid_skene",
    "majority_vote",
]
