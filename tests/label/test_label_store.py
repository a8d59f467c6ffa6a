"""The labelling records of the store, on SQLite and PostgreSQL: imports are all or nothing,
a file is imported once, label versions chain, and annotations read back in import order."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Table, func, select

from assay.config.spec import LabellingSpec
from assay.label.merge import build_label_table, stored_annotations
from assay.registry import ModelRegistry
from assay.registry.labels import LabelStore, LabelTable, NewImport, stored_labels
from assay.store import Store
from assay.store.tables import annotation_imports, annotations_table, label_versions

SPEC = LabellingSpec(consensus="majority", min_confidence=0.7)
CLASSES = ("0", "1")


def _file(name: str, rows: list[tuple[str, str, str]], sha: str | None = None) -> NewImport:
    frame = pd.DataFrame(rows, columns=["item_id", "annotator", "label"])
    frame["time_spent"] = 2.5
    frame["annotated_at"] = pd.Timestamp("2026-05-20T09:00:00Z")
    return NewImport(name, sha or (name.encode().hex() * 8)[:64], "table", frame, n_skipped=1,
                     options={"item": "item_id"})


def _consensus(rows: pd.DataFrame) -> LabelTable:
    return build_label_table(rows, SPEC, CLASSES)


def _count(store: Store, table: Table) -> int:
    with store.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


FIRST = [("a", "ana", "1"), ("a", "bo", "1"), ("a", "cy", "0"), ("b", "ana", "0")]


def test_an_import_stores_rows_provenance_a_label_version_and_an_event(store: Store) -> None:
    labels = LabelStore(store)
    assert labels.current_label_version() is None and labels.imports() == []
    outcome = labels.record_import([_file("first.csv", FIRST)], consensus=_consensus, actor="ana")
    (done,) = outcome.files
    assert not done.already and done.record.n_labels == 4 and done.record.n_skipped == 1
    assert done.record.file_name == "first.csv" and done.record.actor == "ana"
    version = outcome.label_version
    assert version is not None and version.id == 1 and version.parent_id is None
    assert version.method == "majority" and version.import_ids == (done.record.id,)
    assert (version.n_items, version.n_held_out, version.n_confident) == (2, 1, 1)
    assert labels.current_label_version() == version
    table = labels.label_table(version).set_index("item_id")
    assert table.loc["a", "label"] == "1" and table.loc["a", "confidence"] == pytest.approx(2 / 3)
    assert bool(table.loc["a", "held_out"]) and not bool(table.loc["b", "held_out"])
    rows = labels.annotation_rows()
    assert rows["annotator"].tolist() == ["ana", "bo", "cy", "ana"]
    assert rows["source"].unique().tolist() == ["first.csv"]
    assert rows["time_spent"].tolist() == [2.5] * 4
    assert rows["annotated_at"].iloc[0] == pd.Timestamp("2026-05-20T09:00:00Z")
    (event,) = ModelRegistry(store).events(action="labels")
    assert event.actor == "ana" and event.reason is not None
    assert event.reason.startswith("imported first.csv: 4 labels from 3 annotators (1 skipped)")
    assert event.reason.endswith("label version 1")
    assert event.details["annotators"] == ["ana", "bo", "cy"]


def test_the_same_file_again_is_a_no_op(store: Store) -> None:
    labels = LabelStore(store)
    first = labels.record_import([_file("first.csv", FIRST)], consensus=_consensus)
    again = labels.record_import([_file("renamed.csv", FIRST, sha=first.files[0].record.sha256)],
                                 consensus=_consensus)
    assert again.label_version is None
    assert again.files[0].already and again.files[0].record == first.files[0].record
    assert _count(store, annotations_table) == 4 and _count(store, label_versions) == 1
    assert len(ModelRegistry(store).events(action="labels")) == 1
    assert labels.find_import(first.files[0].record.sha256) == first.files[0].record


def test_a_failure_half_way_stores_nothing(store: Store) -> None:
    labels = LabelStore(store)

    def broken(rows: pd.DataFrame) -> LabelTable:
        assert len(rows) == 4  # the rows were written inside the transaction
        raise RuntimeError("consensus failed")

    with pytest.raises(RuntimeError, match="consensus failed"):
        labels.record_import([_file("first.csv", FIRST)], consensus=broken)
    assert _count(store, annotation_imports) == 0 and _count(store, annotations_table) == 0
    assert _count(store, label_versions) == 0 and ModelRegistry(store).events() == []


def test_a_later_import_replaces_an_annotators_earlier_judgement(store: Store) -> None:
    labels = LabelStore(store)
    labels.record_import([_file("first.csv", FIRST)], consensus=_consensus)
    second = labels.record_import([_file("second.csv", [("a", "cy", "1"), ("c", "bo", "1")])],
                                  consensus=_consensus)
    version = second.label_version
    assert version is not None and version.parent_id == 1 and version.import_ids == (1, 2)
    # cy changed their mind on a: all three agree now, a is no longer held out
    table = labels.label_table(version).set_index("item_id")
    assert table.loc["a", "confidence"] == 1.0 and not table["held_out"].any()
    ann = stored_annotations(labels)
    assert len(ann) == 5 and ann.items == ("a", "b", "c")
    row = ann.frame.set_index(["item_id", "annotator"]).loc[("a", "cy")]
    assert (row["label"], row["source"]) == ("1", "second.csv")
    assert [i.file_name for i in labels.imports()] == ["first.csv", "second.csv"]


def test_a_recomputed_label_version_chains_to_the_current_one(store: Store) -> None:
    labels = LabelStore(store)
    labels.record_import([_file("first.csv", FIRST)], consensus=_consensus)
    lenient = build_label_table(labels.annotation_rows(), LabellingSpec(consensus="majority", min_confidence=0.5),
                                CLASSES)
    version = labels.record_label_version(lenient, reason="min_confidence 0.5")
    assert version.id == 2 and version.parent_id == 1 and version.n_held_out == 0
    assert labels.current_label_version() == version
    assert [v.id for v in labels.label_versions()] == [1, 2]
    events = ModelRegistry(store).events(action="labels")
    assert events[0].reason == "label version 2 (majority): min_confidence 0.5"


def test_reading_the_labels_of_a_project_without_a_store_creates_nothing(tmp_path: Path) -> None:
    assert stored_labels(tmp_path) is None
    assert not (tmp_path / ".assay").exists()
    assert stored_labels(tmp_path, url="sqlite:///elsewhere.db") is None
    assert not (tmp_path / "elsewhere.db").exists()
    with Store.open(tmp_path):
        pass
    assert stored_labels(tmp_path) is None  # a store without labels


def test_reading_the_labels_of_a_project_with_labels(tmp_path: Path) -> None:
    with Store.open(tmp_path) as opened:
        LabelStore(opened).record_import([_file("first.csv", FIRST)], consensus=_consensus)
    found = stored_labels(tmp_path)
    assert found is not None
    version, table = found
    assert version.id == 1 and sorted(table["item_id"]) == ["a", "b"]
