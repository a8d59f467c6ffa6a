"""``assay explain VERSION ROWS [-o FILE]``: per-row contributions of a version for a file,
validated as ``assay predict`` validates it; bad input exits 2 with one line."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest

from assay.cli.app import main

from .conftest import ServingProject


@dataclass
class Ran:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Ran]:
    def run(*args: str, cwd: Path) -> Ran:
        monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "argv", ["assay", *map(str, args)])
        monkeypatch.setenv("COLUMNS", "200")
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    return run


def _rows(sp: ServingProject, n: int = 4) -> pd.DataFrame:
    return sp.frame.iloc[:n][sp.features]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_explain_writes_contributions_that_add_up_to_the_output(
    serving_project: ServingProject, cli: Callable[..., Ran], tmp_path: Path, suffix: str
) -> None:
    sp = serving_project
    source = tmp_path / "rows.parquet"
    _rows(sp).to_parquet(source)
    out = tmp_path / f"why{suffix}"
    ran = cli("explain", sp.second, source, "-o", out, cwd=sp.root)
    assert ran.code == 0, ran.err
    assert f"Explained 4 rows with version {sp.second}" in ran.out
    frame = {".csv": pd.read_csv, ".parquet": pd.read_parquet,
             ".jsonl": lambda p: pd.read_json(p, lines=True)}[suffix](out)
    contributions = [f"contribution_{f}" for f in sp.features]
    assert list(frame.columns) == ["row", "prediction", "output", "output_space", "output_class",
                                   "base_value", *contributions]
    np.testing.assert_allclose(frame["base_value"] + frame[contributions].sum(axis=1),
                               frame["output"], atol=1e-9)
    proba = sp.registry.load_model(sp.second).predict_proba(_rows(sp))[:, 1]
    np.testing.assert_allclose(1.0 / (1.0 + np.exp(-frame["output"])), proba, atol=1e-9)
    assert set(frame["output_space"]) == {"log_odds"}


def test_explain_prints_the_largest_contributions_or_json(
    serving_project: ServingProject, cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sp = serving_project
    source = tmp_path / "rows.csv"
    _rows(sp, 2).to_csv(source, index=False)
    ran = cli("explain", sp.second, source, cwd=sp.root)
    assert ran.code == 0, ran.err
    assert "row 0: prediction" in ran.out and "log_odds" in ran.out and "(2 more)" in ran.out
    ran = cli("explain", sp.second, source, "--json", cwd=sp.root)
    body = json.loads(ran.out)
    assert body["version"] == sp.second and len(body["explanations"]) == 2
    first = body["explanations"][0]
    assert first["base_value"] + sum(first["contributions"].values()) == pytest.approx(first["output"])


def test_explain_refuses_bad_input_with_one_line_and_exit_2(
    serving_project: ServingProject, cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sp = serving_project
    bad = _rows(sp, 3).astype({"x1": object})
    bad.loc[bad.index[2], "x1"] = "lots"
    source = tmp_path / "bad.jsonl"
    bad.to_json(source, orient="records", lines=True, date_format="iso")
    ran = cli("explain", sp.second, source, cwd=sp.root)
    assert ran.code == 2
    assert "row 2 cannot be explained" in ran.err and "x1" in ran.err

    empty = tmp_path / "empty.csv"
    empty.write_text(",".join(sp.features) + "\n")
    ran = cli("explain", sp.second, empty, cwd=sp.root)
    assert ran.code == 2 and "has no rows to explain" in ran.err

    ran = cli("explain", 99, empty, cwd=sp.root)
    assert ran.code == 2 and "99" in ran.err

    ran = cli("explain", sp.second, tmp_path / "missing.csv", cwd=sp.root)
    assert ran.code == 2 and "does not exist" in ran.err

    ran = cli("explain", sp.second, empty, "-o", tmp_path / "out.xlsx", cwd=sp.root)
    assert ran.code == 2 and "format is not known" in ran.err
