"""API tokens: hashed storage, scopes, unique names, revocation, the cached verifier."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from assay.errors import ConfigError, NotFoundError
from assay.registry import ModelRegistry
from assay.serve.auth import (
    SCOPES,
    TokenInfo,
    TokenVerifier,
    create_token,
    hash_token,
    list_tokens,
    revoke_token,
)
from assay.store import Store
from assay.store.tables import tokens
from assay.testing.stores import open_test_store, store_params


@pytest.fixture(params=store_params())
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ModelRegistry]:
    with open_test_store(request.param, tmp_path) as opened:
        yield ModelRegistry(opened)


def stored_rows(store: Store) -> list[Any]:
    with store.connect() as conn:
        return list(conn.execute(select(tokens)))


def test_created_token_is_random_prefixed_and_stored_only_as_hash(
    registry: ModelRegistry,
) -> None:
    first = create_token(registry, "checkout", ["predict"], actor="ana")
    second = create_token(registry, "crm", ["feedback", "predict"], actor="ana")
    assert re.fullmatch(r"assay_[A-Za-z0-9_-]{43}", first) and first != second
    rows = {row.name: row for row in stored_rows(registry.store)}
    assert rows["checkout"].token_hash == hashlib.sha256(first.encode()).hexdigest()
    assert rows["checkout"].token_hash == hash_token(first)
    assert all(first not in str(tuple(row)) for row in rows.values())
    assert rows["crm"].scopes == ["predict", "feedback"]  # in the order of SCOPES


def test_creation_and_revocation_are_audited(registry: ModelRegistry) -> None:
    create_token(registry, "ops", ["admin"], actor="ana")
    revoke_token(registry, "ops", actor="ben")
    revoke_token(registry, "ops", actor="ben")  # already revoked: nothing changes
    trail = registry.events(action="token")
    assert [(e.actor, e.details) for e in trail] == [
        ("ben", {"name": "ops", "op": "revoke"}),
        ("ana", {"name": "ops", "op": "create", "scopes": ["admin"]}),
    ]


def test_duplicate_name_is_refused_with_the_fix(registry: ModelRegistry) -> None:
    create_token(registry, "checkout", ["predict"], actor="ana")
    revoke_token(registry, "checkout", actor="ana")
    with pytest.raises(ConfigError, match="a token named 'checkout' already exists.*another name"):
        create_token(registry, "checkout", ["predict"], actor="ana")
    assert len(stored_rows(registry.store)) == 1
    assert len(registry.events(action="token")) == 2


def test_unknown_scope_names_the_valid_ones(registry: ModelRegistry) -> None:
    with pytest.raises(
        ConfigError,
        match=r"scopes: unknown token scope \(expected one or more of: predict, explain, "
        r"feedback, admin, got write\)",
    ):
        create_token(registry, "x", ["predict", "write"])
    with pytest.raises(ConfigError, match="a token needs at least one scope"):
        create_token(registry, "x", [])
    with pytest.raises(ConfigError, match="invalid token name"):
        create_token(registry, "has space", ["predict"])
    assert stored_rows(registry.store) == []


def test_failed_audit_event_leaves_no_token(
    registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("simulated failure")

    monkeypatch.setattr("assay.registry._sql.insert_event", broken)
    with pytest.raises(RuntimeError, match="simulated failure"):
        create_token(registry, "ops", ["admin"])
    monkeypatch.undo()
    assert stored_rows(registry.store) == []
    create_token(registry, "ops", ["admin"])  # the name is free again


def test_list_and_revoke(registry: ModelRegistry) -> None:
    create_token(registry, "b-svc", ["predict"], actor="ana")
    create_token(registry, "a-svc", ["admin"], actor="ana")
    revoke_token(registry, "b-svc", actor="ana")
    listed = list_tokens(registry)
    assert [(t.name, t.scopes, t.revoked, t.created_by) for t in listed] == [
        ("a-svc", ("admin",), False, "ana"),
        ("b-svc", ("predict",), True, "ana"),
    ]
    assert listed[1].revoked_at is not None and listed[0].created_at.tzinfo is not None
    assert TokenInfo.from_dict(json.loads(json.dumps(listed[1].to_dict()))) == listed[1]
    with pytest.raises(NotFoundError, match="token 'c-svc' does not exist.*one of: a-svc, b-svc"):
        revoke_token(registry, "c-svc")


def test_scopes_allow(registry: ModelRegistry) -> None:
    create_token(registry, "p", ["predict"])
    create_token(registry, "root", ["admin"])
    infos = {t.name: t for t in list_tokens(registry)}
    assert infos["p"].allows("predict") and not infos["p"].allows("feedback")
    assert all(infos["root"].allows(scope) for scope in SCOPES)


def test_verifier_accepts_live_tokens_only(registry: ModelRegistry) -> None:
    good = create_token(registry, "checkout", ["predict", "feedback"], actor="ana")
    doomed = create_token(registry, "old", ["predict"], actor="ana")
    verifier = TokenVerifier(registry, reload_seconds=3600)
    info = verifier.verify(good)
    assert info is not None and (info.name, info.scopes) == ("checkout", ("predict", "feedback"))
    assert verifier.verify(doomed) is not None
    for wrong in ["", "assay_nope", good[:-1], good + "x", hash_token(good), "a" * 10_000]:
        assert verifier.verify(wrong) is None
    revoke_token(registry, "old")
    assert verifier.verify(doomed) is not None  # cached until the next reload
    verifier.reload()
    assert verifier.verify(doomed) is None
    late = create_token(registry, "late", ["predict"])
    assert verifier.verify(late) is None
    verifier.reload()
    assert verifier.verify(late) is not None


def test_verifier_reloads_after_the_interval(registry: ModelRegistry) -> None:
    token = create_token(registry, "svc", ["predict"])
    verifier = TokenVerifier(registry, reload_seconds=0)
    assert verifier.verify(token) is not None
    revoke_token(registry, "svc")
    assert verifier.verify(token) is None


def test_verifier_records_last_use_and_survives_a_database_outage(
    registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = create_token(registry, "svc", ["predict"])
    verifier = TokenVerifier(registry, reload_seconds=3600)
    assert verifier.verify(token) is not None
    assert list_tokens(registry)[0].last_used_at is None
    verifier.reload()
    assert list_tokens(registry)[0].last_used_at is not None

    def down(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("SELECT", {}, Exception("unable to open database file"))

    monkeypatch.setattr(registry.store, "connect", down)
    verifier.reload()
    assert verifier.last_error is not None and "unable to open" in verifier.last_error
    assert verifier.verify(token) is not None  # the previous list stays in force
