"""What labelling tells the data audit: annotators who agree too little to train on."""

from __future__ import annotations

from assay.audit.base import Finding
from assay.label.agreement import AgreementReport

__all__ = ["LABEL_AGREEMENT", "agreement_finding"]

LABEL_AGREEMENT = "label_agreement"


def agreement_finding(report: AgreementReport, min_agreement: float) -> Finding | None:
    """A blocking finding when Krippendorff's alpha is below ``labelling.min_agreement``.

    The evidence names the classes annotators use least alike and the annotators far from
    the consensus, which is where clearer guidelines or re-annotation pay off. An alpha
    that cannot be computed (every item judged once) blocks too: agreement is unknown.
    """
    if report.passed(min_agreement):
        return None
    alpha = report.krippendorff
    weakest = sorted(report.per_class, key=lambda c: c.specific_agreement)[:3]
    classes = ", ".join(f"{c.label} ({c.specific_agreement:.2f})" for c in weakest)
    outliers = ", ".join(o.annotator for o in report.outliers)
    level = "ordinal" if report.ordered else "nominal"
    if alpha.value == alpha.value:  # not NaN
        said = (
            f"annotators agree too little: Krippendorff's alpha ({level}) is {alpha.value:.3f} "
            f"[{alpha.low:.3f}, {alpha.high:.3f}] on {alpha.n_items:,} items, below "
            f"labelling.min_agreement {min_agreement:g}"
        )
    else:
        said = "annotators' agreement is unknown: no item was judged by two annotators"
    fix = (
        f"Clarify the guidelines for the classes used least alike ({classes})"
        + (f", coach or re-check the annotators far from the consensus ({outliers})" if outliers else "")
        + ", re-annotate the disputed items ('assay label agreement' lists them), then import "
        "again; or run with --accept label_agreement to train on these labels anyway."
    )
    return Finding(
        check=LABEL_AGREEMENT,
        severity="block",
        columns=(),
        message=said,
        evidence={
            "alpha": _number(alpha.value),
            "interval": [_number(alpha.low), _number(alpha.high)],
            "min_agreement": min_agreement,
            "level": level,
            "items": alpha.n_items,
            "annotators": report.n_annotators,
            "weakest_classes": [c.label for c in weakest],
            "outliers": [o.annotator for o in report.outliers],
        },
        fix=fix,
    )


def _number(value: float) -> float | None:
    """A rounded figure for the evidence, None when undefined (NaN)."""
    return None if value != value else round(float(value), 4)
