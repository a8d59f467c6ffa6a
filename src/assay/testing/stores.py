"""The contract every store backend (SQLite, PostgreSQL) must pass, as a reusable pytest class.

Use it like this (a test module or conftest provides the ``store`` fixture)::

    import pytest
    from assay.testing.stores import StoreContract, open_test_store, store_params

    @pytest.fixture(params=store_params())
    def store(request, tmp_path):
        with open_test_store(request.param, tmp_path) as opened:
            yield opened

    class TestStore(StoreContract):
        pass

``store_params()`` always includes SQLite; PostgreSQL runs when the environment
variable ``ASSAY_TEST_POSTGRES_URL`` holds a URL to a database the tests may wipe
(for example ``postgresql+psycopg://assay@localhost/assay_test``).
Requires pytest (a test dependency).
"""

from __future__ import annotations

import json
import os
import pickle
import threading
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, func, select, text

from assay.errors import ConfigError, GateFailed, IntegrityError, NotFoundError, StoreError
from assay.registry import ModelRegistry, ModelVersion
from assay.store import Store, head_revision, make_engine
from assay.store.tables import aliases, counters, events, metadata, model_versions

__all__ = [
    "POSTGRES_URL_ENV",
    "MarkerPayload",
    "StoreContract",
    "Tripwire",
    "forge_artifact",
    "open_test_store",
    "register_example",
    "reset_database",
    "store_params",
]

#: The environment variable naming a PostgreSQL database the contract may wipe.
POSTGRES_URL_ENV = "ASSAY_TEST_POSTGRES_URL"


def store_params() -> list[Any]:
    """``pytest.param`` values for a ``store`` fixture: SQLite, and PostgreSQL when configured."""
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param(
            "postgresql",
            id="postgresql",
            marks=[
                pytest.mark.integration,
                pytest.mark.skipif(
                    not os.environ.get(POSTGRES_URL_ENV),
                    reason=f"set {POSTGRES_URL_ENV} to run the store contract on PostgreSQL",
                ),
            ],
        ),
    ]


def open_test_store(backend: str, tmp_path: Path) -> Store:
    """A fresh, empty store of ``backend`` (``sqlite`` or ``postgresql``) for one test."""
    if backend == "sqlite":
        return Store.open(tmp_path / "project")
    if backend == "postgresql":
        url = os.environ.get(POSTGRES_URL_ENV)
        if not url:
            pytest.skip(f"{POSTGRES_URL_ENV} is not set")
        reset_database(url)
        return Store.open(url=url, artifacts=str(tmp_path / "artifacts"))
    raise ValueError(f"unknown store backend {backend!r}; expected 'sqlite' or 'postgresql'")


def reset_database(url: str) -> None:
    """Drop every table of the database at ``url`` (the store's and Alembic's)."""
    engine = make_engine(url)
    try:
        reflected = MetaData()
        reflected.reflect(engine)
        reflected.drop_all(engine)
    finally:
        engine.dispose()


#: Calls made by unpickling a :class:`Tripwire`; must stay empty when loading is refused.
TRIPPED: list[str] = []


def _trip(label: str) -> str:
    TRIPPED.append(label)
    return label


class Tripwire:
    """An object whose unpickling records a call: proof of whether bytes were unpickled."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (_trip, ("unpickled",))


class MarkerPayload:
    """A hostile pickle: unpickling it creates the folder ``marker`` (a stand-in for a shell
    command), so a test proves no code ran by checking that ``marker`` does not exist."""

    def __init__(self, marker: str | Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.mkdir, (self.marker,))


def forge_artifact(registry: ModelRegistry, version: int, marker: str | Path) -> str:
    """Do what a writer of the store without the signing key can: store a hostile pickle
    under its own SHA-256 and point ``version`` at it in the database. Return its digest."""
    data = pickle.dumps(MarkerPayload(marker), protocol=5)
    digest = registry.store.artifacts.put_bytes(data)
    with registry.store.transaction() as conn:
        conn.execute(
            model_versions.update()
            .where(model_versions.c.version == version)
            .values(artifact_digest=digest, artifact_size=len(data))
        )
    return digest


def register_example(
    registry: ModelRegistry, run_id: int | None = None, **overrides: Any
) -> ModelVersion:
    """Register a small picklable model with plausible metadata (fields overridable)."""
    fields: dict[str, Any] = {
        "model_obj": {"coef": [0.5, -1.25], "intercept": 0.1},
        "task": "binary",
        "family": "logistic",
        "params": {"C": 1.0},
        "metrics": {"roc_auc": 0.81, "f1": 0.7},
        "data_version": "data-v1",
        "config": {"task": "binary", "data": {"target": "y"}},
        "code_version": "assay-0.1.0",
        "schema": {"columns": [{"name": "x", "kind": "numeric"}]},
        "lineage": {"audit_id": None, "split_fingerprint": "split-1"},
        "user": "tester",
        "test_fingerprint": "test-1",
    }
    fields.update(overrides)
    return registry.register(run_id, **fields)


class StoreContract:
    """Store and registry behaviour every backend must show. Needs a ``store`` fixture."""

    # -- schema ---------------------------------------------------------------

    def test_new_store_is_at_head_revision(self, store: Store) -> None:
        """A new database is created at the newest revision."""
        assert store.schema_revisions() == (head_revision(),)
        assert store.revision == head_revision()

    def test_schema_matches_table_definitions(self, store: Store) -> None:
        """The migrated database equals :mod:`assay.store.tables` (no missing revision)."""
        with store.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []

    def test_migrations_are_idempotent(self, store: Store) -> None:
        """Opening an existing store again keeps its data, revision and counters."""
        registry = ModelRegistry(store)
        register_example(registry)
        with store.reopen() as again, store.reopen() as third:
            assert again.schema_revisions() == (head_revision(),)
            assert [v.version for v in ModelRegistry(third).list()] == [1]
            with again.connect() as conn:
                assert conn.execute(select(func.count()).select_from(counters)).scalar() == 1
            assert register_example(ModelRegistry(again)).version == 2

    def test_newer_schema_revision_is_refused(self, store: Store) -> None:
        """A database written by a newer assay is refused with a clear message."""
        with store.transaction() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        with pytest.raises(StoreError, match="schema revision 9999 is newer than this version"):
            store.reopen()

    # -- versions -------------------------------------------------------------

    def test_register_get_list(self, store: Store) -> None:
        """Versions are numbered 1, 2, ... and read back with every field."""
        registry = ModelRegistry(store)
        run_id = registry.start_run(
            {"task": "binary"}, "data-v1", "assay-0.1.0", "tester", {"seed": 7}
        )
        first = register_example(registry, run_id, metrics={"roc_auc": 0.8125})
        second = register_example(registry, run_id, family="lightgbm")
        assert (first.version, second.version) == (1, 2)
        got = registry.get(1)
        assert got == first
        assert got.run_id == run_id and got.metrics == {"roc_auc": 0.8125}
        assert got.status == "registered" and got.user == "tester"
        assert got.artifact_digest.startswith("sha256:") and got.artifact_size > 0
        assert got.created_at.tzinfo is not None
        assert [v.family for v in registry.list()] == ["logistic", "lightgbm"]
        assert ModelVersion.from_dict(json.loads(json.dumps(got.to_dict()))) == got

    def test_get_unknown_version_lists_existing(self, store: Store) -> None:
        """An unknown version is a NotFoundError naming it and the versions that exist."""
        registry = ModelRegistry(store)
        with pytest.raises(NotFoundError, match="model version 1 does not exist.*No model is"):
            registry.get(1)
        register_example(registry)
        register_example(registry)
        with pytest.raises(NotFoundError, match=r"model version 99 does not exist.*one of: 1, 2"):
            registry.get(99)

    def test_concurrent_registrations_get_distinct_versions(self, store: Store) -> None:
        """Version numbers are allocated in the insert transaction: no duplicates, no gaps."""
        workers, each = 3, 4
        barrier = threading.Barrier(workers)
        errors: list[Exception] = []
        seen: list[int] = []

        def work() -> None:
            try:
                with store.reopen() as own:
                    registry = ModelRegistry(own)
                    barrier.wait()
                    for _ in range(each):
                        seen.append(register_example(registry).version)
            except Exception as exc:  # noqa: BLE001 - re-raised by the assert in the test thread
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert sorted(seen) == list(range(1, workers * each + 1))

    def test_failed_registration_leaves_nothing(
        self, store: Store, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A failure inside the registration transaction leaves no row and no gap in numbers."""
        registry = ModelRegistry(store)

        def broken(*args: Any, **kwargs: Any) -> int:
            raise RuntimeError("simulated failure")

        monkeypatch.setattr("assay.registry._sql.insert_event", broken)
        with pytest.raises(RuntimeError, match="simulated failure"):
            register_example(registry)
        monkeypatch.undo()
        assert registry.list() == []
        assert register_example(registry).version == 1

    # -- promotion and rollback -----------------------------------------------

    def test_promote_then_rollback_restores_exact_previous(self, store: Store) -> None:
        """Rollback follows the champion history, not version numbers."""
        registry = ModelRegistry(store)
        for _ in range(3):
            register_example(registry)
        for version in (1, 3, 2):
            registry.promote(version, actor="ana", reason=f"promote {version}", gate_passed=True)
        assert registry.alias("champion") == 2
        restored = registry.rollback(actor="ben", reason="latency regression")
        assert restored.version == 3 and restored.status == "champion"
        assert registry.alias("champion") == 3
        assert registry.get(2).status == "archived"
        assert registry.rollback(actor="ben", reason="again").version == 1
        assert [v.status for v in registry.list()] == ["champion", "archived", "archived"]
        assert registry.champion_history() == [1]

    def test_rollback_without_previous_champion_changes_nothing(self, store: Store) -> None:
        """No previous champion: a NotFoundError, and the store is unchanged."""
        registry = ModelRegistry(store)
        register_example(registry)
        with pytest.raises(NotFoundError, match="no previous champion"):
            registry.rollback(actor="ana", reason="none yet")
        registry.promote(1, actor="ana", reason="first", gate_passed=True)
        before = _snapshot(store)
        with pytest.raises(NotFoundError, match="no previous champion"):
            registry.rollback(actor="ana", reason="only one champion so far")
        assert _snapshot(store) == before

    def test_failure_inside_promote_leaves_alias_untouched(
        self, store: Store, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An error after the alias moved, inside the transaction, undoes the whole promotion."""
        registry = ModelRegistry(store)
        register_example(registry)
        register_example(registry)
        registry.promote(1, actor="ana", reason="first", gate_passed=True)
        before = _snapshot(store)

        def broken(*args: Any, **kwargs: Any) -> int:
            raise RuntimeError("simulated failure")

        monkeypatch.setattr("assay.registry._sql.insert_event", broken)
        with pytest.raises(RuntimeError, match="simulated failure"):
            registry.promote(2, actor="ana", reason="second", gate_passed=True)
        monkeypatch.undo()
        assert _snapshot(store) == before
        assert registry.alias("champion") == 1
        assert registry.get(2).status == "registered"

    def test_promote_refused_without_gate_or_force(self, store: Store) -> None:
        """A failed gate blocks promotion; forcing needs a reason."""
        registry = ModelRegistry(store)
        register_example(registry)
        with pytest.raises(GateFailed, match="model version 1 did not pass the promotion gate"):
            registry.promote(1, actor="ana", reason="why not", gate_passed=False)
        with pytest.raises(ConfigError, match="a forced promotion needs a reason"):
            registry.promote(1, actor="ana", reason="  ", force=True, gate_passed=False)
        assert registry.alias("champion") is None
        assert registry.events(action="promote") == []

    def test_forced_promotion_records_the_override(self, store: Store) -> None:
        """Forcing past a failed gate writes an override event with the actor and reason."""
        registry = ModelRegistry(store)
        register_example(registry)
        registry.promote(
            1, actor="ana", reason="hotfix approved by risk", force=True, gate_passed=False
        )
        override = registry.events(action="override")
        assert len(override) == 1
        assert (override[0].actor, override[0].reason) == ("ana", "hotfix approved by risk")
        assert override[0].details["gate_passed"] is False
        assert registry.alias("champion") == 1

    def test_events_record_actor_and_reason(self, store: Store) -> None:
        """Every registry change leaves an event with who, why and what."""
        registry = ModelRegistry(store)
        register_example(registry, user="carla")
        register_example(registry, user="carla")
        registry.promote(1, actor="ana", reason="meets acceptance", gate_passed=True)
        registry.promote(2, actor="ana", reason="beats v1", gate_passed=True)
        registry.rollback(actor="ben", reason="drift alarm")
        trail = registry.events()
        assert [e.action for e in trail] == [
            "rollback",
            "promote",
            "promote",
            "register",
            "register",
        ]
        assert (trail[0].actor, trail[0].reason, trail[0].version) == ("ben", "drift alarm", 1)
        assert trail[0].details == {"from": 2, "to": 1}
        assert (trail[1].actor, trail[1].reason, trail[1].details["from"]) == ("ana", "beats v1", 1)
        assert trail[-1].actor == "carla"
        assert [e.action for e in registry.events(limit=2)] == ["rollback", "promote"]

    # -- test set accesses ------------------------------------------------------

    def test_test_accesses_are_counted(self, store: Store) -> None:
        """Each scoring of the sealed test set is counted per fingerprint."""
        registry = ModelRegistry(store)
        run_id = registry.start_run({}, "data-v1", "assay-0.1.0", "tester", {"seed": 1})
        version = register_example(registry, run_id).version
        for _ in range(3):
            registry.record_test_access("fp-a", version, run_id, "evaluate")
        registry.record_test_access("fp-b", None, run_id, "baseline")
        assert registry.test_access_count("fp-a") == 3
        assert registry.test_access_count("fp-b") == 1
        assert registry.test_access_count("fp-never") == 0
        assert [a.purpose for a in registry.test_accesses("fp-b")] == ["baseline"]

    # -- artifacts ------------------------------------------------------------

    def test_artifacts_are_content_addressed(self, store: Store) -> None:
        """Equal bytes share one file under ab/cdef...; reads return the same bytes."""
        artifacts = store.artifacts
        digest = artifacts.put_bytes(b"hello")
        assert digest == artifacts.put_bytes(b"hello")
        hexdigest = digest.removeprefix("sha256:")
        assert artifacts.path_of(digest) == artifacts.root / hexdigest[:2] / hexdigest[2:]
        assert artifacts.exists(digest) and artifacts.get_bytes(digest) == b"hello"
        missing = "sha256:" + "0" * 64
        with pytest.raises(NotFoundError, match=f"artifact {missing} is missing"):
            artifacts.get_bytes(missing)

    def test_tampered_model_is_refused_before_unpickling(self, store: Store) -> None:
        """A model file changed on disk is refused, and its bytes are never unpickled."""
        registry = ModelRegistry(store)
        model = register_example(registry)
        path = store.artifacts.path_of(model.artifact_digest)
        path.write_bytes(pickle.dumps(Tripwire(), protocol=5))
        TRIPPED.clear()
        pattern = (
            rf"artifact {model.artifact_digest} is corrupted or was modified: "
            rf"expected {model.artifact_digest}, found sha256:[0-9a-f]{{64}}; "
            "restore it or re-register the model"
        )
        with pytest.raises(StoreError, match=pattern):
            registry.load_model(model.version)
        assert TRIPPED == []
        register_example(registry)  # re-registering the same model repairs the file
        assert registry.load_model(model.version) == {"coef": [0.5, -1.25], "intercept": 0.1}

    def test_a_forged_model_is_never_unpickled(self, store: Store, tmp_path: Path) -> None:
        """A pickle stored under its own hash with the database pointing at it (all a writer
        of the store can do without the key) is refused: its code never runs."""
        registry = ModelRegistry(store)
        model = register_example(registry)
        marker = tmp_path / "pwned"
        digest = forge_artifact(registry, model.version, marker)
        assert registry.get(model.version).artifact_digest == digest
        assert store.artifacts.get_bytes(digest)  # the hash matches: only the key stops it
        with pytest.raises(IntegrityError, match=f"artifact {digest} is not signed"):
            registry.load_model(model.version)
        # a signature copied from a genuine artifact does not carry over
        genuine = store.artifacts.signature_path(model.artifact_digest)
        store.artifacts.signature_path(digest).write_bytes(genuine.read_bytes())
        with pytest.raises(IntegrityError, match=f"signature of artifact {digest} does not verify"):
            registry.load_model(model.version)
        with pytest.raises(IntegrityError, match=f"model version {model.version} cannot be "):
            registry.promote(model.version, gate_passed=False, force=True, reason="trust me")
        assert registry.alias("champion") is None
        assert not marker.exists()

    def test_force_never_promotes_a_corrupt_artifact(self, store: Store) -> None:
        """``promote --force`` overrides gates, not integrity: the champion stays as it was."""
        registry = ModelRegistry(store)
        first = register_example(registry)
        registry.promote(first.version, gate_passed=True)
        second = register_example(registry, model_obj={"coef": [1.0]})
        path = store.artifacts.path_of(second.artifact_digest)
        path.write_bytes(path.read_bytes()[:-1])
        with pytest.raises(
            IntegrityError,
            match=rf"model version {second.version} cannot be promoted: artifact "
            rf"{second.artifact_digest} is corrupted or was modified",
        ):
            registry.promote(second.version, gate_passed=False, force=True, reason="hotfix")
        assert registry.alias("champion") == first.version
        assert registry.get(second.version).status == "registered"
        assert [e.action for e in registry.events(action="promote")] == ["promote"]

    def test_json_artifacts_round_trip(self, store: Store) -> None:
        """Large reports kept as JSON artifacts read back equal; equal content, equal digest."""
        registry = ModelRegistry(store)
        report = {"metrics": {"roc_auc": 0.8}, "rows": [1, 2, 3], "note": "é"}
        digest = registry.store_json(report)
        assert registry.load_json(digest) == report
        assert registry.store_json(dict(reversed(list(report.items())))) == digest

    # -- runs, audits, gates ----------------------------------------------------

    def test_run_lifecycle(self, store: Store) -> None:
        """A run starts running, finishes once with a status and a summary."""
        registry = ModelRegistry(store)
        run_id = registry.start_run(
            {"task": "binary"}, "data-v1", "assay-0.1.0", "dan", {"seed": 3}
        )
        assert registry.get_run(run_id).status == "running"
        run = registry.finish_run(run_id, "succeeded", {"best": 1})
        assert run.status == "succeeded" and run.summary == {"best": 1}
        assert run.finished_at is not None and run.seeds == {"seed": 3} and run.user == "dan"
        with pytest.raises(StoreError, match=f"run {run_id} already finished"):
            registry.finish_run(run_id, "failed")

    def test_audits_and_gate_decisions_are_kept(self, store: Store) -> None:
        """Audit reports and gate verdicts read back as written."""
        registry = ModelRegistry(store)
        audit_id = registry.record_audit({"findings": []}, "data-v1", True)
        assert registry.get_audit(audit_id).report == {"findings": []}
        assert registry.latest_audit("data-v1").id == audit_id  # type: ignore[union-attr]
        assert registry.latest_audit("data-v2") is None
        version = register_example(registry).version
        gates = [{"name": "acceptance", "passed": True}, {"name": "latency", "passed": False}]
        decision = registry.record_gate(version, False, gates)
        assert registry.latest_gate(version) == decision
        assert decision.gates == gates and decision.passed is False
        assert registry.events(action="gate")[0].details["failed"] == ["latency"]


def _snapshot(store: Store) -> dict[str, Any]:
    """Everything a failed registry operation must leave unchanged."""
    with store.connect() as conn:
        return {
            "aliases": sorted(conn.execute(select(aliases.c.name, aliases.c.version)).all()),
            "statuses": conn.execute(
                select(model_versions.c.version, model_versions.c.status).order_by(
                    model_versions.c.version
                )
            ).all(),
            "events": conn.execute(select(func.count()).select_from(events)).scalar(),
        }
