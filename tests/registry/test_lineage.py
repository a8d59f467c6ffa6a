"""The typed lineage of a model version reads every stored row and writes the same JSON."""

from __future__ import annotations

from assay.registry import Lineage, ModelRegistry
from assay.store import Store
from assay.testing.stores import register_example

RUN_KEYS = {
    "audit_id", "split", "split_digest", "search", "evaluation", "baseline", "reference",
    "features", "text_column", "target", "classes", "diagnosis", "validation_value",
}


def test_a_lineage_round_trips_through_the_json_the_store_holds() -> None:
    lineage = Lineage(
        audit_id=4, split={"strategy": "random"}, split_digest="sha256:a", features=("x", "y"),
        target="t", classes=(0, 1), validation_value=0.8, reason="assay run 2",
    )
    data = lineage.to_dict()
    assert set(data) == RUN_KEYS | {"reason"}
    assert data["features"] == ["x", "y"] and data["classes"] == [0, 1]
    assert Lineage.from_dict(data) == lineage


def test_old_rows_with_missing_or_unknown_keys_still_read() -> None:
    old = Lineage.from_dict({"audit_id": None, "split_fingerprint": "split-1"})
    assert old.features == () and old.reference is None and old.retrain_id is None
    assert old.extra == {"split_fingerprint": "split-1"}
    assert old.to_dict()["split_fingerprint"] == "split-1"
    assert Lineage.from_dict(None) == Lineage()


def test_the_registry_returns_a_typed_lineage(store: Store) -> None:
    registry = ModelRegistry(store)
    lineage = Lineage(features=("x",), classes=("no", "yes"), retrain_id="abc")
    version = register_example(registry, lineage=lineage)
    stored = registry.get(version.version).lineage
    assert stored == lineage and stored.retrain_id == "abc"
    assert registry.get(version.version).to_dict()["lineage"]["retrain_id"] == "abc"
    dict_row = register_example(registry)
    assert registry.get(dict_row.version).lineage.extra == {"split_fingerprint": "split-1"}
