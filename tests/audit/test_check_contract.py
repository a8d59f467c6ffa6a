"""Every registered audit check runs the contract of :mod:`assay.testing.checks`."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from assay.audit import CHECKS, BaseCheck
from assay.audit import checks as checks_package
from assay.testing.checks import AuditCheckContract

ALIASES = CHECKS.names()
#: checks that fit a cross-validated model on every frame; the rest take milliseconds
SLOW = {"label_errors", "text_label_errors"}


def _concrete_checks() -> list[type[BaseCheck]]:
    found: dict[str, type[BaseCheck]] = {}
    for info in pkgutil.iter_modules(checks_package.__path__):
        module = importlib.import_module(f"{checks_package.__name__}.{info.name}")
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseCheck) and not inspect.isabstract(obj):
                found[obj.__qualname__] = obj
    return list(found.values())


def test_every_check_is_registered_and_covered() -> None:
    concrete = _concrete_checks()
    assert concrete
    for cls in concrete:
        assert CHECKS.get(cls.alias) is cls
    assert set(ALIASES) == {cls.alias for cls in concrete}
    # the contract below is parametrised over exactly the registry
    assert TestEveryCheck.check_params == tuple(ALIASES)


class TestEveryCheck(AuditCheckContract):
    check_params = tuple(ALIASES)

    @pytest.fixture(
        params=[pytest.param(a, marks=pytest.mark.slow) if a in SLOW else a for a in ALIASES]
    )
    def check(self, request: pytest.FixtureRequest) -> type[BaseCheck]:
        return CHECKS.get(str(request.param))
