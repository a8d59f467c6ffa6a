"""Drift detection at scale: assay against a plain numpy/scipy pass and Evidently 0.7.23.

Usage::

    python benchmarks/drift.py --evidently-python /tmp/evidently-venv/bin/python
    python benchmarks/drift.py --rows 100000           # one size, Evidently skipped
    python benchmarks/drift.py --json results.json     # also write the rows as JSON

Evidently 0.7.23 does not import under pandas 3, so it runs in its own virtualenv::

    python3 -m venv /tmp/evidently-venv
    /tmp/evidently-venv/bin/pip install evidently==0.7.23 'pandas<3' pyarrow

For each size (100k and 1M rows by default) the script builds a reference frame and a
current frame of 25 columns (20 numeric: normal, lognormal, uniform, Poisson counts, two
with 1% missing; 5 categorical strings with 4 to 150 levels) from one seed; the current
frame has exactly 4 shifted columns: ``num_01`` (mean +0.75 sd), ``num_05`` (sd x 1.8),
``num_13`` (a lognormal scaled by 1.6) and ``cat_1`` (level shares reversed). Both frames
are written to Parquet, and each tool runs in a fresh subprocess that reads them:

- ``assay``: ``build_reference`` on the reference frame, then ``detect_drift`` on the
  current one (timed separately and together; default thresholds: PSI >= 0.2 and JS
  distance >= 0.1);
- ``plain``: a straightforward numpy/scipy pass per column: decile bins of the reference
  (``np.quantile``), PSI and JS distance on them (``np.searchsorted`` + ``np.bincount``),
  ``scipy.stats.ks_2samp`` on the full numeric columns, ``pandas.value_counts`` +
  ``scipy.stats.chisquare`` on the categorical ones; flagged by the same PSI/JS rule;
- ``evidently``: ``Report([DataDriftPreset()], include_tests=True)`` on the two
  ``evidently.Dataset``s (numeric and categorical columns declared), building the datasets
  included in the time; a column is flagged when its ``Value Drift`` test fails (at these
  sizes its defaults are the normed Wasserstein distance for numeric columns and the
  Jensen-Shannon distance for categorical ones, both at 0.1). Skipped with a note when
  ``--evidently-python`` is not given or not found.

Time is wall-clock time of the computation only: reading the Parquet files and importing
the libraries happen before the clock starts. Memory is the peak resident set size above
the resident size once the frames are loaded (Linux ``VmHWM``, reset through
``/proc/self/clear_refs``, after freed memory is handed back with ``malloc_trim``); where
that reset is not allowed, the ``tracemalloc`` peak instead (Python and numpy allocations
only). The table also gives each subprocess's whole peak RSS (the largest ``VmHWM`` it reached),
interpreter, libraries and frames included.

The script exits 1 when a tool does not flag exactly the 4 shifted columns.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Row", "main", "make_frames", "plain_pass"]

N_NUMERIC = 20
CAT_LEVELS = (4, 8, 20, 50, 150)
SHIFTED = ("num_01", "num_05", "num_13", "cat_1")
PSI_SIGNIFICANT = 0.2
JS_THRESHOLD = 0.1


# -- data ------------------------------------------------------------------------------


def make_frames(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A reference and a current frame of ``n`` rows x 25 columns; 4 columns shifted."""
    rng = np.random.default_rng(seed)
    scales = rng.uniform(0.5, 500.0, N_NUMERIC)
    weights = [rng.dirichlet(np.ones(k) * 2.0) for k in CAT_LEVELS]
    return _frame(rng, n, scales, weights, False), _frame(rng, n, scales, weights, True)


def _frame(
    rng: np.random.Generator,
    n: int,
    scales: np.ndarray,
    weights: list[np.ndarray],
    shifted: bool,
) -> pd.DataFrame:
    data: dict[str, Any] = {}
    for i in range(N_NUMERIC):
        name = f"num_{i:02d}"
        if i % 5 == 3:
            values = rng.lognormal(0.0, 0.5, n) * (1.6 if shifted and name == "num_13" else 1.0)
        elif i % 5 == 4:
            values = rng.poisson(3.0 + i / 4, n).astype(np.float64)
        elif i % 5 == 2:
            values = rng.uniform(-1.0, 1.0, n)
        else:
            sd = 1.8 if shifted and name == "num_05" else 1.0
            values = rng.normal(0.75 if shifted and name == "num_01" else 0.0, sd, n)
        if i in (6, 11):
            values[rng.random(n) < 0.01] = np.nan
        data[name] = values * scales[i]
    for i, k in enumerate(CAT_LEVELS):
        levels = np.array([f"c{i}_level_{j:03d}" for j in range(k)], dtype=object)
        p = weights[i][::-1] if shifted and i == 1 else weights[i]
        data[f"cat_{i}"] = levels[rng.choice(k, n, p=p)]
    frame = pd.DataFrame(data)
    return frame.astype({f"cat_{i}": "str" for i in range(len(CAT_LEVELS))})


def _columns(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    numeric = [c for c in frame.columns if c.startswith("num_")]
    return numeric, [c for c in frame.columns if c.startswith("cat_")]


# -- the tools (each runs in a worker subprocess) -----------------------------------------


def plain_pass(reference: pd.DataFrame, current: pd.DataFrame) -> list[str]:
    """The straightforward numpy/scipy drift pass; the columns it flags (PSI and JS rule)."""
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import chisquare, ks_2samp

    flagged = []
    numeric, categorical = _columns(reference)
    for name in numeric:
        ref = reference[name].to_numpy()
        cur = current[name].to_numpy()
        ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
        edges = np.unique(np.quantile(ref, np.arange(1, 10) / 10))
        p = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=edges.size + 1)
        q = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=edges.size + 1)
        p, q = p / p.sum(), q / q.sum()
        ks_2samp(ref, cur)
        if _psi(p, q) >= PSI_SIGNIFICANT and jensenshannon(p, q, base=2) >= JS_THRESHOLD:
            flagged.append(name)
    for name in categorical:
        ref_counts = reference[name].value_counts()
        cur_counts = current[name].value_counts().reindex(ref_counts.index, fill_value=0)
        p = ref_counts.to_numpy() / ref_counts.sum()
        q = cur_counts.to_numpy() / max(cur_counts.sum(), 1)
        chisquare(cur_counts.to_numpy(), p * cur_counts.sum())
        if _psi(p, q) >= PSI_SIGNIFICANT and jensenshannon(p, q, base=2) >= JS_THRESHOLD:
            flagged.append(name)
    return flagged


def _psi(p: np.ndarray, q: np.ndarray, eps: float = 1e-4) -> float:
    p, q = np.maximum(p, eps), np.maximum(q, eps)
    return float(np.sum((q - p) * np.log(q / p)))


class _Memory:
    """Peak memory of a block: resident-set high-water mark, or tracemalloc as a fallback.

    Resetting the high-water mark also resets what the kernel reports as the process's
    maximum RSS, so the process peak is tracked here: the largest ``VmHWM`` seen before
    any reset.
    """

    def __init__(self) -> None:
        self.method = "VmHWM"
        self._process_peak = 0.0
        try:
            self._reset()
        except OSError:
            self.method = "tracemalloc"

    @staticmethod
    def _status() -> dict[str, float]:
        out = {}
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(("VmRSS", "VmHWM")):
                key, value = line.split(":")
                out[key] = float(value.split()[0]) / 1024
        return out

    def _reset(self) -> None:
        self._process_peak = max(self._process_peak, self._status()["VmHWM"])
        Path("/proc/self/clear_refs").write_text("5")

    def start(self) -> None:
        gc.collect()
        if self.method == "tracemalloc":
            tracemalloc.start()
            return
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
        try:
            import pyarrow

            pyarrow.default_memory_pool().release_unused()
        except (ImportError, AttributeError):
            pass
        self._reset()
        self._base = self._status()["VmRSS"]

    def peak(self) -> float:
        """MiB above the start; the high-water mark is reset for the next block."""
        if self.method == "tracemalloc":
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.reset_peak()
            return peak
        peak = max(0.0, self._status()["VmHWM"] - self._base)
        self._reset()
        return peak

    def process_peak(self) -> float:
        """The largest resident set size of this process so far, in MiB."""
        if self.method == "tracemalloc":
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return max(self._process_peak, self._status()["VmHWM"])


def _worker(tool: str, reference_path: str, current_path: str) -> dict[str, Any]:
    """Run one tool on the two Parquet files; time, memory and flagged columns."""
    reference = pd.read_parquet(reference_path)
    current = pd.read_parquet(current_path)
    memory = _Memory()
    out: dict[str, Any] = {"memory_method": memory.method}
    if tool == "assay":
        # imported before the clock starts, as every tool's libraries are
        import scipy.spatial.distance
        import scipy.stats

        from assay.data.schema import ColumnSchema
        from assay.monitor import build_reference, detect_drift

        numeric, categorical = _columns(reference)
        schema = [ColumnSchema(c, "numeric", "float64", True, 0) for c in numeric] + [
            ColumnSchema(c, "categorical", "str", False, 0) for c in categorical
        ]
        memory.start()
        start = time.perf_counter()
        profile = build_reference(reference, schema)
        built = time.perf_counter()
        build_peak = memory.peak()
        report = detect_drift(profile, current)
        done = time.perf_counter()
        detect_peak = memory.peak()
        out.update(
            build_seconds=built - start,
            detect_seconds=done - built,
            build_peak=build_peak,
            detect_peak=detect_peak,
            seconds=done - start,
            peak=max(build_peak, detect_peak),
            flagged=sorted(report.ranked),
            profile_json_bytes=len(json.dumps(profile.to_dict())),
        )
    elif tool == "plain":
        import scipy.spatial.distance
        import scipy.stats  # noqa: F401

        memory.start()
        start = time.perf_counter()
        flagged = plain_pass(reference, current)
        out.update(seconds=time.perf_counter() - start, peak=memory.peak(), flagged=sorted(flagged))
    elif tool == "evidently":
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        numeric, categorical = _columns(reference)
        definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
        memory.start()
        start = time.perf_counter()
        ref_data = Dataset.from_pandas(reference, data_definition=definition)
        cur_data = Dataset.from_pandas(current, data_definition=definition)
        snapshot = Report([DataDriftPreset()], include_tests=True).run(cur_data, ref_data)
        result = snapshot.dict()
        seconds = time.perf_counter() - start
        flagged = [
            test["metric_config"]["params"]["column"]
            for test in result["tests"]
            if test["id"] == "drift" and test["status"] == "FAIL"
        ]
        out.update(seconds=seconds, peak=memory.peak(), flagged=sorted(flagged))
    else:
        raise SystemExit(f"unknown tool {tool!r}")
    out["process_peak"] = memory.process_peak()
    return out


# -- the parent: frames, subprocesses, table --------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    rows: int
    tool: str
    seconds: float
    peak_mib: float
    process_mib: float
    flagged: tuple[str, ...]


def _run_tool(python: str, tool: str, ref: Path, cur: Path, out: Path) -> dict[str, Any]:
    command = [python, str(Path(__file__).resolve()), "--worker", tool, "--reference", str(ref)]
    command += ["--current", str(cur), "--out", str(out)]
    completed = subprocess.run(command, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"{tool} worker failed with exit code {completed.returncode}")
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def _run_size(n: int, seed: int, workdir: Path, evidently: str | None) -> list[Row]:
    start = time.perf_counter()
    reference, current = make_frames(n, seed)
    ref_path, cur_path = workdir / f"reference_{n}.parquet", workdir / f"current_{n}.parquet"
    reference.to_parquet(ref_path)
    current.to_parquet(cur_path)
    del reference, current
    print(
        f"\n{n:,} rows x 25 columns: frames built and written in {time.perf_counter() - start:.1f} s"
    )
    rows: list[Row] = []
    tools = [("assay", sys.executable), ("plain", sys.executable)]
    if evidently:
        tools.append(("evidently", evidently))
    for tool, python in tools:
        result = _run_tool(python, tool, ref_path, cur_path, workdir / f"{tool}_{n}.json")
        process_mib = result["process_peak"]
        flagged = tuple(result["flagged"])
        if tool == "assay":
            rows.append(
                Row(
                    n,
                    "assay build_reference",
                    result["build_seconds"],
                    result["build_peak"],
                    process_mib,
                    (),
                )
            )
            rows.append(
                Row(
                    n,
                    "assay detect_drift",
                    result["detect_seconds"],
                    result["detect_peak"],
                    process_mib,
                    flagged,
                )
            )
            rows.append(
                Row(n, "assay (both)", result["seconds"], result["peak"], process_mib, flagged)
            )
            print(f"  reference profile: {result['profile_json_bytes'] / 2**20:.1f} MiB of JSON")
        else:
            rows.append(Row(n, tool, result["seconds"], result["peak"], process_mib, flagged))
        print(f"  {tool}: done ({result['memory_method']})", flush=True)
    return rows


def _print_table(rows: list[Row]) -> None:
    print(
        "\nspeed-up = the other tool's seconds / this row's seconds; "
        "peak MiB = above the loaded frames; process MiB = the worker's whole peak RSS"
    )
    header = (
        f"{'rows':>9}  {'tool':<22} {'seconds':>8} {'peak MiB':>9} {'process MiB':>11} "
        f"{'flagged':>7}  {'vs Evidently':>12} {'vs plain':>8}  columns flagged"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        same = [r for r in rows if r.rows == row.rows]
        ev = next((r for r in same if r.tool == "evidently"), None)
        plain = next(r for r in same if r.tool == "plain")
        vs_ev = _ratio(ev.seconds / row.seconds) if ev else "-"
        vs_plain = _ratio(plain.seconds / row.seconds)
        flagged = "-" if row.tool == "assay build_reference" else str(len(row.flagged))
        names = ", ".join(row.flagged) if row.tool != "assay build_reference" else ""
        print(
            f"{row.rows:>9,}  {row.tool:<22} {row.seconds:>8.2f} {row.peak_mib:>9.0f} "
            f"{row.process_mib:>11.0f} {flagged:>7}  {vs_ev:>12} {vs_plain:>8}  {names}"
        )


def _ratio(value: float) -> str:
    return f"{value:.1f}x" if value >= 1 else f"{value:.2f}x"


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run each size, print the table; 1 if a tool missed a column."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--evidently-python", default=None, help="python of a venv with evidently 0.7.23"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="keep the Parquet files here")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--reference", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--current", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        Path(args.out).write_text(json.dumps(_worker(args.worker, args.reference, args.current)))
        return 0

    evidently = args.evidently_python
    if evidently and not Path(evidently).exists():
        print(f"note: {evidently} not found; Evidently is skipped")
        evidently = None
    elif not evidently:
        print("note: no --evidently-python given; Evidently is skipped")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="assay-drift-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    try:
        for n in args.rows:
            rows += _run_size(n, args.seed, workdir, evidently)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    _print_table(rows)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2))
    planted = tuple(sorted(SHIFTED))
    wrong = [r for r in rows if r.tool != "assay build_reference" and r.flagged != planted]
    if wrong:
        for r in wrong:
            print(
                f"MISMATCH at {r.rows:,} rows: {r.tool} flagged {list(r.flagged)}, planted {list(planted)}"
            )
        return 1
    tools = sorted({r.tool for r in rows if r.tool != "assay build_reference"})
    print(
        f"\nagreement: {', '.join(tools)} all flag exactly the planted columns {', '.join(planted)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
