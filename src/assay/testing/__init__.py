"""Contract tests shipped with assay: reusable pytest classes every implementation must pass.

- :mod:`assay.testing.splitters`: the leakage invariants of every splitter.
- :mod:`assay.testing.families`: the fit/predict/save/load checks of every model family.
- :mod:`assay.testing.stores`: the store and registry contract of every database backend.
- :mod:`assay.testing.checks`: what every audit check must survive on awkward frames.
- :mod:`assay.testing.drift`: the properties every drift test must have (tabular and text).

Importing these modules needs pytest (a test dependency).
"""

from __future__ import annotations

__all__: list[str] = []
