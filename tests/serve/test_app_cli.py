"""The serving CLI in process: token create|list|revoke, deploy modes and refusals, the loopback rule."""

from __future__ import annotations

import sys
from collections.abc import Callable

import orjson
import pytest

from assay.cli.serve import is_loopback, register_serve_commands
from assay.serve.auth import TokenVerifier
from assay.model.deployments import active_deployment

from .conftest import ServingProject

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(serving_project: ServingProject, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Run:
    from assay.cli.app import app, main

    if "deploy" not in {c.name for c in app.registered_commands}:
        register_serve_commands(app)
    monkeypatch.chdir(serving_project.root)
    monkeypatch.setenv("ASSAY_USER", "ops-user")
    monkeypatch.setenv("COLUMNS", "200")

    def invoke(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["assay", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


def test_token_create_prints_it_once_and_list_never(run: Run, serving_project: ServingProject) -> None:
    code, out, err = run("token", "create", "checkout", "--scope", "predict", "--scope", "feedback")
    assert code == 0 and "Copy it now; it is not shown again" in err
    token = out.strip()
    info = TokenVerifier(serving_project.registry).verify(token)
    assert info is not None and info.scopes == ("predict", "feedback") and info.created_by == "ops-user"
    code, out, _ = run("token", "list", "--json")
    listed = orjson.loads(out)
    assert [t["name"] for t in listed] == ["checkout"] and token not in out
    assert run("token", "revoke", "checkout")[0] == 0
    assert TokenVerifier(serving_project.registry).verify(token) is None
    events = serving_project.registry.events(action="token")
    assert [e.actor for e in events] == ["ops-user", "ops-user"]
    code, _, err = run("token", "create", "bad", "--scope", "everything")
    assert code == 2 and "everything" in err


def test_deploy_modes_status_and_refusals(run: Run, serving_project: ServingProject) -> None:
    sp = serving_project
    assert "No deployment" in run("deploy")[1]
    code, out, _ = run("deploy", str(sp.second), "--canary", "10", "--reason", "try it")
    assert code == 0 and "answering 10% of requests" in out
    current = active_deployment(sp.registry)
    assert current is not None and (current.mode, current.share, current.actor) == ("canary", 0.1, "ops-user")
    assert "runs as a canary" in run("deploy")[1]
    code, _, err = run("deploy", str(sp.second), "--shadow", "--canary", "5")
    assert code == 2 and "choose one deployment mode" in err
    code, _, err = run("deploy", str(sp.second), "--canary", "150")
    assert code == 2 and "0 < P <= 100" in err
    code, _, err = run("deploy", "--shadow")
    assert code == 2 and "which version?" in err
    code, _, err = run("deploy", str(sp.champion), "--shadow")
    assert code == 2 and "Traceback" not in err
    assert run("deploy", str(sp.second), "--shadow")[0] == 0
    assert active_deployment(sp.registry).mode == "shadow"  # type: ignore[union-attr]
    code, out, _ = run("deploy", "--off")
    assert code == 0 and "champion answers every request" in out and active_deployment(sp.registry) is None
    assert [e.actor for e in sp.registry.events(action="deploy")] == ["ops-user", "ops-user"]


def test_serve_refuses_no_auth_off_loopback(run: Run) -> None:
    code, _, err = run("serve", "--host", "192.0.2.10", "--insecure-no-auth")
    assert code == 2
    assert "--insecure-no-auth: refusing to serve without authentication on a non-loopback address" in err
    assert "expected --host 127.0.0.1, ::1 or localhost, got 192.0.2.10" in err


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.0.2", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("10.0.0.5", False), ("example.org", False),
])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
