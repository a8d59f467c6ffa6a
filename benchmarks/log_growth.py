"""How much 25 logged predictions carrying an 8 MB string grow the store database.

Run: PYTHONPATH=src python benchmarks/log_growth.py [requests] [megabytes]

Each request is one record with a known field and an unknown 8 MB field, logged the way
the server logs it (PredictionLog.append, then the drain). Prints the database size
before and after, SQLite's own WAL folded in by a checkpoint.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from assay.serve.log import LogEntry, PredictionLog, new_prediction_id
from assay.store import Store


def _size(store: Store, db: Path) -> int:
    with store.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return db.stat().st_size


def main(requests: int = 25, megabytes: int = 8) -> None:
    """Log ``requests`` records with a ``megabytes`` MB string and print the growth."""
    blob = "A" * (megabytes * 1024 * 1024)
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "project") as store:
        db = Path(tmp) / "project" / ".assay" / "assay.db"
        before = _size(store, db)
        with PredictionLog(store, Path(tmp) / "wal") as log:
            for i in range(requests):
                inputs = {"age": 30, "plan": "pro", "attack": blob}
                log.append([LogEntry(new_prediction_id(), datetime.now(UTC), 1, "champion",
                                     f"req-{i}", inputs, 1, {"0": 0.4, "1": 0.6}, 0.6, 1.0)])
        after = _size(store, db)
    print(f"{requests} requests x {megabytes} MB string: database {before / 1e6:.2f} MB -> "
          f"{after / 1e6:.2f} MB (+{(after - before) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
