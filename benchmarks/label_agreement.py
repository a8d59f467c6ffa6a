"""Annotator agreement and consensus against planted truth.

Usage::

    PYTHONPATH=src .venv/bin/python benchmarks/label_agreement.py
    PYTHONPATH=src .venv/bin/python benchmarks/label_agreement.py --seeds 10 --items 1000
    PYTHONPATH=src .venv/bin/python benchmarks/label_agreement.py --accuracies 0.9,0.8,0.7,0.5

For each seed, ``assay.label.simulate.planted_annotations`` draws items of known class and
annotators of known accuracy (default: 5 annotators at 0.95, 0.9, 0.85, 0.75 and 0.4 on 400
items, 3 classes, each item judged by 3 to 5 of them, errors uniform over the other classes).
The script prints, per seed:

- Krippendorff's alpha and Fleiss' kappa with their bootstrap intervals;
- the annotators ranked by Cohen's kappa with the leave-one-out Dawid–Skene consensus, against
  the planted order (exact match and Spearman's rho), and the outliers flagged;
- the accuracy against the truth of the majority vote and of Dawid–Skene, each with a
  percentile bootstrap interval over items, and the paired bootstrap interval of the difference;
- the largest gap between Dawid–Skene's estimated accuracies and the planted ones;
- wall time of ``agreement_report`` (1,000 resamples) and of ``dawid_skene``.

A last run times both on about 10^5 judgements (``--scale-items`` items). Exit 1 when, on some
seed, the outliers are not exactly the least accurate annotator or Dawid–Skene is less
accurate than the majority vote. The ranking is reported, not required: with a few hundred
items, annotators 0.05 apart in accuracy swap places now and then.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from assay.label.agreement import agreement_report
from assay.label.consensus import Consensus, dawid_skene, majority_vote
from assay.label.simulate import planted_annotations


def _correct(consensus: Consensus, truth: pd.Series) -> np.ndarray:
    labels = consensus.frame.set_index("item_id")["label"]
    return np.asarray(labels.to_numpy() == truth.loc[labels.index].to_numpy(), dtype=float)


def _intervals(
    a: np.ndarray, b: np.ndarray, n_boot: int, seed: int
) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float]]:
    """Percentile intervals of mean(a), mean(b) and mean(b - a) over the same resamples."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    ma, mb = a[idx].mean(axis=1), b[idx].mean(axis=1)

    def ci(x: np.ndarray) -> tuple[float, float]:
        low, high = np.percentile(x, [2.5, 97.5])
        return float(low), float(high)

    return ci(ma), ci(mb), ci(mb - ma)


def run_seed(args: argparse.Namespace, accuracies: list[float], seed: int) -> dict[str, Any]:
    planted = planted_annotations(
        args.items,
        accuracies,
        n_classes=args.classes,
        per_item=(args.min_per_item, args.max_per_item),
        seed=seed,
    )
    start = time.perf_counter()
    ds = dawid_skene(planted.annotations, planted.classes)
    ds_seconds = time.perf_counter() - start
    start = time.perf_counter()
    report = agreement_report(
        planted.annotations, classes=planted.classes, n_boot=args.n_boot, seed=seed, consensus=ds
    )
    report_seconds = time.perf_counter() - start
    mv = majority_vote(planted.annotations, planted.classes)
    mv_right, ds_right = _correct(mv, planted.truth), _correct(ds, planted.truth)
    mv_ci, ds_ci, diff_ci = _intervals(mv_right, ds_right, args.n_boot, seed)
    truth_order = sorted(planted.accuracies, key=lambda a: -planted.accuracies[a])
    kappas = {a.annotator: a.kappa for a in report.annotators}
    rho = float(spearmanr([planted.accuracies[a] for a in kappas], list(kappas.values()))[0])
    worst = min(planted.accuracies, key=planted.accuracies.__getitem__)
    assert ds.model is not None
    estimated = ds.model.accuracies
    return {
        "seed": seed,
        "annotations": len(planted.annotations),
        "alpha": [report.alpha, report.krippendorff.low, report.krippendorff.high],
        "fleiss": [report.fleiss.value, report.fleiss.low, report.fleiss.high],
        "fleiss_items": report.fleiss.n_items,
        "ranking": list(report.ranking),
        "ranking_matches": list(report.ranking) == truth_order,
        "spearman": rho,
        "outliers": [o.annotator for o in report.outliers],
        "outlier_right": [o.annotator for o in report.outliers] == [worst],
        "kappa_vs_consensus": kappas,
        "majority_accuracy": [float(mv_right.mean()), *mv_ci],
        "dawid_skene_accuracy": [float(ds_right.mean()), *ds_ci],
        "difference": [float(ds_right.mean() - mv_right.mean()), *diff_ci],
        "ds_accuracy_error": max(abs(estimated[a] - planted.accuracies[a]) for a in estimated),
        "ds_iterations": ds.model.n_iter,
        "report_seconds": report_seconds,
        "ds_seconds": ds_seconds,
    }


def run_scale(args: argparse.Namespace, accuracies: list[float]) -> dict[str, Any]:
    planted = planted_annotations(
        args.scale_items,
        accuracies,
        n_classes=args.classes,
        per_item=(args.min_per_item, args.max_per_item),
        seed=12345,
    )
    start = time.perf_counter()
    ds = dawid_skene(planted.annotations, planted.classes)
    ds_seconds = time.perf_counter() - start
    start = time.perf_counter()
    agreement_report(planted.annotations, classes=planted.classes, n_boot=1000, consensus=ds)
    report_seconds = time.perf_counter() - start
    return {
        "items": args.scale_items,
        "annotations": len(planted.annotations),
        "ds_seconds": ds_seconds,
        "report_seconds": report_seconds,
    }


def _fmt(triple: list[float]) -> str:
    return f"{triple[0]:.3f} [{triple[1]:.3f}, {triple[2]:.3f}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--accuracies", default="0.95,0.9,0.85,0.75,0.4")
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--min-per-item", type=int, default=3)
    parser.add_argument("--max-per-item", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--scale-items", type=int, default=25_000, help="0 to skip")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    accuracies = [float(a) for a in args.accuracies.split(",")]
    # warm the imports (krippendorff, statsmodels) outside the clocks
    warm = planted_annotations(30, accuracies, n_classes=args.classes, seed=0)
    agreement_report(warm.annotations, classes=warm.classes, n_boot=10)

    rows = [run_seed(args, accuracies, seed) for seed in range(args.seeds)]
    print(
        f"{args.items} items, {args.classes} classes, {args.min_per_item}-{args.max_per_item} "
        f"judgements per item, planted accuracies {accuracies}, {args.n_boot} resamples"
    )
    print(
        f"{'seed':>4} {'alpha [95% CI]':>24} {'Fleiss kappa [95% CI]':>24} {'rank':>5} "
        f"{'rho':>5} {'outliers':>9} {'majority acc':>24} {'Dawid-Skene acc':>24} "
        f"{'DS - majority':>25} {'DS acc err':>10} {'report s':>8} {'DS s':>6}"
    )
    for r in rows:
        print(
            f"{r['seed']:>4} {_fmt(r['alpha']):>24} {_fmt(r['fleiss']):>24} "
            f"{'ok' if r['ranking_matches'] else 'MISS':>5} {r['spearman']:>5.2f} "
            f"{','.join(r['outliers']) or '-':>9} {_fmt(r['majority_accuracy']):>24} "
            f"{_fmt(r['dawid_skene_accuracy']):>24} {_fmt(r['difference']):>25} "
            f"{r['ds_accuracy_error']:>10.3f} {r['report_seconds']:>8.2f} {r['ds_seconds']:>6.3f}"
        )
    print(
        "kappa with the leave-one-out consensus, seed 0:",
        {a: round(k, 3) for a, k in rows[0]["kappa_vs_consensus"].items()},
    )
    diffs = [r["difference"][0] for r in rows]
    print(
        f"rankings right {sum(r['ranking_matches'] for r in rows)}/{len(rows)}, "
        f"outlier right {sum(r['outlier_right'] for r in rows)}/{len(rows)}, "
        f"Dawid-Skene - majority: mean {np.mean(diffs):+.4f}, min {min(diffs):+.4f}"
    )
    scale = None
    if args.scale_items:
        scale = run_scale(args, accuracies)
        print(
            f"scale: {scale['annotations']} judgements on {scale['items']} items: "
            f"dawid_skene {scale['ds_seconds']:.2f} s, agreement_report (1000 resamples) "
            f"{scale['report_seconds']:.2f} s"
        )
    if args.json:
        args.json.write_text(json.dumps({"seeds": rows, "scale": scale}, indent=2))
    ok = all(r["outlier_right"] and r["difference"][0] >= 0 for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
