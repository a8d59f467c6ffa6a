"""Every package that assay's code imports is installed by the extras that reach that code.

A static check over every import statement in ``src/assay`` (top-level, function-local and
``TYPE_CHECKING``) against ``pyproject.toml``: an import must name a package declared
directly in the core dependencies, in the extra of the subpackage it sits in, or be guarded
(inside ``try: ... except ImportError`` that raises ``MissingDependencyError(package, extra)``
naming an extra that declares it). A package that only a test extra installs broke the demo
once; this keeps the newcomer's first command honest.
"""

from __future__ import annotations

import ast
import functools
import re
import sys
import tomllib
from dataclasses import dataclass
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "assay"

#: Subpackages meant to be used with an extra installed, and the extra they may use.
#: ``assay.testing`` is the contract-test kit that plug-in authors run under pytest.
SCOPED_EXTRAS = {"assay.testing": "test"}


@dataclass(frozen=True)
class ImportSite:
    module: str  # the imported top-level name, e.g. "sklearn"
    path: Path
    line: int
    guarded_by: str | None  # the extra named by a MissingDependencyError guard


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert match, requirement
    return _normalise(match.group(0))


def _declared() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    core = {_requirement_name(r) for r in project["dependencies"]}
    extras = {
        extra: {_requirement_name(r) for r in reqs}
        for extra, reqs in project.get("optional-dependencies", {}).items()
    }
    return core, extras


def _guard_extra(handler_bodies: list[ast.stmt]) -> str | None:
    """The extra a ``raise MissingDependencyError(pkg, "extra")`` in these statements names."""
    for node in ast.walk(ast.Module(body=handler_bodies, type_ignores=[])):
        if (
            isinstance(node, ast.Raise)
            and isinstance(node.exc, ast.Call)
            and getattr(node.exc.func, "id", getattr(node.exc.func, "attr", None))
            == "MissingDependencyError"
            and len(node.exc.args) == 2
            and isinstance(node.exc.args[1], ast.Constant)
            and isinstance(node.exc.args[1].value, str)
        ):
            return node.exc.args[1].value
    return None


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(getattr(n, "id", None) in ("ImportError", "ModuleNotFoundError") for n in names)


def _import_sites(path: Path) -> list[ImportSite]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    guarded: dict[int, str] = {}  # id(import node) -> extra
    for node in ast.walk(tree):
        if isinstance(node, ast.Try):
            handlers = [h for h in node.handlers if _catches_import_error(h)]
            extra = _guard_extra([s for h in handlers for s in h.body]) if handlers else None
            if extra is not None:
                for inner in node.body:
                    for sub in ast.walk(inner):
                        if isinstance(sub, (ast.Import, ast.ImportFrom)):
                            guarded[id(sub)] = extra
    sites = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top == "assay" or top in sys.stdlib_module_names or top == "__future__":
                continue
            sites.append(ImportSite(top, path, node.lineno, guarded.get(id(node))))
    return sites


def _all_sites() -> list[ImportSite]:
    return [site for path in sorted(SRC.rglob("*.py")) for site in _import_sites(path)]


def _dotted(path: Path) -> str:
    return ".".join(("assay", *path.relative_to(SRC).with_suffix("").parts))


@functools.cache
def _module_owners() -> dict[str, list[str]]:
    return packages_distributions()


def _distributions(module: str) -> set[str]:
    return {_normalise(d) for d in _module_owners().get(module, [])}


def test_every_import_is_installed_by_the_extras_that_reach_it() -> None:
    core, extras = _declared()
    problems = []
    for site in _all_sites():
        dists = _distributions(site.module)
        if not dists:
            problems.append(f"{site.path.relative_to(ROOT)}:{site.line}: '{site.module}' is not "
                            "installed by any distribution here")
            continue
        allowed = set(core)
        dotted = _dotted(site.path)
        for prefix, extra in SCOPED_EXTRAS.items():
            if dotted == prefix or dotted.startswith(prefix + "."):
                allowed |= extras[extra]
        if site.guarded_by is not None:
            assert site.guarded_by in extras, (
                f"{site.path.relative_to(ROOT)}:{site.line}: the guard names the extra "
                f"'{site.guarded_by}', which pyproject.toml does not define"
            )
            allowed |= extras[site.guarded_by]
        if not dists & allowed:
            problems.append(
                f"{site.path.relative_to(ROOT)}:{site.line}: imports '{site.module}' "
                f"(from {', '.join(sorted(dists))}), which neither the core dependencies nor "
                "the extra in reach declare; declare it, or guard the import with "
                "MissingDependencyError naming the extra"
            )
    assert not problems, "\n".join(problems)


def test_every_guard_names_an_extra_that_exists() -> None:
    _, extras = _declared()
    named = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "MissingDependencyError"
                and len(node.args) == 2
                and isinstance(node.args[1], ast.Constant)
                and node.args[1].value is not None
            ):
                named.append((path.relative_to(ROOT), node.lineno, node.args[1].value))
    assert named, "no MissingDependencyError guard found: the scan itself is broken"
    wrong = [f"{p}:{line}: extra '{extra}'" for p, line, extra in named if extra not in extras]
    assert not wrong, "\n".join(wrong)


def test_the_check_catches_a_test_only_import(tmp_path: Path) -> None:
    """The scan sees function-local imports and tells a guarded import from a bare one."""
    module = tmp_path / "mod.py"
    module.write_text(
        "def f():\n"
        "    import httpx_like\n"
        "try:\n"
        "    import torch\n"
        "except ImportError:\n"
        "    raise MissingDependencyError('torch', 'deep') from None\n",
        encoding="utf-8",
    )
    sites = {s.module: s for s in _import_sites(module)}
    assert sites["httpx_like"].guarded_by is None and sites["httpx_like"].line == 2
    assert sites["torch"].guarded_by == "deep"
