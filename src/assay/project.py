"""A project on disk: assay.yaml, the data it names, and the ``.assay/`` state folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from assay.config.load import load_spec
from assay.config.spec import ProjectSpec
from assay.errors import ConfigError

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

    def load_data(self, *, labels: bool = True) -> Dataset:
        """Load the data assay.yaml names, check the spec against it, and apply the labels.

        When annotations were imported (``assay label import``), the store's current
        label version goes into the target column (:func:`assay.data.labels.apply_label_version`
        states the rule), so the data version is that of the labelled rows. ``labels=False``
        gives the rows as the source has them.
        """
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
        return self._with_labels(dataset) if labels else dataset

    def _with_labels(self, dataset: Dataset) -> Dataset:
        """``dataset`` with the store's current label version applied (itself when none)."""
        from assay.data.labels import labelled_dataset
        from assay.registry.labels import stored_labels

        spec = self.spec
        found = stored_labels(self.root, spec.store.url, spec.store.artifacts)
        if found is None:
            return dataset
        version, table = found
        if spec.data.id is None:
            raise ConfigError(
                f"the store holds imported labels (label version {version.id}) but "
                "assay.yaml names no item id column",
                key="data.id",
                expected="the column the annotation files name items by",
                received="nothing",
                fix="Set data.id in assay.yaml to the id column the labels were imported for.",
            )
        labelled, _ = labelled_dataset(dataset, spec.data.id, spec.data.target, table, version.id)
        return labelled
