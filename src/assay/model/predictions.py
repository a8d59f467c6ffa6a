"""The prediction log, read side: what the server logged, as a frame.

The server writes the ``predictions`` table (:mod:`assay.serve.log`); monitoring,
retraining and the CLI read it back through :func:`read_predictions`, one row per
prediction with its latest feedback label and the request's input fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import func, select

from assay.errors import ConfigError
from assay.store.database import Store, as_utc
from assay.store.tables import feedback, predictions

__all__ = ["LOG_COLUMNS", "ROUTES", "read_predictions"]

#: The routes a logged prediction can take: answered by the champion, by a canary
#: challenger, scored in shadow, or scored by ``assay predict`` (batch).
ROUTES = ("champion", "canary", "shadow", "batch")

#: Columns of :func:`read_predictions` before the expanded input fields.
LOG_COLUMNS = (
    "id", "at", "version", "route", "request_id", "prediction", "probabilities",
    "confidence", "latency_ms", "flags", "label",
)  # fmt: skip


def read_predictions(
    store: Store,
    *,
    since: datetime | None = None,
    version: int | None = None,
    route: str | Sequence[str] | None = None,
    limit: int | None = None,
    shadowed_by: int | None = None,
) -> pd.DataFrame:
    """The logged predictions as a frame, oldest first, one row per prediction.

    Columns: :data:`LOG_COLUMNS` (``at`` as UTC timestamps; ``label`` the latest
    feedback label, None without feedback) followed by one column per input field,
    in order of first appearance. An input field whose name is one of the log
    columns appears as ``input.<name>``. ``frame.attrs["input_columns"]`` lists the
    input columns.

    Args:
        since: only predictions at or after this time (a naive time is read as UTC).
        version: only this model version.
        route: only this route (``champion``, ``canary``, ``shadow``, ``batch``), or
            these routes.
        limit: only the newest ``limit`` predictions (still returned oldest first).
        shadowed_by: only champion answers the server also scored with this challenger
            version in shadow mode.
    """
    routes = None if route is None else ([route] if isinstance(route, str) else list(route))
    for name in routes or []:
        if name not in ROUTES:
            raise ConfigError(
                "unknown prediction route",
                key="route",
                expected="one of: " + ", ".join(ROUTES),
                received=name,
                fix="Pass one of the routes, or None for all.",
            )
    if limit is not None and limit < 0:
        raise ConfigError(
            "the prediction limit must not be negative",
            key="limit",
            expected="an integer >= 0 or None",
            received=limit,
        )
    latest = (
        select(func.max(feedback.c.id).label("fid")).group_by(feedback.c.prediction_id).subquery()
    )
    labels = (
        select(feedback.c.prediction_id, feedback.c.label)
        .join(latest, feedback.c.id == latest.c.fid)
        .subquery()
    )
    query = select(
        predictions.c.id,
        predictions.c.at,
        predictions.c.version,
        predictions.c.route,
        predictions.c.request_id,
        predictions.c.prediction,
        predictions.c.probabilities,
        predictions.c.confidence,
        predictions.c.latency_ms,
        predictions.c.flags,
        labels.c.label,
        predictions.c.inputs,
    ).outerjoin(labels, labels.c.prediction_id == predictions.c.id)
    if since is not None:
        query = query.where(predictions.c.at >= as_utc(since))
    if version is not None:
        query = query.where(predictions.c.version == int(version))
    if routes is not None:
        query = query.where(predictions.c.route.in_(routes))
    if shadowed_by is not None:
        query = query.where(predictions.c.shadowed_by == int(shadowed_by))
    query = query.order_by(predictions.c.at.desc(), predictions.c.id.desc())
    if limit is not None:
        query = query.limit(int(limit))
    with store.connect() as conn:
        rows = list(conn.execute(query))
    rows.reverse()
    return _frame(rows)


def _frame(rows: list[Any]) -> pd.DataFrame:
    inputs = [row.inputs if isinstance(row.inputs, dict) else {} for row in rows]
    names: dict[str, None] = {}
    for record in inputs:
        names.update(dict.fromkeys(record))
    rename = {name: (f"input.{name}" if name in LOG_COLUMNS else name) for name in names}
    data: dict[str, Any] = {
        "id": [row.id for row in rows],
        "at": pd.to_datetime([as_utc(row.at) for row in rows], utc=True),
        "version": pd.array([int(row.version) for row in rows], dtype="int64"),
        "route": [row.route for row in rows],
        "request_id": [row.request_id for row in rows],
        "prediction": [row.prediction for row in rows],
        "probabilities": [row.probabilities for row in rows],
        "confidence": pd.array(
            [float("nan") if row.confidence is None else row.confidence for row in rows],
            dtype="float64",
        ),
        "latency_ms": pd.array([float(row.latency_ms) for row in rows], dtype="float64"),
        "flags": [list(row.flags or []) for row in rows],
        "label": [row.label for row in rows],
    }
    frame = pd.DataFrame(data, columns=list(LOG_COLUMNS))
    if names:
        expanded = pd.DataFrame.from_records(inputs, columns=list(names))
        expanded = expanded.rename(columns=rename)
        frame = pd.concat([frame, expanded.set_index(frame.index)], axis=1)
    frame.attrs["input_columns"] = list(rename.values())
    return frame
