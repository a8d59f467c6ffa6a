"""Annotation files into a project: import them all or nothing, and report where labelling is.

:func:`import_annotations` reads every file, checks it against the project's data (items
are rows of it, labels are classes of its target), and only then stores the new files,
their annotations and the label version they lead to in one transaction. A file already
imported (same SHA-256) is reported and left alone. The project's data, loaded with the
new label version applied, is a new data version; the report names it.

:func:`label_status` is what the store holds: imports, annotators, items judged, the
current label version and the items held out for adjudication.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from assay.config.metrics import CLASSIFICATION_TASKS
from assay.config.spec import ProjectSpec
from assay.data.dataset import Dataset
from assay.data.labels import LabelMerge, labelled_dataset
from assay.data.values import label_text
from assay.errors import ConfigError, DataError
from assay.label.agreement import AgreementReport
from assay.label.annotations import class_order
from assay.label.importing import (
    AnnotationFile,
    ColumnNames,
    check_annotation_file,
    file_sha256,
    read_annotation_file,
)
from assay.label.merge import build_label_table
from assay.project import Project
from assay.registry.labels import AnnotationImport, LabelStore, LabelVersion, store_exists
from assay.registry.open import open_registry

__all__ = [
    "HeldOutItem",
    "ImportReport",
    "ImportedFileReport",
    "LabelStatus",
    "import_annotations",
    "label_agreement",
    "label_status",
]


@dataclass(frozen=True)
class ImportedFileReport:
    """One file of an import.

    Attributes:
        file_name: the file's name.
        format: how it was read (``table``, ``label-studio``, ``label-studio-min``).
        already: it had been imported before (same bytes): nothing was stored.
        import_id: its import (the earlier one when ``already``).
        n_labels: the judgements it holds.
        skipped: what was no label, by reason (cancelled, empty, no label).
        annotators: who judged.
    """

    file_name: str
    format: str
    already: bool
    import_id: int
    n_labels: int
    skipped: dict[str, int]
    annotators: tuple[str, ...]

    @property
    def n_skipped(self) -> int:
        return int(sum(self.skipped.values()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "file_name": self.file_name,
            "format": self.format,
            "already_imported": self.already,
            "import_id": self.import_id,
            "n_labels": self.n_labels,
            "n_skipped": self.n_skipped,
            "skipped": dict(self.skipped),
            "annotators": list(self.annotators),
        }


@dataclass(frozen=True)
class ImportReport:
    """What an import did.

    Attributes:
        files: each file, in the order given.
        label_version: the new label version (None when every file was imported before).
        merge: what the current label version does to the data (None when there is none).
        data_version: the data version of the project's rows with the labels applied.
        previous_data_version: the data version before this import.
    """

    files: tuple[ImportedFileReport, ...]
    label_version: LabelVersion | None
    merge: LabelMerge | None
    data_version: str
    previous_data_version: str

    @property
    def changed(self) -> bool:
        """Whether anything was stored."""
        return self.label_version is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": [f.to_dict() for f in self.files],
            "label_version": self.label_version.to_dict() if self.label_version else None,
            "merge": self.merge.to_dict() if self.merge else None,
            "data_version": self.data_version,
            "previous_data_version": self.previous_data_version,
        }


@dataclass(frozen=True)
class HeldOutItem:
    """An item held out for adjudication: the best guess and how sure it is."""

    item_id: str
    label: str
    confidence: float
    n_annotations: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "label": self.label,
            "confidence": self.confidence,
            "n_annotations": self.n_annotations,
        }


@dataclass(frozen=True)
class LabelStatus:
    """Where labelling stands.

    Attributes:
        imports: every import, oldest first.
        annotators: everyone who judged, sorted.
        items: the items with at least one judgement.
        judgements: the judgements (one per item and annotator, the latest).
        label_version: the current label version (None before the first import).
        held_out: the items held out for adjudication, least sure first.
    """

    imports: tuple[AnnotationImport, ...]
    annotators: tuple[str, ...]
    items: int
    judgements: int
    label_version: LabelVersion | None
    held_out: tuple[HeldOutItem, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "imports": [i.to_dict() for i in self.imports],
            "annotators": list(self.annotators),
            "items": self.items,
            "judgements": self.judgements,
            "label_version": self.label_version.to_dict() if self.label_version else None,
            "held_out": [h.to_dict() for h in self.held_out],
        }


def import_annotations(
    project: Project,
    files: Sequence[str | Path],
    *,
    file_format: str = "auto",
    columns: ColumnNames | None = None,
    actor: str | None = None,
) -> ImportReport:
    """Import annotation files into ``project``: all of them, or nothing when one is unusable.

    Raises:
        ConfigError: the project has no ``data.id`` or is not a classification task;
            an unknown ``file_format``.
        DataError: a file that cannot be read, an item that is not a row of the data,
            a label that is not a class of the target (nothing is stored).
    """
    spec = project.spec
    id_column = _id_column(spec)
    source = project.load_data(labels=False)
    ids = {label_text(v) for v in source.frame[id_column].dropna()}
    _check_unique_ids(source, id_column, project.data_label)
    registry = open_registry(project)
    try:
        store = LabelStore(registry.store)
        prior = store.annotation_rows()
        classes = {label_text(v) for v in source.frame[spec.data.target].dropna()}
        classes |= set(prior["label"])
        before, _ = _labelled(source, store, spec)

        paths = [Path(f) for f in files]
        digests = [file_sha256(path) for path in paths]
        earlier: dict[str, AnnotationImport] = {}
        parsed: dict[str, AnnotationFile] = {}
        for path, digest in zip(paths, digests):
            if digest in parsed or digest in earlier:
                continue
            found = store.find_import(digest)
            if found is not None:
                earlier[digest] = found
                continue
            file = read_annotation_file(
                path, file_format=file_format, columns=columns, id_key=id_column,
                data_columns=[c for c in source.frame.columns if c != spec.data.target],
            )
            check_annotation_file(
                file, ids=ids, classes=classes, id_column=id_column, target=spec.data.target,
                data_label=project.data_label,
            )
            parsed[digest] = file
        new = list(parsed.values())
        used = set().union(*(set(f.rows["label"]) for f in new))
        order = class_order(classes | used)
        outcome = store.record_import(
            [f.to_new_import() for f in new],
            consensus=lambda rows: build_label_table(rows, spec.labelling, order),
            actor=actor,
        )
        after, merge = _labelled(source, store, spec)
    finally:
        registry.store.close()
    stored = {o.record.sha256: o for o in outcome.files}
    done: list[ImportedFileReport] = []
    reported: set[str] = set()
    for digest in digests:
        if digest in earlier:
            report = _already(earlier[digest])
        else:
            file, outcome_of = parsed[digest], stored[digest]
            report = ImportedFileReport(
                file.path.name, file.format, outcome_of.already or digest in reported,
                outcome_of.record.id, file.n_labels, dict(file.skipped), file.annotators,
            )
        reported.add(digest)
        done.append(report)
    return ImportReport(
        files=tuple(done),
        label_version=outcome.label_version,
        merge=merge,
        data_version=after.version,
        previous_data_version=before.version,
    )


def label_status(project: Project) -> LabelStatus:
    """What the project's store holds about labelling."""
    from assay.label.merge import annotations_from_rows

    registry = open_registry(project)
    try:
        store = LabelStore(registry.store)
        imports = tuple(store.imports())
        annotations = annotations_from_rows(store.annotation_rows())
        version = store.current_label_version()
        held: tuple[HeldOutItem, ...] = ()
        if version is not None:
            table = store.label_table(version)
            low = table[table["held_out"].astype(bool)].sort_values(["confidence", "item_id"])
            held = tuple(
                HeldOutItem(str(r.item_id), str(r.label), float(r.confidence),
                            int(r.n_annotations))
                for r in low.itertuples(index=False)
            )
    finally:
        registry.store.close()
    return LabelStatus(
        imports=imports,
        annotators=annotations.annotators,
        items=len(annotations.items),
        judgements=len(annotations),
        label_version=version,
        held_out=held,
    )


def label_agreement(
    project: Project, *, n_boot: int = 1000, seed: int | None = None
) -> AgreementReport | None:
    """How far the project's annotators agree (None when no annotations are stored).

    The classes are the labels used and, for the ordinal level, in numeric order;
    ``labelling.ordered`` overrides the default (ordinal when every label is a number).
    Each annotator is compared with the consensus ``labelling.consensus`` names.

    Raises:
        DataError: fewer than two annotators, or no item judged twice.
    """
    from assay.label.agreement import agreement_report
    from assay.label.consensus import consensus_labels
    from assay.label.merge import annotations_from_rows

    spec = project.spec
    if not store_exists(project.root, spec.store.url):
        return None
    registry = open_registry(project)
    try:
        rows = LabelStore(registry.store).annotation_rows()
    finally:
        registry.store.close()
    if rows.empty:
        return None
    annotations = annotations_from_rows(rows)
    classes = annotations.classes
    consensus = consensus_labels(annotations, spec.labelling.consensus, classes)
    return agreement_report(
        annotations,
        classes=classes,
        ordered=spec.labelling.ordered,
        n_boot=n_boot,
        seed=spec.seed if seed is None else seed,
        consensus=consensus,
    )


def _id_column(spec: ProjectSpec) -> str:
    if spec.task not in CLASSIFICATION_TASKS:
        raise ConfigError(
            f"labelling imports class labels; the task is {spec.task}",
            key="task",
            expected="binary, multiclass or text-classification",
            received=spec.task,
            fix="Annotate the target of a classification task.",
        )
    if spec.data.id is None:
        raise ConfigError(
            "labelling needs an item id column: annotation files name the rows they label",
            key="data.id",
            expected="the column that identifies each row",
            received="nothing",
            fix="Set data.id in assay.yaml to a column with one distinct value per row.",
        )
    return spec.data.id


def _check_unique_ids(source: Dataset, id_column: str, data_label: str) -> None:
    ids = source.frame[id_column]
    repeated = ids[ids.duplicated(keep=False) & ids.notna()]
    if len(repeated):
        shown = [label_text(v) for v in pd.unique(repeated)[:10]]
        raise DataError(
            f"the item id column names {repeated.nunique()} id(s) on more than one row",
            path=data_label,
            column=id_column,
            expected="one row per id (data.id names the item a label belongs to)",
            received=", ".join(shown),
            fix="Make the ids unique, or set data.id to a column that is.",
        )


def _labelled(source: Dataset, store: LabelStore, spec: ProjectSpec) -> tuple[
    Dataset, LabelMerge | None
]:
    version = store.current_label_version()
    if version is None or spec.data.id is None:
        return source, None
    table = store.label_table(version)
    return labelled_dataset(source, spec.data.id, spec.data.target, table, version.id)


def _already(record: AnnotationImport) -> ImportedFileReport:
    skipped = record.options.get("skipped") if isinstance(record.options, dict) else None
    return ImportedFileReport(
        file_name=record.file_name,
        format=record.format,
        already=True,
        import_id=record.id,
        n_labels=record.n_labels,
        skipped={str(k): int(v) for k, v in (skipped or {}).items()},
        annotators=(),
    )
