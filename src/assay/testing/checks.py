"""The contract every audit check must honour, as a reusable pytest class.

A check runs on data nobody has seen before the audit, so it has to cope with whatever a
file holds: columns with nothing in them, text that is only blanks, a single value, no
feature at all, a handful of rows, dates, booleans, pandas categories and column names in
any script; and, for a text-classification task, free text that is clean, dirty (blank,
duplicated, conflicting, garbled, long), entirely missing or read with a model.base that
does not exist. On each frame of :func:`audit_cases` the contract asserts that a check

- leaves the frame as it found it (values, dtypes, index and column names);
- does not raise (the runner would turn an exception into a "could not run" warning,
  which hides what the check was meant to find);
- reports findings that name existing columns (or none, for row-level findings), carry
  a message, a fix and a valid severity, and whose evidence ``json.dumps`` accepts as is;
- gives the same findings when run twice on the same input.

Use it like this (a test module provides the ``check`` fixture)::

    import pytest
    from assay.testing.checks import AuditCheckContract

    class TestMyCheck(AuditCheckContract):
        @pytest.fixture
        def check(self):
            return MyCheck

The checks are also available as functions (``check_*``) for other tests.
Requires pytest (a test dependency).
"""

from __future__ import annotations

import atexit
import copy
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from assay.audit.base import SEVERITY_ORDER, AuditContext, BaseCheck, Finding
from assay.data.dataset import Dataset
from assay.errors import MissingDependencyError

__all__ = [
    "AuditCase",
    "AuditCheckContract",
    "audit_case",
    "audit_cases",
    "check_findings_well_formed",
    "check_frame_unchanged",
    "contract_frame",
    "contract_text_frame",
    "run_check",
]

#: a column name in another script, and one that reads as a number
UNICODE_COLUMN = "größe_名前"
NUMBER_COLUMN = "2024"


@dataclass(frozen=True, eq=False)
class AuditCase:
    """A frame and the column roles a check sees it with in the contract."""

    name: str
    frame: pd.DataFrame = field(repr=False)
    target: str | None = "target"
    task: str | None = "binary"
    id_column: str | None = None
    time_column: str | None = None
    group_column: str | None = None
    dropped: tuple[str, ...] = ()
    protected: tuple[str, ...] = ()
    slices: tuple[str, ...] = ()
    text_column: str | None = None
    #: ``model.base``; :data:`TINY_BASE` stands for a tiny random-weight checkpoint
    model_base: str | None = None

    def context(self) -> AuditContext:
        """A fresh context (its shared cache empty) over a deep copy of the frame."""
        loaded = _loaded(self)
        return AuditContext(
            dataset=Dataset(
                frame=loaded.frame.copy(deep=True),
                schema=loaded.schema,
                version=loaded.version,
                source=loaded.source,
            ),
            target=self.target,
            task=self.task,
            id_column=self.id_column,
            time_column=self.time_column,
            group_column=self.group_column,
            dropped=self.dropped,
            protected=self.protected,
            slices=self.slices,
            min_slice_size=5,
            seed=0,
            text_column=self.text_column,
            model_base=_contract_base() if self.model_base == TINY_BASE else self.model_base,
        )


@lru_cache(maxsize=64)
def _loaded(case: AuditCase) -> Dataset:
    """The case's frame as a data set (schema and version are computed once per case)."""
    return Dataset.from_frame(case.frame, source=f"<contract:{case.name}>")


def contract_frame(rows: int = 120, *, seed: int = 0, task: str = "binary") -> pd.DataFrame:
    """A clean frame of every column kind with a ``target`` learnable for ``task``.

    Columns: ``amount`` (float with gaps), ``count`` (int), ``flag`` (bool), ``colour``
    (strings with gaps), ``plan`` (pandas category), ``when`` (datetime), a column named
    in another script and one named ``2024``.
    """
    rng = np.random.default_rng(seed)
    amount = rng.normal(size=rows)
    colour = rng.choice(np.array(["red", "green", "blue"]), rows)
    flag = rng.random(rows) > 0.5
    signal = amount + 0.8 * (colour == "red") - 0.4 * flag
    frame = pd.DataFrame(
        {
            "amount": amount,
            "count": rng.integers(0, 20, rows),
            "flag": flag,
            "colour": pd.Series(colour, dtype="str"),
            "plan": pd.Categorical(rng.choice(np.array(["free", "pro", "team"]), rows)),
            "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(rows), unit="h"),
            UNICODE_COLUMN: rng.normal(170, 10, rows).round(1),
            NUMBER_COLUMN: rng.integers(0, 3, rows),
        }
    )
    frame.loc[rng.random(rows) < 0.1, "amount"] = np.nan
    frame.loc[rng.random(rows) < 0.1, "colour"] = None
    noisy = signal + rng.normal(scale=0.5, size=rows)
    if task == "regression":
        frame["target"] = 3.0 * noisy
    elif task == "multiclass":
        frame["target"] = pd.Series(
            np.array(["low", "mid", "high"])[np.digitize(noisy, [-0.3, 0.7])], dtype="str"
        )
    else:
        frame["target"] = (noisy > 0.3).astype(np.int64)
    return frame


#: the ``model_base`` of a case that reads its text with a tiny checkpoint built once
TINY_BASE = "<tiny>"
#: a ``model.base`` that resolves to nothing
MISSING_BASE = "./no-such-checkpoint/"

_TOPICS = {
    "sport": "match goal team coach season player score league win referee",
    "food": "recipe oven flour sugar butter bake taste dinner spice salad",
    "travel": "flight hotel beach train ticket museum city map passport tour",
}


def contract_text_frame(rows: int = 120, *, seed: int = 0) -> pd.DataFrame:
    """A clean text-classification frame: ``review`` (free text), ``stars`` and ``target``.

    Each row's text draws 5 to 12 words from the vocabulary of its topic (the
    ``target``), so the label is learnable from the text; no text repeats.
    """
    rng = np.random.default_rng(seed)
    topics = list(_TOPICS)
    labels = np.array(topics)[np.arange(rows) % len(topics)]
    texts = []
    for i, label in enumerate(labels):
        words = _TOPICS[str(label)].split()
        picked = rng.choice(words, int(rng.integers(5, 13)))
        texts.append(f"{' '.join(picked)} {i}")
    return pd.DataFrame(
        {
            "review": pd.Series(texts, dtype="str"),
            "stars": rng.integers(1, 6, rows),
            "target": pd.Series(labels, dtype="str"),
        }
    )


def _dirty_text(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with blank, missing, duplicated, conflicting, garbled and long texts."""
    out = frame.copy()
    texts = out["review"].astype(object).to_numpy().copy()
    texts[0], texts[1], texts[2] = None, "", "  \t "
    texts[3] = texts[4].upper() + "!!"
    texts[5] = texts[6]
    texts[7] = "cafÃ© &amp; caf\ufffd <br /> \x07 bell"
    texts[8] = " ".join(["goal"] * 80)
    texts[15] = "  " + str(texts[12]).replace(" ", "  ").title() + "."
    texts[9] = "Überraschung Straße ünd Fußball 東京 마라톤"
    out["review"] = pd.Series(texts, dtype=object)
    out.loc[10, "target"] = None
    return out


@lru_cache(maxsize=1)
def _contract_base() -> str:
    """A tiny checkpoint for the text cases (32 tokens), or a missing path without the extra.

    Built once per process in a temporary folder removed at exit.
    """
    folder = tempfile.TemporaryDirectory(prefix="assay-contract-base-")
    atexit.register(folder.cleanup)
    words = " ".join(_TOPICS.values()).split()
    try:
        from assay.testing.checkpoints import tiny_checkpoint

        return str(tiny_checkpoint(Path(folder.name) / "tiny", words, max_length=32))
    except MissingDependencyError:
        return MISSING_BASE


def _with(frame: pd.DataFrame, **columns: Any) -> pd.DataFrame:
    out = frame.copy()
    for name, values in columns.items():
        out[name] = values
    return out


def _nullable(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with pandas' nullable dtypes (as read from Parquet) and gaps in each."""
    out = frame.copy()
    gaps = np.arange(len(out)) % 5 == 0
    out["count"] = pd.array(np.where(gaps, None, out["count"]), dtype="Int64")
    out["flag"] = pd.array(np.where(gaps, None, out["flag"]), dtype="boolean")
    out["amount"] = pd.array(out["amount"].to_numpy(), dtype="Float64")
    out["colour"] = out["colour"].astype("string")
    out["target"] = pd.array(out["target"].to_numpy(), dtype="Int64")
    return out


@lru_cache(maxsize=1)
def _cases() -> tuple[AuditCase, ...]:
    base = contract_frame()
    n = len(base)
    blanks = pd.Series(["", " ", "\t", "  \n"] * (n // 4), dtype="str")
    roles: dict[str, Any] = {"protected": ("colour",), "slices": ("plan", "flag")}
    target_only = base[["target"]].copy()
    gappy_target = base.copy()
    gappy_target["target"] = gappy_target["target"].astype("float64")
    gappy_target.loc[::7, "target"] = np.nan
    tiny = contract_frame(5, seed=1)
    text = contract_text_frame()
    text_roles: dict[str, Any] = {
        "task": "text-classification",
        "text_column": "review",
        "model_base": TINY_BASE,
    }
    return (
        AuditCase("clean-binary", base, **roles),
        AuditCase(
            "clean-multiclass", contract_frame(task="multiclass"), task="multiclass", **roles
        ),
        AuditCase(
            "clean-regression", contract_frame(task="regression"), task="regression", **roles
        ),
        AuditCase(
            "all-missing",
            _with(
                base,
                empty_float=np.full(n, np.nan),
                empty_text=pd.Series([None] * n, dtype="str"),
                empty_object=pd.Series([None] * n, dtype=object),
            ),
            protected=("empty_text",),
            slices=("empty_float",),
        ),
        AuditCase(
            "blank-strings", _with(base, blank=blanks), protected=("blank",), slices=("blank",)
        ),
        AuditCase(
            "constant",
            _with(base, same=np.ones(n), same_text=pd.Series(["x"] * n, dtype="str")),
            protected=("same_text",),
            slices=("same",),
        ),
        AuditCase("no-features", target_only),
        AuditCase(
            "only-roles",
            base[["when", "count", "target"]].copy(),
            id_column="count",
            time_column="when",
        ),
        AuditCase("all-dropped", base, dropped=tuple(c for c in base.columns if c != "target")),
        AuditCase("tiny", tiny, **roles),
        AuditCase("tiny-regression", contract_frame(5, task="regression"), task="regression"),
        AuditCase("target-with-gaps", gappy_target, **roles),
        AuditCase(
            "single-class",
            _with(base, target=np.zeros(n, dtype=np.int64)),
            protected=("colour",),
        ),
        AuditCase(
            "all-missing-target",
            _with(base, target=np.full(n, np.nan)),
            protected=("colour",),
            slices=("plan",),
        ),
        AuditCase(
            "time-and-group",
            base,
            time_column="when",
            group_column=NUMBER_COLUMN,
            id_column="count",
            **roles,
        ),
        AuditCase("no-target", base, target=None, task=None, slices=("plan",)),
        AuditCase(
            "nullable-dtypes",
            _nullable(base),
            protected=("flag",),
            slices=("count", "colour"),
        ),
        AuditCase(
            "odd-values",
            _with(
                base,
                amount=base["amount"].where(np.arange(n) % 9 != 0, np.inf),
                mixed=pd.Series([1, "a", 2.5, None, True, "1"] * (n // 6), dtype=object),
                zoned=pd.Series(base["when"]).dt.tz_localize("UTC"),
                no_dates=pd.Series(pd.NaT, index=base.index, dtype="datetime64[ns]"),
                spare=pd.Categorical(["a"] * n, categories=["a", "b", "c"]),
            ),
            protected=("mixed",),
            slices=("zoned", "no_dates", "spare"),
        ),
        AuditCase("one-row", contract_frame(1, seed=2), **roles),
        AuditCase(
            "bool-target",
            _with(base, target=pd.array(base["target"].to_numpy() == 1, dtype="boolean")),
            **roles,
        ),
        AuditCase(
            "category-target",
            _with(base, target=pd.Categorical(np.where(base["target"] == 1, "yes", "no"))),
            **roles,
        ),
        AuditCase(
            "constant-regression",
            _with(base, target=np.full(n, 2.5)),
            task="regression",
            **roles,
        ),
        AuditCase(
            "unicode-roles",
            base,
            protected=(UNICODE_COLUMN, NUMBER_COLUMN),
            slices=(UNICODE_COLUMN, "when"),
        ),
        AuditCase("text-clean", text, **text_roles),
        AuditCase("text-dirty", _dirty_text(text), **text_roles),
        AuditCase(
            "text-all-missing", _with(text, review=pd.Series([None] * len(text), dtype="str")),
            **text_roles,
        ),
        AuditCase("text-tiny", contract_text_frame(5, seed=1), **text_roles),
        AuditCase(
            "text-missing-base",
            _dirty_text(text),
            task="text-classification",
            text_column="review",
            model_base=MISSING_BASE,
        ),
    )


def audit_cases() -> tuple[AuditCase, ...]:
    """Every frame of the contract (built once; do not modify their frames)."""
    return _cases()


def audit_case(name: str) -> AuditCase:
    """One case of :func:`audit_cases` by name."""
    for case in _cases():
        if case.name == name:
            return case
    raise KeyError(f"no audit contract case {name!r}: {[c.name for c in _cases()]}")


def run_check(check: type[BaseCheck], ctx: AuditContext) -> list[Finding] | None:
    """The findings of ``check`` on ``ctx``, or None when it does not apply."""
    instance = check()
    if not instance.applies(ctx):
        return None
    return list(instance.run(ctx))


def check_frame_unchanged(before: pd.DataFrame, after: pd.DataFrame) -> None:
    """``after`` has the values, dtypes, index and column names of ``before``."""
    assert list(after.columns) == list(before.columns)
    assert after.index.equals(before.index) and type(after.index) is type(before.index)
    assert after.dtypes.to_dict() == before.dtypes.to_dict()
    pd.testing.assert_frame_equal(after, before, check_exact=True)
    assert after.attrs == before.attrs


def check_findings_well_formed(
    findings: list[Finding], frame: pd.DataFrame, alias: str
) -> None:
    """Each finding belongs to ``alias``, names existing columns and serialises to JSON."""
    columns = set(frame.columns)
    for finding in findings:
        assert isinstance(finding, Finding)
        assert finding.check == alias, finding
        assert finding.severity in SEVERITY_ORDER, finding
        assert isinstance(finding.columns, tuple), finding
        unknown = [c for c in finding.columns if c not in columns]
        assert not unknown, f"{alias} names columns not in the frame: {unknown}"
        assert finding.message.strip(), f"{alias}: a finding without a message"
        assert finding.fix.strip(), f"{alias}: a finding without a fix: {finding.message}"
        assert isinstance(finding.evidence, dict)
        json.dumps(finding.evidence, allow_nan=False)
        json.dumps(finding.to_dict(), allow_nan=False)
        assert Finding.from_dict(json.loads(json.dumps(finding.to_dict()))) == finding


class AuditCheckContract:
    """No mutation, no exception, well-formed and deterministic findings on every case.

    Subclasses provide the ``check`` fixture (the check class). ``cases`` names the cases
    of :func:`audit_cases` to run (all by default).
    """

    cases: tuple[str, ...] | None = None

    @pytest.fixture
    def check(self) -> type[BaseCheck]:
        """The check class under test (override in the subclass)."""
        raise NotImplementedError("define a `check` fixture returning the check class")

    @pytest.fixture(params=[c.name for c in _cases()])
    def case(self, request: pytest.FixtureRequest) -> AuditCase:
        """Each frame of the contract."""
        if self.cases is not None and request.param not in self.cases:
            pytest.skip(f"case {request.param} is not run for this check")
        return audit_case(str(request.param))

    def _run(self, check: type[BaseCheck], case: AuditCase) -> tuple[AuditContext, Any]:
        ctx = case.context()
        return ctx, run_check(check, ctx)

    def test_leaves_the_frame_unchanged(self, check: type[BaseCheck], case: AuditCase) -> None:
        ctx = case.context()
        before = copy.deepcopy(ctx.frame)
        schema = copy.deepcopy(ctx.dataset.schema)
        run_check(check, ctx)
        check_frame_unchanged(before, ctx.frame)
        assert ctx.dataset.schema == schema

    def test_findings_are_well_formed(self, check: type[BaseCheck], case: AuditCase) -> None:
        ctx, findings = self._run(check, case)
        if findings is None:
            return
        check_findings_well_formed(findings, ctx.frame, check.alias)

    def test_same_input_same_findings(self, check: type[BaseCheck], case: AuditCase) -> None:
        _, first = self._run(check, case)
        _, second = self._run(check, case)
        dump: Callable[[Any], Any] = lambda found: (
            None if found is None else [json.dumps(f.to_dict(), sort_keys=True) for f in found]
        )
        assert dump(first) == dump(second)
