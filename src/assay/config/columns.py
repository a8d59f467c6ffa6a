"""Which columns a model learns from: the one definition of the feature columns.

Training (``assay run``, ``assay retrain``), the audit, the split's duplicate check and
drafting assay.yaml all ask the same question, "every column but the ones with another
role"; they all answer it here, so a model is never trained on a column the audit did
not look at, nor audited on one it is not trained on.

It lives in the ground floor and imports nothing (not even pandas), so the spec, the
stages and the orchestration above can all call it.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["feature_columns"]


def feature_columns(
    columns: Iterable[str],
    *,
    target: str | None = None,
    id_column: str | None = None,
    time_column: str | None = None,
    group_column: str | None = None,
    dropped: Iterable[str] = (),
) -> list[str]:
    """The feature columns of a frame with ``columns``, in the frame's order.

    Every column is a feature except those with another role (a role given as
    ``None`` excludes nothing):

    - ``target``: the answer; learning from it is the plainest leak.
    - ``id_column``: a row identifier (``data.id``), unique per row: a model memorises it
      and it carries nothing to new rows.
    - ``time_column``: the event time (``data.time``) orders a chronological split and
      windows drift; as a feature, every new row would lie outside the training range.
    - ``group_column``: a group's rows never straddle the split (``data.group``), so the
      test rows' groups are unseen; as a feature it would only memorise the training
      groups.
    - ``dropped``: ``data.drop``, the columns the framing excludes: a leak the audit
      blocks (a post-outcome column, a near copy of the target) is dropped there, as is
      anything known only after the prediction is needed.

    The free-text column (``data.text``) stays a feature: it is what text models read.
    """
    excluded = {target, id_column, time_column, group_column, *dropped}
    return [c for c in columns if c not in excluded]
