"""Hostile or mistaken assay.yaml, encodings, store URLs and predict paths: exit 2, one line."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

HEAD = "task: binary\ndata:\n  source: data.csv\n  target: target\n"

BOMB = 'l0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"l{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10)
)

CASES = [
    ("alias bomb", HEAD + BOMB, "assay.yaml, line 6, column 10: aliases are not supported"),
    ("deep nesting", HEAD + "x: " + "[" * 20_000 + "]" * 20_000 + "\n",
     "assay.yaml, line 5, column 54: values are nested more than 50 levels deep"),
    ("duplicate key", HEAD + "task: regression\n",
     "assay.yaml, line 5, column 1: key 'task' appears twice (lines 1 and 5)"),
    ("infinite latency", HEAD + "serving:\n  latency_p99_ms: .inf\n",
     "assay.yaml, line 6: serving.latency_p99_ms: must be a finite number, got inf"),
    ("unknown encoding", HEAD + "  encoding: klingon\n",
     "assay.yaml, line 5: data.encoding: unknown text encoding 'klingon'"),
    ("wrong encoding", HEAD + "  encoding: utf-16\n",
     "data.csv: data.encoding: is not valid utf-16 text. data.encoding is 'utf-16': set it to"),
    ("unknown store scheme", HEAD + "store:\n  url: foo://host/db\n",
     "store.url: the store runs on SQLite or PostgreSQL (sqlite:// or postgresql://), not 'foo'"),
    ("unknown store driver", HEAD + "store:\n  url: postgresql+nodriver://u:pw@host/db\n",
     "store.url: SQLAlchemy has no driver 'nodriver' for postgresql"),
]


@pytest.mark.parametrize(("name", "yaml_text", "match"), CASES, ids=[c[0] for c in CASES])
def test_unusable_project_exits_2_with_one_short_line(
    cli, tmp_path: Path, clean_frame: pd.DataFrame, name: str, yaml_text: str, match: str
) -> None:
    clean_frame.head(200).to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "assay.yaml").write_text(yaml_text, encoding="utf-8")
    command = "models" if "store" in name else "audit"
    result = cli(command, cwd=tmp_path)
    assert result.code == 2, (result.out, result.err[:2000])
    assert match in result.err, result.err[:2000]
    assert "Traceback" not in result.err + result.out
    assert len(result.err.strip().splitlines()) == 1, result.err[:2000]
    assert len(result.err) < 400
    assert "pw@" not in result.err


@pytest.fixture
def project(tmp_path: Path, clean_frame: pd.DataFrame) -> Path:
    clean_frame.head(200).to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "assay.yaml").write_text(HEAD, encoding="utf-8")
    clean_frame.head(20).drop(columns="target").to_csv(tmp_path / "in.csv", index=False)
    return tmp_path


@pytest.mark.parametrize("spelling", ["in.csv", "./in.csv", "sub/../in.csv", "{abs}"])
def test_predict_refuses_to_write_over_its_input(cli, project: Path, spelling: str) -> None:
    (project / "sub").mkdir()
    before = (project / "in.csv").read_bytes()
    target = spelling.format(abs=project / "in.csv")
    result = cli("predict", "in.csv", "-o", target, cwd=project)
    assert result.code == 2, (result.out, result.err)
    assert "is the input file; writing the predictions there would replace" in result.err
    assert "Write elsewhere, e.g. -o in.predictions.csv" in result.err
    assert (project / "in.csv").read_bytes() == before


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_predict_refuses_a_link_to_its_input(cli, project: Path, link: str) -> None:
    before = (project / "in.csv").read_bytes()
    alias = project / "alias.csv"
    if link == "symlink":
        alias.symlink_to(project / "in.csv")
    else:
        os.link(project / "in.csv", alias)
    result = cli("predict", "in.csv", "-o", "alias.csv", cwd=project)
    assert result.code == 2, (result.out, result.err)
    assert "alias.csv: is the input file" in result.err
    assert (project / "in.csv").read_bytes() == before
    assert alias.read_bytes() == before


def test_predict_to_another_file_gets_past_the_check(cli, project: Path) -> None:
    # no model is registered yet: the refusal comes from the registry, not the path check
    result = cli("predict", "in.csv", "-o", "out.csv", cwd=project)
    assert result.code == 2
    assert "is the input file" not in result.err
