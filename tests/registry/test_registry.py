"""ModelRegistry beyond the store contract: challengers, rejections, events, real models."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sqlalchemy import update

import assay.registry
import assay.store
from assay.data.schema import ColumnSchema, Schema
from assay.errors import NotFoundError, StoreError
from assay.registry import (
    AuditRecord,
    Event,
    GateRecord,
    ModelRegistry,
    Run,
    TestAccess,
    current_user,
)
from assay.store import Store
from assay.store.tables import aliases
from assay.testing.stores import register_example


@pytest.fixture
def registry(store: Store) -> ModelRegistry:
    return ModelRegistry(store)


def test_public_names_are_pinned() -> None:
    assert sorted(assay.store.__all__) == sorted(
        ["Store", "ArtifactStore", "digest_of", "make_engine", "utcnow", "as_utc",
         "alembic_config", "head_revision", "new_revision", "to_jsonable", "SigningKey",
         "signing_key"]
    )  # fmt: skip
    assert {"ModelRegistry", "ModelVersion", "Event", "current_user"} <= set(assay.registry.__all__)
    for name in assay.registry.__all__:
        assert getattr(assay.registry, name) is not None


def test_current_user_prefers_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSAY_USER", "release-bot")
    assert current_user() == "release-bot"
    monkeypatch.delenv("ASSAY_USER")
    monkeypatch.setattr("getpass.getuser", lambda: "zoe")
    assert current_user() == "zoe"

    def no_login() -> str:
        raise OSError("no login name")

    monkeypatch.setattr("getpass.getuser", no_login)
    assert current_user() == "unknown"


def test_actor_defaults_to_the_current_user(
    registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSAY_USER", "ops")
    registry.register(
        None, model_obj=[1], task="binary", family="dummy", params={}, metrics={},
        data_version="d", config={}, code_version="c", schema={},
    )  # fmt: skip
    registry.promote(1, gate_passed=True)
    assert [(e.action, e.actor) for e in registry.events()] == [
        ("promote", "ops"),
        ("register", "ops"),
    ]
    assert registry.get(1).user == "ops"


def test_sklearn_model_round_trips_with_identical_predictions(registry: ModelRegistry) -> None:
    X, y = make_classification(n_samples=200, n_features=5, random_state=3)
    model = LogisticRegression(max_iter=500).fit(X, y)
    version = register_example(registry, model_obj=model).version
    loaded = registry.load_model(version)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_register_converts_schema_objects_and_numpy_metrics(registry: ModelRegistry) -> None:
    schema = Schema((ColumnSchema("plan", "categorical", "object", False, 2, ("a", "b")),))
    version = register_example(
        registry,
        schema=schema,
        metrics={"roc_auc": np.float64(0.75), "brier": float("nan")},
        params={"n_estimators": np.int64(200)},
    )
    assert version.schema == schema.to_dict()
    assert Schema.from_dict(version.schema) == schema
    assert version.metrics == {"roc_auc": 0.75, "brier": None}
    assert version.params == {"n_estimators": 200}


def test_register_with_unknown_run_is_refused(registry: ModelRegistry) -> None:
    with pytest.raises(NotFoundError, match="run 42 does not exist"):
        register_example(registry, run_id=42)
    assert registry.list() == []


def test_challenger_is_set_replaced_and_cleared_by_promotion(registry: ModelRegistry) -> None:
    for _ in range(3):
        register_example(registry)
    registry.promote(1, actor="ana", reason="first", gate_passed=True)
    with pytest.raises(StoreError, match="version 1 is the champion and cannot also be"):
        registry.set_challenger(1)
    registry.set_challenger(2, actor="ana", reason="retrained")
    registry.set_challenger(3, actor="ana", reason="better retrain")
    assert registry.alias("challenger") == 3
    assert registry.get(2).status == "registered"
    registry.promote(3, actor="ana", reason="won the shadow test", gate_passed=True)
    assert registry.alias("challenger") is None
    assert registry.challenger() is None
    champion = registry.champion()
    assert champion is not None and champion.version == 3
    assert registry.events(action="promote")[0].details["previous_status"] == "challenger"


def test_reject_leaves_the_challenger_alias_and_spares_the_champion(
    registry: ModelRegistry,
) -> None:
    register_example(registry)
    register_example(registry)
    registry.promote(1, actor="ana", reason="first", gate_passed=True)
    registry.set_challenger(2)
    rejected = registry.reject(2, actor="ana", reason="worse on fresh holdout")
    assert rejected.status == "rejected" and registry.alias("challenger") is None
    assert registry.events(limit=1)[0].reason == "worse on fresh holdout"
    with pytest.raises(StoreError, match="version 1 is the champion and cannot be rejected"):
        registry.reject(1, actor="ana", reason="oops")


def test_promoting_the_champion_again_is_refused(registry: ModelRegistry) -> None:
    register_example(registry)
    registry.promote(1, actor="ana", reason="first", gate_passed=True)
    with pytest.raises(StoreError, match="version 1 is already the champion"):
        registry.promote(1, actor="ana", reason="again", gate_passed=True)
    assert len(registry.events(action="promote")) == 1


def test_promote_unknown_version_lists_existing(registry: ModelRegistry) -> None:
    register_example(registry)
    with pytest.raises(NotFoundError, match=r"model version 7 does not exist.*one of: 1"):
        registry.promote(7, actor="ana", reason="typo", gate_passed=True)


def test_rollback_refuses_an_alias_that_disagrees_with_history(
    registry: ModelRegistry, store: Store
) -> None:
    for _ in range(3):
        register_example(registry)
    registry.promote(1, actor="ana", reason="a", gate_passed=True)
    registry.promote(2, actor="ana", reason="b", gate_passed=True)
    with store.transaction() as conn:  # an edit behind the registry's back
        conn.execute(update(aliases).where(aliases.c.name == "champion").values(version=3))
    with pytest.raises(StoreError, match="champion alias disagrees with the promotion history"):
        registry.rollback(actor="ana", reason="undo")
    assert registry.alias("champion") == 3


def test_promote_after_rollback_keeps_the_history_exact(registry: ModelRegistry) -> None:
    for _ in range(3):
        register_example(registry)
    for version in (1, 2):
        registry.promote(version, actor="ana", reason="r", gate_passed=True)
    registry.rollback(actor="ana", reason="bad")
    registry.promote(3, actor="ana", reason="r", gate_passed=True)
    assert registry.champion_history() == [1, 3]
    assert registry.rollback(actor="ana", reason="bad again").version == 1


def test_custom_events_and_reserved_actions(registry: ModelRegistry) -> None:
    register_example(registry)
    event = registry.record_event(
        "deploy", actor="ci", version=1, reason="canary 10%", details={"share": 0.1}
    )
    assert (event.action, event.actor, event.details) == ("deploy", "ci", {"share": 0.1})
    with pytest.raises(StoreError, match="'rollback' events are written by promote"):
        registry.record_event("rollback", actor="ci")
    with pytest.raises(NotFoundError, match="model version 9 does not exist"):
        registry.record_event("deploy", actor="ci", version=9)
    assert [e.action for e in registry.events(version=1)] == ["deploy", "register"]


def test_finish_run_needs_a_final_status(registry: ModelRegistry) -> None:
    run_id = registry.start_run({}, "d", "c")
    with pytest.raises(StoreError, match="must finish with a final status.*succeeded, failed"):
        registry.finish_run(run_id, "running")
    assert [r.id for r in registry.runs()] == [run_id]


def test_test_access_for_unknown_version_is_refused(registry: ModelRegistry) -> None:
    with pytest.raises(NotFoundError, match="model version 3 does not exist"):
        registry.record_test_access("fp", version=3)
    assert registry.test_access_count("fp") == 0


def test_records_round_trip_through_json(registry: ModelRegistry) -> None:
    run_id = registry.start_run({"task": "binary"}, "d", "c", "u", {"seed": 1})
    run = registry.finish_run(run_id, "failed", {"error": "boom"})
    version = register_example(registry, run_id).version
    decision = registry.record_gate(version, True, [{"name": "acceptance", "passed": True}])
    access = registry.record_test_access("fp", version, run_id, "evaluate")
    audit = registry.get_audit(registry.record_audit({"findings": [1]}, "d", False))
    event = registry.events(limit=1)[0]
    for record, cls in (
        (run, Run),
        (decision, GateRecord),
        (access, TestAccess),
        (audit, AuditRecord),
        (event, Event),
    ):
        assert cls.from_dict(json.loads(json.dumps(record.to_dict()))) == record
