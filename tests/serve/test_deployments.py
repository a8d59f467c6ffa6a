"""Deployments: validation, the challenger alias, one active deployment, failure ordering."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from assay.errors import ConfigError, NotFoundError, StoreError
from assay.registry import ModelRegistry
from assay.model.deployments import (
    Deployment,
    active_deployment,
    deploy,
    deployment_history,
    undeploy,
)
from assay.store.tables import deployments
from assay.testing.stores import open_test_store, register_example, store_params


@pytest.fixture(params=store_params())
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ModelRegistry]:
    with open_test_store(request.param, tmp_path) as opened:
        registry = ModelRegistry(opened)
        for _ in range(3):
            register_example(registry)
        registry.promote(1, actor="ana", reason="first", gate_passed=True)
        yield registry


def active_rows(registry: ModelRegistry) -> list[Any]:
    with registry.store.connect() as conn:
        return list(conn.execute(select(deployments).where(deployments.c.active.is_(True))))


def test_shadow_deploy_sets_challenger_and_records_event(registry: ModelRegistry) -> None:
    made = deploy(registry, 2, mode="shadow", actor="ana", reason="try v2 quietly")
    assert (made.version, made.mode, made.share, made.actor, made.active) == (
        2, "shadow", 0.0, "ana", True,
    )  # fmt: skip
    assert registry.alias("challenger") == 2 and registry.get(2).status == "challenger"
    assert active_deployment(registry) == made
    event = registry.events(action="deploy")[0]
    assert (event.actor, event.version, event.reason) == ("ana", 2, "try v2 quietly")
    assert event.details == {
        "deployment": made.id,
        "mode": "shadow",
        "share": 0.0,
        "previous": None,
    }
    assert Deployment.from_dict(json.loads(json.dumps(made.to_dict()))) == made


def test_new_deploy_ends_the_previous_one(registry: ModelRegistry) -> None:
    first = deploy(registry, 2, mode="shadow", actor="ana")
    second = deploy(registry, 3, mode="canary", share=0.25, actor="ben")
    assert active_deployment(registry) == second and second.share == 0.25
    assert len(active_rows(registry)) == 1
    history = deployment_history(registry)
    assert [d.id for d in history] == [second.id, first.id]
    assert history[1].active is False and history[1].ended_at is not None
    assert registry.alias("challenger") == 3 and registry.get(2).status == "registered"
    previous = registry.events(action="deploy")[0].details["previous"]
    assert (previous["id"], previous["version"], previous["active"]) == (first.id, 2, False)


def test_redeploying_the_same_version_changes_the_share(registry: ModelRegistry) -> None:
    deploy(registry, 2, mode="canary", share=0.1)
    again = deploy(registry, 2, mode="canary", share=0.5)
    assert active_deployment(registry) == again and len(active_rows(registry)) == 1


@pytest.mark.parametrize(
    ("mode", "share", "pattern"),
    [
        ("blue", 0.0, r"mode: unknown deployment mode \(expected one of: shadow, canary, got blue"),
        ("canary", 0.0, r"share: a canary needs a share of traffic \(expected a number with 0 <"),
        ("canary", 1.5, r"a canary needs a share.*got 1.5"),
        ("canary", float("nan"), r"a canary needs a share.*got nan"),
        ("shadow", 0.2, r"a shadow deployment answers no traffic.*use canary mode"),
    ],
)
def test_invalid_mode_or_share_changes_nothing(
    registry: ModelRegistry, mode: Any, share: float, pattern: str
) -> None:
    with pytest.raises(ConfigError, match=pattern):
        deploy(registry, 2, mode=mode, share=share)
    assert registry.alias("challenger") is None and deployment_history(registry) == []


def test_full_canary_is_allowed(registry: ModelRegistry) -> None:
    assert deploy(registry, 2, mode="canary", share=1).share == 1.0


def test_unknown_version_and_champion_are_refused(registry: ModelRegistry) -> None:
    with pytest.raises(NotFoundError, match=r"model version 9 does not exist.*one of: 1, 2, 3"):
        deploy(registry, 9, mode="shadow")
    with pytest.raises(ConfigError, match="version: model version 1 is the champion.*promote"):
        deploy(registry, 1, mode="shadow")
    assert deployment_history(registry) == [] and registry.events(action="deploy") == []


def test_failed_challenger_step_leaves_no_deployment_on_a_non_challenger(
    registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy(registry, 2, mode="canary", share=0.2)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise StoreError("simulated failure")

    monkeypatch.setattr(registry, "set_challenger", broken)
    with pytest.raises(StoreError, match="simulated failure"):
        deploy(registry, 3, mode="shadow")
    # the old deployment ended before the alias could move: nothing serves a stale challenger
    assert active_rows(registry) == []
    assert active_deployment(registry) is None
    assert registry.alias("challenger") == 2


def test_failed_audit_event_ends_the_new_deployment(
    registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = registry.record_event

    def broken(action: str, **kwargs: Any) -> Any:
        if action == "deploy":
            raise StoreError("simulated failure")
        return real(action, **kwargs)

    monkeypatch.setattr(registry, "record_event", broken)
    with pytest.raises(StoreError, match="simulated failure"):
        deploy(registry, 2, mode="shadow")
    assert active_deployment(registry) is None and active_rows(registry) == []


def test_deployment_of_a_promoted_or_rejected_challenger_is_stale(
    registry: ModelRegistry,
) -> None:
    deploy(registry, 2, mode="canary", share=0.5)
    registry.promote(2, actor="ana", reason="canary went well", gate_passed=True)
    assert active_deployment(registry) is None
    deploy(registry, 3, mode="shadow")
    registry.reject(3, actor="ana", reason="worse")
    assert active_deployment(registry) is None


def test_undeploy(registry: ModelRegistry) -> None:
    made = deploy(registry, 2, mode="shadow")
    undeploy(registry, actor="ben")
    assert active_deployment(registry) is None and active_rows(registry) == []
    event = registry.events(action="undeploy")[0]
    assert (event.actor, event.version, event.details["deployment"]) == ("ben", 2, made.id)
    assert registry.alias("challenger") == 2  # the alias stays; reject or promote to move it
    with pytest.raises(NotFoundError, match="no deployment is active.*assay deploy"):
        undeploy(registry)
