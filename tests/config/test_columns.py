"""The feature columns, defined once: every column but the ones with another role."""

from __future__ import annotations

import pandas as pd

from assay.audit.base import AuditContext
from assay.config import parse_spec
from assay.config.columns import feature_columns
from assay.data.dataset import Dataset

# frame order on purpose: the features keep it, whatever the order of the roles
COLUMNS = ["order_id", "placed_at", "amount", "store", "review", "refund", "customer", "churned"]


def _spec_dict() -> dict[str, object]:
    return {
        "task": "binary",
        "data": {
            "source": "orders.csv",
            "target": "churned",
            "id": "order_id",
            "time": "placed_at",
            "group": "customer",
            "text": "review",
            "drop": ["refund"],  # known only after the outcome: a leak the audit blocks
        },
    }


def test_each_role_is_excluded_and_the_rest_keep_the_frame_order() -> None:
    assert feature_columns(
        COLUMNS,
        target="churned",  # the answer
        id_column="order_id",  # unique per row: memorised, never generalises
        time_column="placed_at",  # orders the split; new rows lie outside its range
        group_column="customer",  # test groups are unseen by construction
        dropped=["refund"],  # data.drop: leaks and columns known too late
    ) == ["amount", "store", "review"]  # the text column stays a feature


def test_a_role_that_is_not_set_excludes_nothing() -> None:
    assert feature_columns(COLUMNS) == COLUMNS
    assert feature_columns(COLUMNS, target="churned") == COLUMNS[:-1]
    # a role naming a column the frame lacks changes nothing either
    assert feature_columns(COLUMNS, target="churned", dropped=["absent"]) == COLUMNS[:-1]


def test_the_spec_and_the_audit_see_the_same_features() -> None:
    spec = parse_spec(_spec_dict())
    rows = 4
    frame = pd.DataFrame(
        {
            "order_id": range(rows),
            "placed_at": pd.date_range("2024-01-01", periods=rows),
            "amount": [1.0, 2.0, 3.0, 4.0],
            "store": ["a", "b", "a", "b"],
            "review": ["fine", "slow", "great", "late"],
            "refund": [0, 1, 0, 1],
            "customer": ["x", "x", "y", "y"],
            "churned": [0, 1, 0, 1],
        }
    )
    expected = ["amount", "store", "review"]
    assert spec.feature_columns(frame.columns) == expected
    assert AuditContext.from_spec(Dataset.from_frame(frame), spec).features == expected
