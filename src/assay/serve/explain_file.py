"""``assay explain``: per-row contributions of a version for the rows of a file.

The rows are read and validated as ``assay predict`` reads them; any refused row stops
the run naming the row, column and reason. The output holds, per row, the prediction,
the model's output and its base value, and one ``contribution_<feature>`` column per
input feature (``base_value + sum(contributions) == output``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from assay.errors import ConfigError, DataError
from assay.model.explained import ExplainedRow, VersionExplainer
from assay.model.loaded import LoadedModel
from assay.registry import ModelRegistry
from assay.serve.batch import FORMATS, load_model_for_batch, read_records

__all__ = ["ExplainedFile", "explain_file", "explained_frame"]


@dataclass(frozen=True)
class ExplainedFile:
    """What ``assay explain`` did: the version, the rows explained, where they went.

    ``rows`` holds each row's prediction and contributions when no output file was asked for.
    """

    version: int
    count: int
    output: str | None
    seconds: float
    rows: tuple[ExplainedRow, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {"version": self.version, "rows": self.count, "output": self.output,
                "seconds": self.seconds,
                "explanations": [row.to_dict() for row in self.rows]}


def explain_file(
    registry: ModelRegistry, version: int | None, source: Path, output: Path | None = None
) -> ExplainedFile:
    """Explain every row of ``source`` with ``version`` (default: the champion).

    Raises:
        NoExplainer: the version's family has no per-row explainer.
        DataError: the file is missing, unreadable, empty, or a row fails validation.
    """
    started = time.perf_counter()
    source = Path(source)
    if output is not None:
        _check_output(source, Path(output))
    model = load_model_for_batch(registry, version)
    explainer = VersionExplainer.load(registry, model)
    records = read_records(source, model.text_column)
    if not records:
        raise DataError("the input file has no rows to explain", path=str(source),
                        fix="Pass a file with at least one record.")
    batch = explainer.validate(records)
    if batch.errors:
        first = batch.errors[0]
        more = len({e.index for e in batch.errors}) - 1
        raise DataError(
            f"row {first.index} cannot be explained: {first.reason}"
            + (f" ({more} more row(s) too)" if more > 0 else ""),
            path=str(source), column=first.field or None,
            fix="Fix the row (it is validated as `assay predict` validates it) and run again.",
        )
    rows = explainer.explain(batch)
    if output is None:
        return ExplainedFile(model.version, len(rows), None, time.perf_counter() - started,
                             tuple(rows))
    frame = explained_frame(model, rows)
    _write(frame, Path(output))
    return ExplainedFile(model.version, len(rows), str(output), time.perf_counter() - started)


def explained_frame(model: LoadedModel, rows: list[ExplainedRow]) -> pd.DataFrame:
    """One line per row: ``row``, ``prediction``, ``output``, ``output_space``,
    ``output_class``, ``base_value``, then ``contribution_<feature>`` per input feature."""
    lines = []
    for i, row in enumerate(rows):
        explanation = row.explanation
        line: dict[str, Any] = {
            "row": i,
            "prediction": row.prediction.prediction,
            "output": explanation.output,
            "output_space": explanation.output_space,
            "output_class": explanation.output_class,
            "base_value": explanation.base_value,
        }
        for feature in model.features:
            line[f"contribution_{feature}"] = explanation.contributions[feature]
        lines.append(line)
    frame = pd.DataFrame(lines)
    for column in ("prediction", "output_class"):
        if column in frame and frame[column].map(type).nunique() > 1:
            frame[column] = frame[column].astype(str)  # one Parquet type per column
    return frame


def _check_output(source: Path, output: Path) -> None:
    if output.suffix.lower() not in FORMATS:
        raise DataError("the output file's format is not known from its name", path=str(output),
                        expected="a name ending in " + ", ".join(FORMATS),
                        received=output.suffix or "no suffix",
                        fix="Name it .parquet, .csv or .jsonl.")
    if not output.parent.is_dir():
        raise DataError("the output folder does not exist", path=str(output.parent),
                        fix="Create it first, or write elsewhere with -o.")
    if output.resolve() == source.resolve():
        raise ConfigError("is the input file; writing the explanations there would replace the "
                          "records", key="--output", where=str(output),
                          fix=f"Write elsewhere, e.g. -o {source.stem}.explained{source.suffix}.")


def _write(frame: pd.DataFrame, output: Path) -> None:
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        suffix = output.suffix.lower()
        if suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        elif suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_json(tmp, orient="records", lines=True)
        tmp.replace(output)
    finally:
        tmp.unlink(missing_ok=True)
