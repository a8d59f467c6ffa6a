"""Property tests: splits never leak, whatever the frame, groups, times and seed."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from assay.config.spec import ProjectSpec
from assay.errors import DataError
from assay.split import SPLITTERS, fingerprint_test_set, make_splits, union_groupings
from assay.testing.splitters import (
    SplitCase,
    check_duplicates_intact,
    check_groups_intact,
    check_partition,
    check_time_order,
)

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def cases(draw: st.DrawFn) -> SplitCase:
    """A frame with duplicates, groups, tied times and a label, and split arguments."""
    n = draw(st.integers(30, 90))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    n_groups = draw(st.integers(1, n))
    frame = pd.DataFrame(
        {
            "x": rng.integers(0, draw(st.integers(2, 300)), n).astype(float),
            "c": rng.choice(np.array(["a", "b", "c"]), n),
            "target": rng.integers(0, draw(st.integers(2, 3)), n),
            "group": rng.integers(0, n_groups, n),
            "time": rng.integers(0, draw(st.integers(3, 3 * n)), n).astype(float),
        }
    )
    gap = draw(st.one_of(st.none(), st.floats(0, 5, allow_nan=False)))
    return SplitCase(
        "drawn",
        frame,
        target="target",
        group="group" if draw(st.booleans()) else None,
        time="time",
        test_size=draw(st.sampled_from([0.15, 0.2, 0.3])),
        validation_size=draw(st.sampled_from([0.15, 0.2, 0.3])),
        gap=gap,
        seed=seed,
    )


@SETTINGS
@given(case=cases(), alias=st.sampled_from(sorted(SPLITTERS.names())))
def test_no_splitter_ever_leaks(case: SplitCase, alias: str) -> None:
    splitter = SPLITTERS.get(alias)()
    kwargs = case.kwargs()
    if not splitter.orders_time:
        kwargs["gap"] = None
    if alias == "group" and case.group is None:
        kwargs["group"] = "group"
    try:
        result = splitter.assign(case.frame, **kwargs)
    except DataError as exc:
        event(f"refused: {exc.what.split(':')[0][:40]}")
        return
    parts = result.as_tuple()
    check_partition(result, len(case.frame), drops_rows=splitter.orders_time)
    check_duplicates_intact(parts, case.frame, case.duplicate_columns)
    if kwargs["group"] is not None:
        check_groups_intact(parts, case.frame, kwargs["group"])
    if splitter.orders_time:
        check_time_order(parts, case.frame, "time", kwargs["gap"])
    again = splitter.assign(case.frame, **kwargs)
    for a, b in zip(parts, again.as_tuple()):
        assert np.array_equal(a, b)


@SETTINGS
@given(case=cases(), strategy=st.sampled_from(["stratified", "random", "chronological"]))
def test_plans_never_use_unlabelled_rows(case: SplitCase, strategy: str) -> None:
    frame = case.frame.assign(target=case.frame["target"].astype(float))
    holes = np.random.default_rng(case.seed).random(len(frame)) < 0.1
    frame.loc[holes, "target"] = np.nan
    spec = ProjectSpec.model_validate(
        {
            "task": "binary" if frame["target"].nunique() <= 2 else "multiclass",
            "data": {"source": "d.csv", "target": "target", "time": "time"},
            "split": {
                "strategy": strategy,
                "gap": case.gap if strategy == "chronological" else None,
            },
            "seed": case.seed % 1000,
        }
    )
    try:
        plan = make_splits(frame, spec, data_version="v")
    except DataError as exc:
        event(f"refused: {exc.what.split(':')[0][:40]}")
        return
    used = np.concatenate([plan.train, plan.validation, plan.test])
    assert np.unique(used).size == used.size
    assert not holes[used].any()
    assert sum(plan.sizes.values()) == len(frame)
    assert plan.sizes["dropped"] >= int(holes.sum())
    assert plan.test_fingerprint == fingerprint_test_set(plan.test, "v")
    check_duplicates_intact(
        (plan.train, plan.validation, plan.test), frame, ["x", "c", "group", "target"]
    )


def _union_find(*groupings: np.ndarray) -> list[int]:
    n = len(groupings[0])
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for grouping in groupings:
        first: dict[object, int] = {}
        for i, key in enumerate(grouping.tolist()):
            if key in first:
                parent[root(i)] = root(first[key])
            else:
                first[key] = i
    return [root(i) for i in range(n)]


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 40).flatmap(
        lambda n: st.lists(
            st.lists(st.integers(0, 8), min_size=n, max_size=n), min_size=1, max_size=3
        )
    )
)
def test_union_groupings_matches_union_find(groupings: list[list[int]]) -> None:
    arrays = [np.asarray(g) for g in groupings]
    got = union_groupings(*arrays)
    want = _union_find(*arrays)
    # the same partition: equal ids exactly where the union-find roots are equal
    assert pd.factorize(np.asarray(want))[0].tolist() == got.tolist()


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 2),
    n=st.integers(30, 200),
    alias=st.sampled_from(["random", "stratified"]),
)
def test_another_seed_moves_rows(seed: int, n: int, alias: str) -> None:
    frame = pd.DataFrame({"x": np.arange(n, dtype=float), "target": np.arange(n) % 2})
    splitter = SPLITTERS.get(alias)()
    first = splitter.split(frame, target="target", seed=seed)
    other = splitter.split(frame, target="target", seed=seed + 1)
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


@SETTINGS
@given(case=cases(), gap=st.floats(0.5, 6, allow_nan=False))
def test_chronological_gap_always_holds(case: SplitCase, gap: float) -> None:
    n = len(case.frame)
    # mostly distinct times, a few ties
    times = np.random.default_rng(case.seed).integers(0, 4 * n, n).astype(float)
    case = replace(case, frame=case.frame.assign(time=times), group=None)
    splitter = SPLITTERS.get("chronological")()
    try:
        result = splitter.assign(case.frame, **{**case.kwargs(), "gap": gap})
    except DataError as exc:
        event(f"refused: {exc.what.split(':')[0][:40]}")
        return
    check_partition(result, len(case.frame), drops_rows=True)
    check_time_order(result.as_tuple(), case.frame, "time", gap)
    check_duplicates_intact(result.as_tuple(), case.frame, case.duplicate_columns)
