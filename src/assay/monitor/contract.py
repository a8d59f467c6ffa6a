"""The whole contract on live traffic: every acceptance threshold, every fairness limit and
the latency objective, judged on the labelled predictions of a monitoring window.

What is judged, and on which rows:

* **acceptance**: each ``acceptance`` threshold of assay.yaml on the live value of its
  metric, over the labelled predictions (feedback joined to the log), with the bootstrap
  interval :func:`~assay.monitor.performance.live_performance` computed;
* **fairness**: each ``fairness.limits`` entry on each ``fairness.protected`` attribute
  (read from the logged inputs, where a protected column that is not a feature is passed
  through). The equalized-odds difference needs the true labels, so it is judged on the
  labelled predictions; the demographic-parity difference and the disparate-impact ratio
  only compare decisions, so they are judged on every answered prediction. Only groups
  with at least ``fairness.min_slice_size`` rows are compared (a smaller group's rate is
  noise); the interval is a percentile bootstrap over the rows;
* **latency**: the 99th percentile of the logged latency of the server's requests (one
  value per request; batch scoring is not a request and is left out) against
  ``serving.latency_p99_ms``, with a bootstrap interval.

The rule (one for all three): a criterion is a **breach** only when the *whole* interval
lies on the failing side of the threshold - for ``>= t`` the interval's upper bound is
below ``t``; for ``<= t`` its lower bound is above ``t`` (strict comparisons alike). A
point estimate that fails while the interval still reaches the threshold is
**inconclusive**: reported, never alerted, because with the rows at hand it could be
noise. Too few rows (``monitoring.min_labels`` labelled predictions, two groups of
``fairness.min_slice_size``, :data:`MIN_LATENCY_REQUESTS` requests) is **not judged**,
never a breach.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from assay.config.metrics import CLASSIFICATION_TASKS
from assay.config.spec import AcceptanceThreshold, ProjectSpec, parse_threshold
from assay.errors import ConfigError
from assay.evaluate.inputs import level_labels
from assay.monitor.alerts import AlertDraft, AlertKind
from assay.monitor.performance import LivePerformance, coerce_labels
from assay.registry import ModelVersion

__all__ = [
    "CHECK_KINDS",
    "CHECK_STATUSES",
    "MIN_LATENCY_REQUESTS",
    "CheckKind",
    "CheckStatus",
    "ContractCheck",
    "ContractReport",
    "acceptance_checks",
    "breach_drafts",
    "fairness_checks",
    "judge",
    "judge_contract",
    "latency_check",
    "protected_values",
]

CheckKind = Literal["acceptance", "fairness", "latency"]
CheckStatus = Literal["met", "inconclusive", "breach", "not_judged"]
#: every kind of contract check
CHECK_KINDS: tuple[str, ...] = ("acceptance", "fairness", "latency")
#: every verdict of a contract check
CHECK_STATUSES: tuple[str, ...] = ("met", "inconclusive", "breach", "not_judged")
#: requests needed before the logged p99 latency is judged (fewer: the p99 is the maximum)
MIN_LATENCY_REQUESTS = 100
_FAIRNESS_NEEDS_LABELS = frozenset({"equalized_odds_difference"})
_CONFIDENCE = 0.95


@dataclass(frozen=True)
class ContractCheck:
    """One criterion of the contract judged on live traffic.

    Attributes:
        kind: acceptance | fairness | latency.
        metric: the metric, the fairness limit or ``latency_p99_ms``.
        threshold: the criterion as written (``">= 0.8"``).
        observed: the live value (None when it could not be computed).
        interval: its 95 % bootstrap interval ``[low, high]``.
        n: the rows it was computed on (labelled predictions, answered predictions or
            requests).
        status: met | inconclusive | breach | not_judged (see the module doc).
        attribute: the protected attribute of a fairness check.
        note: why it was not judged, or what was left out.
    """

    kind: CheckKind
    metric: str
    threshold: str
    observed: float | None
    interval: list[float] | None
    n: int
    status: CheckStatus
    attribute: str | None = None
    note: str = ""

    @property
    def breached(self) -> bool:
        """True when the criterion is failed beyond noise."""
        return self.status == "breach"

    @property
    def label(self) -> str:
        """The criterion in words: ``recall >= 0.8`` or ``demographic_parity_difference[sex] <= 0.1``."""
        name = f"{self.metric}[{self.attribute}]" if self.attribute else self.metric
        return f"{name} {self.threshold}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "kind": self.kind,
            "metric": self.metric,
            "threshold": self.threshold,
            "observed": self.observed,
            "interval": list(self.interval) if self.interval is not None else None,
            "n": self.n,
            "status": self.status,
            "attribute": self.attribute,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ContractCheck:
        """The inverse of :meth:`to_dict`."""
        interval = data.get("interval")
        observed = data.get("observed")
        attribute = data.get("attribute")
        return cls(
            kind=data["kind"],
            metric=str(data["metric"]),
            threshold=str(data["threshold"]),
            observed=float(observed) if observed is not None else None,
            interval=[float(x) for x in interval] if interval is not None else None,
            n=int(data.get("n", 0)),
            status=data["status"],
            attribute=str(attribute) if attribute is not None else None,
            note=str(data.get("note", "")),
        )


@dataclass(frozen=True)
class ContractReport:
    """Every contract check of one monitoring pass."""

    checks: tuple[ContractCheck, ...] = ()

    @property
    def breaches(self) -> tuple[ContractCheck, ...]:
        """The checks failed beyond noise."""
        return tuple(c for c in self.checks if c.breached)

    def judged(self, kind: str) -> bool:
        """True when at least one check of ``kind`` had enough rows to be judged."""
        return any(c.kind == kind and c.status != "not_judged" for c in self.checks)

    def of_kind(self, kind: str) -> tuple[ContractCheck, ...]:
        """The checks of ``kind``."""
        return tuple(c for c in self.checks if c.kind == kind)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "checks": [c.to_dict() for c in self.checks],
            "breaches": len(self.breaches),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ContractReport:
        """The inverse of :meth:`to_dict` (an empty report for reports stored before it)."""
        if not data:
            return cls()
        return cls(tuple(ContractCheck.from_dict(c) for c in data.get("checks", [])))


# -- the rule -----------------------------------------------------------------------


def judge(
    threshold: AcceptanceThreshold, observed: float | None, interval: Sequence[float] | None
) -> CheckStatus:
    """``met``, ``inconclusive`` or ``breach`` of one criterion (see the module doc).

    The most favourable end of the interval decides a breach: the upper bound for
    ``>=``/``>``, the lower bound for ``<=``/``<``. Without a value it is ``not_judged``;
    without an interval the point estimate can only be ``met`` or ``inconclusive``.
    """
    if observed is None or not np.isfinite(observed):
        return "not_judged"
    if threshold.holds(observed):
        return "met"
    if interval is None:
        return "inconclusive"
    best = max(interval) if threshold.op in (">=", ">") else min(interval)
    return "inconclusive" if threshold.holds(best) else "breach"


def _parse(raw: str, key: str) -> AcceptanceThreshold:
    try:
        return parse_threshold(raw)
    except ValueError as exc:
        raise ConfigError(
            str(exc), key=key, expected="a comparison such as '>= 0.80'", received=raw,
            fix="Write the threshold as an operator and a number.",
        ) from None


# -- acceptance ---------------------------------------------------------------------


def acceptance_checks(
    acceptance: Mapping[str, str], performance: LivePerformance
) -> list[ContractCheck]:
    """Each acceptance threshold on the live metrics of ``performance`` (computed with
    their bootstrap intervals on the labelled predictions)."""
    out: list[ContractCheck] = []
    n = performance.n_labelled
    for name, raw in acceptance.items():
        threshold = _parse(raw, f"acceptance.{name}")
        observed = performance.metrics.get(name)
        interval = performance.intervals.get(name)
        if n < performance.min_labels:
            out.append(ContractCheck(
                "acceptance", name, str(threshold), observed, interval, n, "not_judged",
                note=f"{n} labelled prediction(s), needs {performance.min_labels} "
                "(monitoring.min_labels)",
            ))
            continue
        if observed is None:
            out.append(ContractCheck(
                "acceptance", name, str(threshold), None, None, n, "not_judged",
                note=f"{name} is not defined on the labelled predictions (e.g. one class only, "
                "or no logged probabilities)",
            ))
            continue
        out.append(ContractCheck(
            "acceptance", name, str(threshold), float(observed), interval, n,
            judge(threshold, float(observed), interval),
        ))
    return out


# -- fairness -----------------------------------------------------------------------


def fairness_checks(
    limits: Mapping[Any, str],
    protected: Mapping[str, Sequence[Any]],
    *,
    task: str,
    classes: Sequence[Any] | None,
    predictions: Sequence[Any],
    labels: Sequence[Any],
    min_group: int,
    min_labels: int,
    n_boot: int = 200,
    seed: int = 0,
) -> list[ContractCheck]:
    """Each fairness limit on each protected attribute (see the module doc).

    Args:
        limits: ``fairness.limits`` (limit name -> ``"<= 0.1"``).
        protected: attribute -> its value on each answered prediction (None where the
            logged record did not carry it).
        task: the task (fairness is judged for classification only).
        classes: the model's classes; the positive class of a binary task is the second.
        predictions: the logged prediction of each row.
        labels: the feedback label of each row (None without one).
        min_group: the fewest rows of a group that is compared (``fairness.min_slice_size``).
        min_labels: the fewest labelled rows a label-based limit needs.
    """
    out: list[ContractCheck] = []
    if not limits:
        return out
    parsed = {str(name): _parse(raw, f"fairness.limits.{name}") for name, raw in limits.items()}
    if task not in CLASSIFICATION_TASKS:
        for name, threshold in parsed.items():
            out.append(ContractCheck("fairness", name, str(threshold), None, None, 0, "not_judged",
                                     note="fairness limits apply to classification only"))
        return out
    if not protected:
        for name, threshold in parsed.items():
            out.append(ContractCheck(
                "fairness", name, str(threshold), None, None, 0, "not_judged",
                note="no protected attribute is logged; name them in fairness.protected and send "
                "them with the records",
            ))
        return out
    y_pred, pred_ok = coerce_labels(list(predictions), task, classes)
    y_true, true_ok = coerce_labels(list(labels), task, classes)
    rng_seed = int(seed)
    for attribute, values in protected.items():
        series = pd.Series(list(values), dtype=object)
        present = pred_ok & series.notna().to_numpy()
        for name, threshold in parsed.items():
            needs_labels = name in _FAIRNESS_NEEDS_LABELS
            rows = present & true_ok if needs_labels else present
            n = int(rows.sum())
            if needs_labels and n < min_labels:
                out.append(ContractCheck(
                    "fairness", name, str(threshold), None, None, n, "not_judged", attribute,
                    note=f"{n} labelled prediction(s) carry '{attribute}', needs {min_labels} "
                    "(monitoring.min_labels)",
                ))
                continue
            groups, _, _ = level_labels(series[rows].reset_index(drop=True))
            codes, names = pd.factorize(groups.to_numpy(dtype=object))
            counts = np.bincount(codes, minlength=len(names)) if len(codes) else np.zeros(0, int)
            reliable = counts >= min_group
            if int(reliable.sum()) < 2:
                out.append(ContractCheck(
                    "fairness", name, str(threshold), None, None, n, "not_judged", attribute,
                    note=f"fewer than two groups of '{attribute}' have {min_group} rows "
                    f"(fairness.min_slice_size); sizes: "
                    + ", ".join(f"{g}={int(c)}" for g, c in zip(names, counts)),
                ))
                continue
            keep = reliable[codes]
            group_codes = np.unique(codes[keep], return_inverse=True)[1]
            yp = y_pred[rows][keep]
            yt = y_true[rows][keep] if needs_labels else None
            value = _fairness_value(name, task, classes, yp, yt, group_codes)
            interval = _fairness_interval(name, task, classes, yp, yt, group_codes, n_boot, rng_seed)
            left_out = [f"{g}={int(c)}" for g, c, ok in zip(names, counts, reliable) if not ok]
            note = ("groups under fairness.min_slice_size left out: " + ", ".join(left_out)
                    if left_out else "")
            out.append(ContractCheck(
                "fairness", name, str(threshold), value, interval, int(keep.sum()),
                judge(threshold, value, interval), attribute, note,
            ))
    return out


def _fairness_value(
    name: str,
    task: str,
    classes: Sequence[Any] | None,
    y_pred: np.ndarray,
    y_true: np.ndarray | None,
    groups: np.ndarray,
) -> float | None:
    """The limit's headline value: for two classes on the positive class, else the worst
    class taken one-vs-rest."""
    labels = list(classes or [])
    if not labels:
        labels = sorted({*y_pred.tolist(), *((y_true.tolist()) if y_true is not None else [])}, key=str)
    if len(labels) < 2:
        return None
    targets = [labels[1]] if len(labels) == 2 else labels
    values = [
        _binary_value(name, y_pred == target, None if y_true is None else y_true == target, groups)
        for target in targets
    ]
    present = [v for v in values if v is not None]
    if not present:
        return None
    return float(min(present) if name == "disparate_impact_ratio" else max(present))


def _binary_value(
    name: str, selected: np.ndarray, positive: np.ndarray | None, groups: np.ndarray
) -> float | None:
    k = int(groups.max()) + 1 if len(groups) else 0
    size = np.bincount(groups, minlength=k).astype(float)
    chosen = np.bincount(groups, weights=selected.astype(float), minlength=k)
    if name in ("demographic_parity_difference", "disparate_impact_ratio"):
        rates = chosen[size > 0] / size[size > 0]
        if len(rates) < 2:
            return None
        if name == "demographic_parity_difference":
            return float(rates.max() - rates.min())
        return float(rates.min() / rates.max()) if rates.max() > 0 else None
    if positive is None:  # equalized odds compares rates among the true classes: labels only
        return None
    gaps = []
    for mask in (positive, ~positive):
        base = np.bincount(groups, weights=mask.astype(float), minlength=k)
        hits = np.bincount(groups, weights=(selected & mask).astype(float), minlength=k)
        rates = hits[base > 0] / base[base > 0]
        if len(rates) >= 2:
            gaps.append(float(rates.max() - rates.min()))
    return max(gaps) if gaps else None


def _fairness_interval(
    name: str,
    task: str,
    classes: Sequence[Any] | None,
    y_pred: np.ndarray,
    y_true: np.ndarray | None,
    groups: np.ndarray,
    n_boot: int,
    seed: int,
) -> list[float] | None:
    n = len(y_pred)
    if n == 0 or n_boot < 1:
        return None
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n_boot):
        index = rng.integers(0, n, n)
        value = _fairness_value(
            name, task, classes, y_pred[index], None if y_true is None else y_true[index],
            groups[index],
        )
        if value is not None:
            samples.append(value)
    if len(samples) < max(10, n_boot // 2):
        return None
    alpha = (1 - _CONFIDENCE) / 2
    low, high = np.quantile(np.asarray(samples), [alpha, 1 - alpha])
    return [float(low), float(high)]


# -- latency ------------------------------------------------------------------------


def latency_check(
    latencies_ms: Sequence[float],
    requests: Sequence[Any],
    *,
    objective_ms: float,
    min_requests: int = MIN_LATENCY_REQUESTS,
    n_boot: int = 200,
    seed: int = 0,
) -> ContractCheck:
    """The logged p99 latency of the server's requests against ``serving.latency_p99_ms``.

    Args:
        latencies_ms: the logged latency of each prediction (a request's predictions
            share its latency).
        requests: the request id of each prediction (one latency per request is kept).
        objective_ms: ``serving.latency_p99_ms``.
        min_requests: requests needed to judge.
    """
    threshold = AcceptanceThreshold("<=", float(objective_ms))
    frame = pd.DataFrame({"request": list(requests), "latency": list(latencies_ms)})
    per_request = frame.dropna().drop_duplicates("request")["latency"].to_numpy(dtype=float)
    per_request = per_request[np.isfinite(per_request)]
    n = int(len(per_request))
    if n < min_requests:
        observed = float(np.percentile(per_request, 99)) if n else None
        return ContractCheck(
            "latency", "latency_p99_ms", str(threshold), observed, None, n, "not_judged",
            note=f"{n} logged request(s) answered by the server, needs {min_requests}",
        )
    observed = float(np.percentile(per_request, 99))
    rng = np.random.default_rng(seed)
    index = rng.integers(0, n, (n_boot, n))
    boot = np.percentile(per_request[index], 99, axis=1)
    alpha = (1 - _CONFIDENCE) / 2
    low, high = np.quantile(boot, [alpha, 1 - alpha])
    interval = [float(low), float(high)]
    return ContractCheck(
        "latency", "latency_p99_ms", str(threshold), observed, interval, n,
        judge(threshold, observed, interval),
    )


def protected_values(
    frame: pd.DataFrame, attributes: Sequence[str]
) -> tuple[dict[str, list[Any]], list[str]]:
    """The values of each protected attribute found in ``frame`` (logged inputs), and the
    attributes it does not hold."""
    found: dict[str, list[Any]] = {}
    absent: list[str] = []
    for name in attributes:
        column = name if name in frame.columns else f"input.{name}"
        if column in frame.columns:
            found[name] = [None if _missing(v) else v for v in frame[column].tolist()]
        else:
            absent.append(name)
    return found, absent


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and bool(np.isnan(value))


# -- the pass -----------------------------------------------------------------------


def judge_contract(
    record: ModelVersion,
    spec: ProjectSpec,
    performance: LivePerformance,
    outputs: pd.DataFrame,
    rows: pd.DataFrame,
    min_labels: int,
    notes: list[str],
) -> ContractReport:
    """Every acceptance threshold, fairness limit and the latency objective of ``spec`` on
    a monitoring window of ``record`` (see the module doc).

    Args:
        record: the monitored version.
        spec: the project's spec (``acceptance``, ``fairness``, ``serving``).
        performance: the live metrics of the window, with intervals.
        outputs: the window's answers (``prediction``, ``label``, ``label_source``).
        rows: the window's rows, aligned with ``outputs``: the logged records (their
            input fields, ``route``, ``request_id``, ``latency_ms``) or a data file's rows.
        min_labels: labelled rows needed to judge.
        notes: a list the pass reports; what could not be judged is added to it.
    """
    checks: list[ContractCheck] = acceptance_checks(spec.acceptance, performance)
    classes = (
        list(record.lineage.classes) or None if record.task in CLASSIFICATION_TASKS else None
    )
    protected, absent = protected_values(rows, spec.fairness.protected)
    if absent and spec.fairness.limits:
        notes.append(
            "protected attribute(s) not in the logged records, so their fairness is not judged: "
            + ", ".join(absent)
        )
        if record.task in CLASSIFICATION_TASKS:
            checks.extend(
                ContractCheck("fairness", str(name), str(_parse(raw, f"fairness.limits.{name}")),
                              None, None, 0, "not_judged", attribute,
                              note=f"no logged record carries '{attribute}'; send it with the records")
                for attribute in absent for name, raw in spec.fairness.limits.items()
            )
    labels = list(outputs["label"])
    loop = performance.feedback_loop
    if loop is not None and loop.detected:
        excluded = loop.mask(outputs)
        labels = [None if out else value for value, out in zip(labels, excluded)]
    checks.extend(fairness_checks(
        spec.fairness.limits, protected, task=record.task, classes=classes,
        predictions=list(outputs["prediction"]), labels=labels,
        min_group=spec.fairness.min_slice_size, min_labels=min_labels, seed=spec.seed,
    ))
    if "latency_ms" in rows.columns and "route" in rows.columns:
        served = (rows["route"] == "champion").to_numpy()
        checks.append(latency_check(
            rows.loc[served, "latency_ms"].tolist(), rows.loc[served, "request_id"].tolist(),
            objective_ms=spec.serving.latency_p99_ms, seed=spec.seed,
        ))
    else:
        checks.append(ContractCheck(
            "latency", "latency_p99_ms", f"<= {spec.serving.latency_p99_ms:g}", None, None, 0,
            "not_judged", note="a data file standing in for traffic has no logged latencies",
        ))
    return ContractReport(tuple(checks))


_BREACH_KINDS: dict[str, AlertKind] = {
    "acceptance": "acceptance_breach",
    "fairness": "fairness_breach",
    "latency": "latency_breach",
}


def breach_drafts(
    version: int, contract: ContractReport, window: Mapping[str, Any]
) -> list[AlertDraft]:
    """One alert per criterion of the contract failed beyond noise, with its evidence."""
    drafts: list[AlertDraft] = []
    for check in contract.breaches:
        interval = (
            f" (95% interval {check.interval[0]:.4g} .. {check.interval[1]:.4g})"
            if check.interval else ""
        )
        where = f" for '{check.attribute}'" if check.attribute else ""
        unit = {"acceptance": "labelled predictions", "fairness": "rows",
                "latency": "requests"}[check.kind]
        drafts.append(
            AlertDraft(
                kind=_BREACH_KINDS[check.kind],
                version=version,
                severity="critical",
                message=(
                    f"model v{version}: live {check.metric}{where} is {check.observed:.4g}"
                    f"{interval} on {check.n} {unit}: the contract asks {check.threshold}"
                ),
                evidence={
                    "metric": check.metric,
                    "attribute": check.attribute,
                    "observed": check.observed,
                    "interval": check.interval,
                    "threshold": check.threshold,
                    "n": check.n,
                    "note": check.note,
                    "window": dict(window),
                },
                key=(check.metric,) + ((check.attribute,) if check.attribute else ()),
            )
        )
    return drafts
