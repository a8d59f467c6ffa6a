"""Batch scoring: files in chunks and JSON lines, validated like the server, equal to the model's own scores."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from assay.errors import DataError, NotFoundError
from assay.serve.batch import BatchResult, load_model_for_batch, predict_file, predict_stream

from .conftest import ServingProject


def _inputs(sp: ServingProject, n: int = 120) -> pd.DataFrame:
    return sp.frame.iloc[:n][sp.features].reset_index(drop=True)


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_file_scores_equal_the_pipeline_in_every_chunk(serving_project: ServingProject, tmp_path: Path,
                                                       suffix: str) -> None:
    sp = serving_project
    frame = _inputs(sp)
    source = tmp_path / f"in{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(source)
    elif suffix == ".csv":
        frame.to_csv(source, index=False)
    else:
        frame.to_json(source, orient="records", lines=True, date_format="iso")
    ticks: list[tuple[int, int | None]] = []
    output = tmp_path / f"out{suffix}"
    result = predict_file(sp.registry, source, output, chunk_size=50, progress=lambda d, t: ticks.append((d, t)))
    assert (result.rows, result.scored, result.refused, result.version) == (120, 120, 0, sp.champion)
    assert [d for d, _ in ticks] == [50, 100, 120] and ticks[-1][1] == 120
    out = (pd.read_parquet(output) if suffix == ".parquet" else pd.read_csv(output) if suffix == ".csv"
           else pd.read_json(output, lines=True))
    assert list(out.columns[: len(sp.features)]) == sp.features
    expected = sp.registry.load_model(sp.champion).predict_proba(frame)[:, 1]
    assert out["probability_1"].to_numpy() == pytest.approx(expected, abs=1e-9)
    assert set(out["model_version"]) == {sp.champion}
    assert BatchResult.from_dict(result.to_dict()) == BatchResult.from_dict(result.to_dict())


def test_an_invalid_row_stops_the_run_naming_row_and_column(serving_project: ServingProject,
                                                            tmp_path: Path) -> None:
    sp = serving_project
    frame = _inputs(sp, 30)
    frame["count"] = frame["count"].astype(str)  # numbers as text are read like the server reads them
    frame.loc[17, "count"] = "many"
    source = tmp_path / "in.parquet"
    frame.to_parquet(source)
    output = tmp_path / "out.parquet"
    with pytest.raises(DataError, match="column 'count': row 17 cannot be scored.*--skip-invalid"):
        predict_file(sp.registry, source, output, chunk_size=10)
    assert not output.exists() and not list(tmp_path.glob(".out.parquet*"))  # no partial file

    result = predict_file(sp.registry, source, output, chunk_size=10, skip_invalid=True)
    assert (result.scored, result.refused) == (29, 1)
    out = pd.read_parquet(output)
    assert pd.isna(out.loc[17, "prediction"]) and "count" in out.loc[17, "error"]
    assert out["error"].isna().sum() == 29


def test_flags_and_version_choice(serving_project: ServingProject, tmp_path: Path) -> None:
    sp = serving_project
    frame = _inputs(sp, 10)
    frame.loc[3, "plan"] = "enterprise"
    source = tmp_path / "in.parquet"
    frame.to_parquet(source)
    result = predict_file(sp.registry, source, tmp_path / "out.parquet", version=sp.second)
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert result.version == sp.second and set(out["model_version"]) == {sp.second}
    assert result.flagged == 1 and out.loc[3, "flags"] == "unknown_category"


def test_file_errors(serving_project: ServingProject, tmp_path: Path) -> None:
    sp = serving_project
    with pytest.raises(DataError, match="format is not known from its name.*\\.parquet, \\.csv, \\.jsonl"):
        predict_file(sp.registry, tmp_path / "in.xlsx", tmp_path / "out.parquet")
    with pytest.raises(DataError, match="the input file does not exist"):
        predict_file(sp.registry, tmp_path / "missing.parquet", tmp_path / "out.parquet")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="cannot be read"):
        predict_file(sp.registry, tmp_path / "broken.parquet", tmp_path / "out.parquet")
    with pytest.raises(NotFoundError, match="model version 99 does not exist"):
        load_model_for_batch(sp.registry, 99)


def test_input_file_errors_name_the_line(serving_project: ServingProject, tmp_path: Path) -> None:
    sp = serving_project
    good = [orjson.dumps(r).decode() for r in sp.records(3)]
    out = tmp_path / "out.parquet"
    (tmp_path / "bad.jsonl").write_text("\n".join([good[0], "", good[1], '{"x1": 1,', good[2]]))
    with pytest.raises(DataError, match="line 4 is not valid JSON .*got the line '\\{\"x1\": 1,'.*"
                       "one JSON object per line") as info:
        predict_file(sp.registry, tmp_path / "bad.jsonl", out)
    assert info.value.path == str(tmp_path / "bad.jsonl") and info.value.fields["line"] == 4
    (tmp_path / "array.jsonl").write_text(good[0] + "\n[1, 2, 3]\n")
    with pytest.raises(DataError, match="line 2 holds an array, not a JSON object"):
        predict_file(sp.registry, tmp_path / "array.jsonl", out)
    frame = _inputs(sp, 5)
    frame.to_csv(tmp_path / "ragged.csv", index=False)
    lines = (tmp_path / "ragged.csv").read_text().splitlines()
    lines[3] += ",extra"
    (tmp_path / "ragged.csv").write_text("\n".join(lines) + "\n")
    width = len(frame.columns)
    with pytest.raises(DataError, match=f"ragged.csv: has a ragged row at line 4: {width + 1} fields "
                       f"where the header has {width}.*got the row '.*,extra'"):
        predict_file(sp.registry, tmp_path / "ragged.csv", out)
    assert not out.exists()


def test_stream_answers_each_line_in_order(serving_project: ServingProject) -> None:
    sp = serving_project
    records = sp.records(5)
    lines = [orjson.dumps(r) for r in records[:2]] + [b"{broken", b"", orjson.dumps({"x1": "abc"})]
    lines += [b'"just text"'] + [orjson.dumps(r) for r in records[2:]]
    written: list[str] = []
    result = predict_stream(sp.registry, lines, written.append, chunk_size=3)
    out = [orjson.loads(line) for line in written]
    assert len(out) == 8 and (result.scored, result.refused, result.rows) == (5, 3, 8)
    assert out[2]["error"] == "invalid_json" and "line 3 is not valid JSON" in out[2]["message"]
    assert "'{broken'" in out[2]["message"] and out[2]["details"] == [{"line": 3}]
    assert out[3]["error"] == "invalid_record" and out[3]["message"].startswith("line 5 refused")
    assert out[4]["error"] == "invalid_json"
    assert out[4]["message"].startswith("line 6 holds a string, not a JSON object")
    expected = sp.registry.load_model(sp.champion).predict_proba(sp.frame.iloc[:5][sp.features])[:, 1]
    scored = [o for o in out if "error" not in o]
    assert [o["probabilities"]["1"] for o in scored] == pytest.approx(expected.tolist(), abs=1e-9)
    assert {o["version"] for o in scored} == {sp.champion}


def test_cli_predict_file_and_stdin(serving_project: ServingProject, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from assay.cli.app import app, main
    from assay.cli.serve import register_serve_commands

    if "predict" not in {c.name for c in app.registered_commands}:
        register_serve_commands(app)
    sp = serving_project
    monkeypatch.chdir(sp.root)
    _inputs(sp, 20).to_parquet(sp.root / "in.parquet")

    def run(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["assay", *args])
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    code, out, _ = run("predict", "in.parquet", "-o", "out.parquet", "--json")
    assert code == 0 and orjson.loads(out)["scored"] == 20
    assert len(pd.read_parquet(sp.root / "out.parquet")) == 20
    code, out, err = run("predict", "--stdin", stdin=b"\n".join(orjson.dumps(r) for r in sp.records(3)))
    answers: list[dict[str, Any]] = [orjson.loads(line) for line in out.splitlines()]
    assert code == 0 and len(answers) == 3 and all(a["version"] == sp.champion for a in answers)
    assert "3 scored, 0 refused" in err
    code, _, err = run("predict", "missing.parquet")
    assert code == 2 and "the input file does not exist" in err
    (sp.root / "bad.jsonl").write_text(orjson.dumps(sp.records(1)[0]).decode() + "\n{oops\n")
    code, _, err = run("predict", "bad.jsonl", "-o", "out.jsonl")
    assert code == 2 and "bad.jsonl: line 2 is not valid JSON" in err and "Traceback" not in err
    # a field holding a number in one record and text in another: named, with the record
    first, second = sp.records(2)
    column = next(k for k, v in first.items() if isinstance(v, (int, float)) and not isinstance(v, bool))
    mixed = [first, {**second, column: "oops"}]
    (sp.root / "mixed.jsonl").write_text("\n".join(orjson.dumps(r).decode() for r in mixed) + "\n")
    code, _, err = run("predict", "mixed.jsonl", "-o", "out.jsonl")
    flat = " ".join(err.split())
    assert code == 2 and "Traceback" not in err, err
    assert f"column '{column}' mixes kinds of values: record 2 holds 'oops' (a string)" in flat, flat


def test_a_served_model_accepts_its_declared_columns(serving_project: ServingProject) -> None:
    model = load_model_for_batch(serving_project.registry)
    assert model.passthrough == ("y",)  # the target; the serving project declares no id or time
    batch = model.validate([{**serving_project.records(1)[0], "y": 1}])
    assert batch.ok and batch.flags == ((),)
