"""How the data audit scales: each registered check, then the full audit, on 100k and 1M rows.

Usage::

    python benchmarks/audit_scale.py                  # 100k and 1M rows
    python benchmarks/audit_scale.py --rows 100000    # one size

The synthetic frame has 30 columns: 20 floats, 6 categorical strings (5 to 200 levels),
1 integer, 1 boolean, 1 date stored as a string, and a binary target. Planted defects:
1% of rows are exact copies of other rows, 0.2% are near copies (a string re-cased and
padded, a float nudged by 1e-12), and a few columns have missing values.

Memory is the peak resident set size above the resident size at the check's start
(Linux ``/proc/self/status`` VmHWM, reset through ``/proc/self/clear_refs`` before each
check, after freed memory is handed back with ``malloc_trim``), so it includes memory that numpy, pandas and pyarrow take outside Python's
allocator. Where that reset is not allowed, the script falls back to ``tracemalloc``
peaks (Python and numpy allocations only) and says so.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from assay.audit import CHECKS, AuditContext, run_audit
from assay.data import Dataset

__all__ = ["Measure", "main", "make_frame", "measure"]

TARGET_SECONDS = 60.0
N_FLOAT = 20
LEVELS = (5, 12, 30, 60, 120, 200)


def make_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """A synthetic binary-classification frame of ``n`` rows x 30 columns with planted defects."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    scales = rng.uniform(0.1, 1000.0, N_FLOAT)
    for i in range(N_FLOAT):
        values = rng.normal(0.0, 1.0, n) if i % 4 else rng.lognormal(0.0, 1.0, n)
        data[f"num_{i:02d}"] = values * scales[i]
    for i, levels in enumerate(LEVELS):
        names = np.array([f"cat{i} level {k}" for k in range(levels)], dtype=object)
        weights = rng.dirichlet(np.ones(levels))
        data[f"cat_{i}"] = names[rng.choice(levels, n, p=weights)]
    data["visits"] = rng.poisson(3.0, n)
    data["is_member"] = rng.random(n) < 0.3
    dates = pd.date_range("2022-01-01", periods=730, freq="D").strftime("%Y-%m-%d").to_numpy()
    data["signup_date"] = dates[rng.integers(0, dates.size, n)].astype(object)
    score = 0.8 * data["num_01"] / scales[1] - 0.5 * data["num_02"] / scales[2]  # type: ignore[operator]
    score = score + 0.4 * (data["cat_0"] == "cat0 level 1") + rng.normal(0.0, 1.0, n)
    data["target"] = (score > 0.3).astype(np.int64)
    frame = pd.DataFrame(data)
    for name, share in (("num_04", 0.05), ("num_05", 0.01), ("cat_2", 0.02)):
        frame.loc[rng.random(n) < share, name] = None

    exact, near = planted(n)
    order = rng.permutation(n)
    copies, sources = order[: exact + near], order[exact + near : 2 * (exact + near)]
    take = np.arange(n)
    take[copies] = sources
    frame = frame.iloc[take].reset_index(drop=True)
    noisy = copies[exact:]
    column = frame.columns.get_loc("cat_1")
    frame.iloc[noisy, column] = ["  " + str(v).upper() + "." for v in frame.iloc[noisy, column]]
    column = frame.columns.get_loc("num_03")
    frame.iloc[noisy, column] = frame.iloc[noisy, column].to_numpy() * (1 + 1e-12)
    return frame.astype({f"cat_{i}": "str" for i in range(len(LEVELS))} | {"signup_date": "str"})


def planted(n: int) -> tuple[int, int]:
    """How many exact and near copies :func:`make_frame` plants in ``n`` rows."""
    return n // 100, n // 500


@dataclass(frozen=True)
class Measure:
    """One timed call: wall seconds, peak memory in MiB, and the number of findings."""

    name: str
    seconds: float
    peak_mib: float
    findings: int


class _Memory:
    """Peak memory of a block: resident-set high-water mark, or tracemalloc as a fallback."""

    def __init__(self) -> None:
        self.method = "peak RSS above start (VmHWM)"
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self._status()
        except OSError:
            self.method = "tracemalloc peak (Python and numpy only)"

    @staticmethod
    def _status() -> dict[str, float]:
        out = {}
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(("VmRSS", "VmHWM")):
                key, value = line.split(":")
                out[key] = float(value.split()[0]) / 1024
        return out

    def start(self) -> None:
        if self.method.startswith("tracemalloc"):
            tracemalloc.start()
            return
        _release_free_memory()
        Path("/proc/self/clear_refs").write_text("5")
        self._base = self._status()["VmRSS"]

    def stop(self) -> float:
        if self.method.startswith("tracemalloc"):
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            return peak / 2**20
        return max(0.0, self._status()["VmHWM"] - self._base)


def _release_free_memory() -> None:
    """Hand freed memory back to the system, so that reusing it counts towards the peak."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        import pyarrow

        pyarrow.default_memory_pool().release_unused()
    except (ImportError, AttributeError):
        pass


def measure(ctx: AuditContext, names: list[str] | None, memory: _Memory, label: str) -> Measure:
    """Run the audit (all checks, or ``names``) once; time it and take its peak memory."""
    gc.collect()
    memory.start()
    start = time.perf_counter()
    report = run_audit(ctx, only=names)
    seconds = time.perf_counter() - start
    return Measure(label, seconds, memory.stop(), len(report.findings))


def _run_size(n: int, seed: int, full: bool, memory: _Memory) -> dict[str, Measure]:
    start = time.perf_counter()
    frame = make_frame(n, seed)
    built = time.perf_counter() - start
    start = time.perf_counter()
    dataset = Dataset.from_frame(frame, source=f"<synthetic {n} rows>")
    wrapped = time.perf_counter() - start
    del frame
    ctx = AuditContext(
        dataset=dataset, target="target", task="binary", protected=("cat_0",), seed=seed
    )
    print(
        f"\n{n:,} rows x {dataset.n_columns} columns "
        f"(built in {built:.1f} s, schema + version in {wrapped:.1f} s)"
    )
    print(f"{'check':<24} {'seconds':>9} {'peak MiB':>9} {'findings':>9}")
    results: dict[str, Measure] = {}
    for name in CHECKS.names():
        results[name] = measure(ctx, [name], memory, name)
        _print_row(results[name])
        if name in ("duplicate_rows", "near_duplicate_rows"):
            _print_found(ctx, name)
    total = sum(m.seconds for m in results.values())
    print(f"{'sum of checks':<24} {total:>9.2f}")
    exact, near = planted(n)
    print(f"(planted: {exact:,} exact copies, {near:,} near copies)")
    if full:
        results["FULL AUDIT"] = measure(ctx, None, memory, "FULL AUDIT")
        _print_row(results["FULL AUDIT"])
    return results


def _print_found(ctx: AuditContext, name: str) -> None:
    report = run_audit(ctx, only=[name])
    for finding in report.findings:
        print(f"    {finding.severity}: {finding.message[:110]}")


def _print_row(m: Measure) -> None:
    print(f"{m.name:<24} {m.seconds:>9.2f} {m.peak_mib:>9.1f} {m.findings:>9}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, run each size, print the tables and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-full", action="store_true", help="skip the full-audit run")
    args = parser.parse_args(argv)
    memory = _Memory()
    print(f"registered checks: {', '.join(CHECKS.names())}")
    print(f"memory: {memory.method}")
    runs = {n: _run_size(n, args.seed, not args.no_full, memory) for n in sorted(args.rows)}

    sizes = sorted(runs)
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        print(f"\nscaling {large:,} / {small:,} rows (x{large / small:.0f} rows)")
        for name, m in runs[large].items():
            base = runs[small].get(name)
            if base is not None and base.seconds > 0:
                print(f"{name:<24} time ratio {m.seconds / base.seconds:6.1f}")
        near_small = runs[small].get("near_duplicate_rows")
        near_large = runs[large].get("near_duplicate_rows")
        if near_small and near_large:
            print(
                f"near_duplicate_rows linearity: {near_large.seconds / near_small.seconds:.1f}x "
                f"time for {large / small:.0f}x rows"
            )
    for n in sizes:
        full = runs[n].get("FULL AUDIT")
        seconds = full.seconds if full else sum(m.seconds for m in runs[n].values())
        what = "full audit" if full else "sum of checks"
        print(
            f"target 'full audit of 1M x 30 under 60 s': {n:,} rows, {what} {seconds:.1f} s "
            f"= {seconds / TARGET_SECONDS:.2f} of the target"
        )


if __name__ == "__main__":
    main()
