"""Every registered model family passes the shared contract; every concrete family is registered."""

from __future__ import annotations

import inspect
from dataclasses import replace

import pytest

import assay.train.families as families_module
from assay.errors import ConfigError
from assay.testing.families import CONTRACT_TASKS, ModelFamilyContract
from assay.train.families import FAMILIES, BaseModelFamily, get_family

CASES = [
    (alias, task)
    for alias, cls in FAMILIES.items()
    for task in CONTRACT_TASKS
    if cls().supports(task)
]


class TestRegisteredFamilies(ModelFamilyContract):
    """Each registered family on each task it supports."""

    @pytest.fixture(params=CASES, ids=[f"{a}-{t}" for a, t in CASES])
    def case(self, request: pytest.FixtureRequest) -> tuple[str, str]:
        return request.param

    @pytest.fixture
    def family(self, case: tuple[str, str]) -> BaseModelFamily:
        return get_family(case[0])

    @pytest.fixture
    def task(self, case: tuple[str, str]) -> str:
        return case[1]


def test_every_family_supports_some_task() -> None:
    assert {alias for alias, _ in CASES} == set(FAMILIES.names())


def _concrete_subclasses(cls: type) -> set[type]:
    found: set[type] = set()
    for sub in cls.__subclasses__():
        if not inspect.isabstract(sub):
            found.add(sub)
        found |= _concrete_subclasses(sub)
    return found


def test_every_concrete_family_is_registered() -> None:
    concrete = {
        c for c in _concrete_subclasses(BaseModelFamily) if c.__module__ == families_module.__name__
    }
    registered = {cls for _, cls in FAMILIES.items()}
    assert concrete, "no concrete family found"
    assert concrete <= registered, (
        f"unregistered: {sorted(c.__name__ for c in concrete - registered)}"
    )


def test_the_documented_aliases_exist() -> None:
    assert {"dummy", "linear", "lightgbm", "mlp", "tfidf_linear"} <= set(FAMILIES.names())


def test_unknown_family_names_the_config_key() -> None:
    with pytest.raises(ConfigError, match=r"search.families: unknown model family 'xgb'"):
        get_family("xgb")


def test_supported_tasks() -> None:
    assert get_family("mlp").supports("regression")
    assert not get_family("mlp").supports("text-classification")
    assert get_family("tfidf_linear").supports("text-classification")
    assert not get_family("tfidf_linear").supports("binary")
    assert all(get_family("dummy").supports(t) for t in ("binary", "regression"))


def test_tfidf_linear_without_text_column_is_a_config_error() -> None:
    from assay.testing.families import contract_data

    context = replace(contract_data("text-classification").context(), text_column=None)
    with pytest.raises(
        ConfigError, match=r"data.text: the tfidf_linear family needs a text column"
    ):
        get_family("tfidf_linear").build({}, context)
