"""Reading assay.yaml and checking it against the data it describes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from assay.config.metrics import CLASSIFICATION_TASKS
from assay.config.safe_yaml import YamlDocument, clip, dotted, read_yaml
from assay.config.spec import ProjectSpec
from assay.errors import ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MIN_ROWS", "check_spec_against_data", "load_spec", "parse_spec"]

#: fewer rows than this cannot be audited, split or evaluated meaningfully
MIN_ROWS = 10
#: a classification target with more distinct values than this looks continuous
MAX_CLASSES = 50


def load_spec(path: str | Path) -> ProjectSpec:
    """Read and validate an assay.yaml file.

    The YAML is read within bounds (:mod:`assay.config.safe_yaml`): no aliases, no
    duplicate keys, limited size and nesting; every error names the file and line.
    """
    document = read_yaml(path)
    raw = document.data
    origin = document.origin
    if raw is None:
        raise ConfigError(
            "is empty", where=origin, fix="Run 'assay init' to write a framing document."
        )
    if not isinstance(raw, dict):
        raise ConfigError(
            "must be a mapping of keys (task, data, ...)",
            where=origin,
            received=type(raw).__name__,
            fix="Start from the file 'assay init' writes.",
        )
    return _validate(document)


def parse_spec(raw: dict[str, Any], origin: str = "assay.yaml") -> ProjectSpec:
    """Validate a mapping as a :class:`ProjectSpec`, raising :class:`ConfigError`."""
    return _validate(YamlDocument(raw, origin))


def _validate(document: YamlDocument) -> ProjectSpec:
    try:
        return ProjectSpec.model_validate(document.data)
    except ValidationError as exc:
        raise _to_config_error(exc, document) from None


#: problems listed in one message; the rest are counted
_SHOWN_PROBLEMS = 3
#: pydantic names the member of a union (``str | float``) as the last part of the location
_UNION_MEMBER = re.compile(r"^(str|int|float|bool|none|(list|dict|function-\w+)\[.*\])$")


def _to_config_error(exc: ValidationError, document: YamlDocument) -> ConfigError:
    by_key: dict[str, str] = {}
    first_loc: tuple[Any, ...] | None = None
    for err in exc.errors():
        loc: tuple[Any, ...] = tuple(err["loc"])
        ctx_error = (err.get("ctx") or {}).get("error")
        message = str(ctx_error) if ctx_error is not None else err["msg"]
        if ctx_error is not None and hasattr(ctx_error, "loc"):
            loc = loc + tuple(ctx_error.loc)
        kind = err["type"]
        received = clip(repr(err.get("input")))
        if kind == "extra_forbidden":
            valid = _fields_at(ProjectSpec, loc[:-1])
            message = "unknown key" + (f"; valid keys here: {', '.join(valid)}" if valid else "")
        elif kind == "missing":
            message = "is required"
        elif kind in ("literal_error", "enum"):
            expected = (err.get("ctx") or {}).get("expected")
            message = f"is {received}; valid: {expected}"
        elif kind == "finite_number":
            message = f"must be a finite number, got {received}"
        elif kind.endswith("_type") or kind.endswith("_parsing"):
            message = f"{err['msg'].lower()}, got {received}"
        elif message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if len(loc) > 1 and isinstance(loc[-1], str) and _UNION_MEMBER.match(loc[-1]):
            loc = loc[:-1]
        if first_loc is None:
            first_loc = loc
        key = clip(dotted(loc))
        if key in by_key:
            by_key[key] += f", or {clip(message, 240)}"
        else:
            by_key[key] = clip(message, 240)
    problems = [f"{key}: {message}" for key, message in by_key.items()]
    shown = problems[:_SHOWN_PROBLEMS]
    extra = ""
    if len(problems) > 1:
        hidden = len(problems) - len(shown)
        more = "; ".join(shown[1:]) + (f"; ...{hidden} not shown" if hidden else "")
        extra = f" (and {len(problems) - 1} more: {more})"
    loc = first_loc or ()
    mark = document.locate(loc)
    return ConfigError(
        f"{shown[0]}{extra}",
        key=dotted(loc),
        where=document.where(loc),
        line=mark[0] if mark else None,
    )


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        current = field.annotation
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def check_spec_against_data(spec: ProjectSpec, frame: pd.DataFrame, origin: str = "data") -> None:
    """Check that every column the spec names exists and the target fits the task.

    Raises :class:`ConfigError` for a missing column (naming the key path and the
    available columns) and :class:`DataError` for an unusable target.
    """
    columns = list(frame.columns)
    shown = ", ".join(columns[:30]) + (", ..." if len(columns) > 30 else "")
    named: list[tuple[str, str]] = [("data.target", spec.data.target)]
    for key in ("id", "time", "group", "text"):
        value = getattr(spec.data, key)
        if value is not None:
            named.append((f"data.{key}", value))
    named += [(f"data.drop[{i}]", c) for i, c in enumerate(spec.data.drop)]
    named += [(f"slices[{i}]", c) for i, c in enumerate(spec.slices)]
    named += [(f"fairness.protected[{i}]", c) for i, c in enumerate(spec.fairness.protected)]
    for key, column in named:
        if column not in frame.columns:
            raise ConfigError(
                f"column '{column}' is not in {origin}",
                key=key,
                expected=f"one of: {shown}",
                fix="Correct the column name in assay.yaml (names are case-sensitive).",
            )
    if len(frame) < MIN_ROWS:
        raise DataError(
            f"has {len(frame)} row{'s' if len(frame) != 1 else ''}; assay needs at least {MIN_ROWS}",
            path=origin,
            fix="Provide more labelled rows.",
        )
    from assay.data.values import native  # with the data: loading a spec needs no pandas

    for key, column in named:
        if key.startswith(("slices", "fairness.protected")):
            levels = frame[column].dropna().unique()
            if len(levels) < 2:
                first = native(levels[0]) if len(levels) else None
                shown_level = repr(first if first is not None else levels[0]) if len(levels) else "none"
                raise ConfigError(
                    f"column '{column}' has a single level ({shown_level}), so it cannot be sliced",
                    key=key,
                    expected="a column with at least two levels",
                    fix="Remove it from assay.yaml, or check the data filter.",
                )
    target = spec.data.target
    if target in (spec.data.id, spec.data.time, spec.data.group) or target in spec.data.drop:
        raise ConfigError(
            f"column '{target}' is the target and also has another role",
            key="data.target",
            fix="A target cannot be an id, time, group or dropped column.",
        )
    check_target(spec.task, frame[target], origin=origin, column=target)


def check_target(task: str, series: pd.Series, origin: str, column: str) -> None:
    """Raise :class:`DataError` if ``series`` cannot be the target of ``task``."""
    values = series.dropna()
    if values.empty:
        raise DataError(
            "the target is empty in every row",
            path=origin,
            column=column,
            fix="Point data.target at the labelled column.",
        )
    from assay.data.values import native

    distinct = [native(v) for v in values.unique()]
    if len(distinct) < 2:
        raise DataError(
            f"the target has a single value ({distinct[0]!r}); there is nothing to predict",
            path=origin,
            column=column,
            fix="Check the target column and the data filter: a model needs at least two outcomes.",
        )
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    numeric = is_numeric_dtype(values) and not is_bool_dtype(values)
    sample = ", ".join(repr(v) for v in list(distinct[:6])) + (", ..." if len(distinct) > 6 else "")
    if task == "binary" and len(distinct) != 2:
        hint = (
            "task: regression"
            if numeric and len(distinct) > MAX_CLASSES
            else "task: multiclass"
        )
        raise DataError(
            f"task is binary but the target has {len(distinct)} distinct values ({sample})",
            path=origin,
            column=column,
            expected="exactly 2 values",
            fix=f"Set {hint} in assay.yaml, or binarise the target (e.g. value > threshold).",
        )
    if task in ("multiclass", "text-classification"):
        if numeric and len(distinct) > MAX_CLASSES:
            raise DataError(
                f"task is {task} but the target looks continuous: {len(distinct)} distinct "
                f"numbers ({sample})",
                path=origin,
                column=column,
                expected=f"at most {MAX_CLASSES} classes",
                fix="Set task: regression, or bin the target into classes.",
            )
        if task == "multiclass" and len(distinct) == 2:
            raise DataError(
                f"task is multiclass but the target has 2 values ({sample})",
                path=origin,
                column=column,
                fix="Set task: binary.",
            )
    if task == "regression":
        if not numeric:
            raise DataError(
                f"task is regression but the target is not numeric ({sample})",
                path=origin,
                column=column,
                expected="numbers",
                fix="Set task: binary or multiclass, or convert the target to numbers.",
            )
        if len(distinct) <= 2:
            raise DataError(
                f"task is regression but the target has only {len(distinct)} values ({sample})",
                path=origin,
                column=column,
                fix="Set task: binary.",
            )
    if task in CLASSIFICATION_TASKS:
        return
