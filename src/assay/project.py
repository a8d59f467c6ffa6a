"""A project on disk: assay.yaml, the data it names, and the ``.assay/`` state folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from assay.config.load import load_spec
from assay.config.spec import ProjectSpec

if TYPE_CHECKING:
    from assay.data.dataset import Dataset

__all__ = ["CONFIG_NAME", "STATE_DIR", "Project", "find_config"]

CONFIG_NAME = "assay.yaml"
STATE_DIR = ".assay"


def find_config(start: Path | None = None) -> Path | None:
    """The nearest assay.yaml in ``start`` (default: the working folder) or its parents."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class Project:
    """The framing document with the folder it lives in.

    Relative data paths are read from ``root``; state (database, artifacts,
    reports) goes to ``root/.assay`` unless ``store.url`` points elsewhere.
    """

    root: Path
    config_path: Path
    spec: ProjectSpec

    @classmethod
    def open(cls, config: str | Path | None = None) -> Project:
        """Open the project whose assay.yaml is ``config`` (default: found from the cwd)."""
        if config is None:
            found = find_config()
            path = found if found is not None else Path.cwd() / CONFIG_NAME
        else:
            path = Path(config)
            if path.is_dir():
                path = path / CONFIG_NAME
        spec = load_spec(path)
        return cls(root=path.resolve().parent, config_path=path.resolve(), spec=spec)

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def data_label(self) -> str:
        """How the data source is named in messages."""
        from assay.data.source import is_sql_url

        source = self.spec.data.source
        return source if is_sql_url(source) else str(self.root / source)

    def load_data(self) -> Dataset:
        """Load the data assay.yaml names and check the spec against it."""
        # pandas loads here, not with the project: read-only commands never need it
        from assay.config.load import check_spec_against_data
        from assay.data.dataset import load_dataset

        spec = self.spec
        dataset = load_dataset(
            spec.data.source,
            query=spec.data.query,
            base_dir=self.root,
            encoding=spec.data.encoding,
            parse_dates=[spec.data.time] if spec.data.time else None,
        )
        check_spec_against_data(spec, dataset.frame, origin=dataset.source)
        return dataset
