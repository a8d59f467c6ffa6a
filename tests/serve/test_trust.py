"""The attack on a writable store: a hostile pickle stored under its own hash, the database
pointing at it. The runtime, the server, `assay predict` and `assay promote` refuse it, and
its code never runs. A champion the server cannot load makes /readyz say degraded."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from assay.errors import IntegrityError
from assay.serve.app import create_app
from assay.serve.batch import load_model_for_batch
from assay.model.loaded import LoadedModel
from assay.serve.runtime import ModelRuntime
from assay.testing.stores import forge_artifact

from .conftest import ServingProject

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(serving_project: ServingProject, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run ``assay ARGS`` in the project folder; return ``(exit code, stdout, stderr)``."""
    from assay.cli.app import app, main
    from assay.cli.serve import register_serve_commands

    if "predict" not in {c.name for c in app.registered_commands}:
        register_serve_commands(app)
    monkeypatch.chdir(serving_project.root)
    monkeypatch.setenv("COLUMNS", "300")

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["assay", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_a_forged_champion_never_runs_in_the_runtime_batch_or_cli(
    serving_project: ServingProject, tmp_path: Path, cli: Cli
) -> None:
    sp = serving_project
    marker = tmp_path / "pwned"
    digest = forge_artifact(sp.registry, sp.champion, marker)
    with pytest.raises(IntegrityError, match=f"artifact {digest} is not signed"):
        LoadedModel.load(sp.registry, sp.champion)
    with pytest.raises(IntegrityError, match="is not signed"):
        load_model_for_batch(sp.registry)
    runtime = ModelRuntime(sp.registry)
    runtime.refresh()
    assert not runtime.ready
    assert runtime.last_error == (f"model version {sp.champion} was not loaded: "
                                  f"artifact {digest} is not signed, so it is not loaded")
    sp.frame.iloc[:5][sp.features].to_parquet(sp.root / "in.parquet")
    code, out, err = cli("predict", "in.parquet", "-o", "out.parquet")
    assert code == 2 and f"artifact {digest} is not signed, so it is not loaded" in err
    assert "Traceback" not in err and not (sp.root / "out.parquet").exists()
    assert not marker.exists()


def test_a_forged_first_champion_keeps_the_server_not_ready_without_paths(
    serving_project: ServingProject, tmp_path: Path
) -> None:
    sp = serving_project
    marker = tmp_path / "pwned"
    forge_artifact(sp.registry, sp.champion, marker)
    app = create_app(sp.project, auth=False, wal_dir=tmp_path / "wal")
    with TestClient(app) as client:
        response = client.get("/readyz")
        assert response.status_code == 503 and response.json()["error"] == "not_ready"
        assert f"model version {sp.champion} was not loaded" in response.text
        assert "is not signed" in response.text
        assert str(sp.root) not in response.text and str(tmp_path) not in response.text
        assert client.post("/v1/predict", json={"records": sp.records(1)}).status_code == 503
    assert not marker.exists()


def test_a_champion_that_cannot_be_loaded_makes_readyz_degraded(
    serving_project: ServingProject, tmp_path: Path
) -> None:
    sp = serving_project
    app = create_app(sp.project, auth=False, poll_seconds=60, wal_dir=tmp_path / "wal")
    with TestClient(app) as client:
        runtime: ModelRuntime = client.app.state.assay.runtime  # type: ignore[attr-defined]
        assert client.get("/readyz").status_code == 200
        sp.registry.promote(sp.second, gate_passed=True, reason="release")  # verified here
        marker = tmp_path / "pwned"
        forge_artifact(sp.registry, sp.second, marker)  # and replaced afterwards
        runtime.refresh()
        response = client.get("/readyz")
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["error"] == "degraded"
        assert body["message"].startswith(
            f"degraded: the registry's champion is version {sp.second} but version {sp.champion} "
            f"is served (model version {sp.second} was not loaded: artifact sha256:")
        assert "is not signed" in body["message"]
        assert body["details"] == [{"champion": sp.champion, "registry_champion": sp.second}]
        assert str(sp.root) not in response.text
        answer = client.post("/v1/predict", json={"records": sp.records(1)})
        assert answer.status_code == 200 and answer.json()["predictions"][0]["version"] == sp.champion
        assert not marker.exists()


def test_force_overrides_gates_never_integrity(serving_project: ServingProject, tmp_path: Path,
                                               cli: Cli) -> None:
    sp = serving_project
    marker = tmp_path / "pwned"
    digest = forge_artifact(sp.registry, sp.second, marker)
    events = len(sp.registry.events())
    code, out, err = cli("promote", str(sp.second), "--force", "--reason", "ship it")
    assert code == 2, out + err
    assert f"model version {sp.second} cannot be promoted: artifact {digest} is not signed" in err
    assert sp.registry.alias("champion") == sp.champion
    assert len(sp.registry.events()) == events  # nothing recorded: nothing happened
    assert not marker.exists()


def test_rollback_onto_a_corrupt_artifact_is_refused(serving_project: ServingProject, cli: Cli) -> None:
    sp = serving_project
    sp.registry.promote(sp.second, gate_passed=True, reason="release")
    path = sp.artifact_path(sp.champion)
    path.write_bytes(path.read_bytes()[:-1])
    code, out, err = cli("rollback", "--reason", "bad release")
    assert code == 2, out + err
    assert f"model version {sp.champion} cannot be rolled back to: artifact " in err
    assert "is corrupted or was modified" in err
    assert sp.registry.alias("champion") == sp.second


def test_sign_lets_a_store_from_before_signing_load_again(serving_project: ServingProject, cli: Cli) -> None:
    sp = serving_project
    digest = sp.registry.get(sp.champion).artifact_digest
    sp.registry.store.artifacts.signature_path(digest).unlink()  # as written before signing
    with pytest.raises(IntegrityError, match="is not signed"):
        LoadedModel.load(sp.registry, sp.champion)
    code, _, err = cli("sign", str(sp.champion))
    assert code == 2 and "signing an artifact needs a reason" in err
    code, out, err = cli("sign", str(sp.champion), "--reason", "store from 0.1, files checked")
    assert code == 0, err
    assert f"Version {sp.champion} is signed with this machine's key." in out
    assert LoadedModel.load(sp.registry, sp.champion).version == sp.champion
    (event,) = sp.registry.events(action="sign")
    assert event.version == sp.champion and event.details["artifact"] == digest
    path = sp.artifact_path(sp.second)
    path.write_bytes(path.read_bytes() + b"x")
    code, _, err = cli("sign", str(sp.second), "--reason", "x")
    assert code == 2 and f"model version {sp.second} cannot be signed: artifact" in err
    assert "is corrupted or was modified" in err
