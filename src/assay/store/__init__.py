"""The project store: the SQL database (runs, model versions, aliases, events) and artifacts.

>>> from assay.store import Store
>>> with Store.open(project_root) as store:           # doctest: +SKIP
...     digest = store.artifacts.put_bytes(b"...")
"""

from __future__ import annotations

from assay.store.artifacts import ArtifactStore, digest_of
from assay.store.database import Store, as_utc, make_engine, utcnow
from assay.store.migrate import alembic_config, head_revision, new_revision
from assay.store.serialize import to_jsonable
from assay.store.signing import SigningKey, signing_key

__all__ = [
    "ArtifactStore",
    "SigningKey",
    "Store",
    "alembic_config",
    "as_utc",
    "digest_of",
    "head_revision",
    "make_engine",
    "new_revision",
    "signing_key",
    "to_jsonable",
    "utcnow",
]
