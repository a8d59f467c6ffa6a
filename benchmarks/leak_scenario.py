"""The "too good to be true" scenario end to end, through the CLI as a user runs it.

Usage (from the repository root, assay's virtualenv)::

    .venv/bin/python benchmarks/leak_scenario.py                  # 4,000 customers
    .venv/bin/python benchmarks/leak_scenario.py --rows 8000 --workdir /tmp/churn

A churn table with one field known only after the outcome: ``cancellation_fee_paid`` is
positive only for customers who churned (on about 12.6% of rows: P(churn | fee > 0) = 1), zero
otherwise. The other columns (tenure, monthly charges, contract, support calls, payment
method, gender) predict churn honestly and noisily. The script runs, in a fresh project:

1. ``assay init data.csv --target churned --protected gender``
2. ``assay audit``: the leak must be flagged (``target_leakage``) naming the column;
3. ``assay run``: must be refused, naming the column, and nothing promoted; then ``assay run
   --accept target_leakage``, as a user who overrides the audit would, to show whether the
   plausibility gate refuses the leaky model too (it does on tell-tale perfection: no false
   positive at all, or a test score far above cross-validation);
4. ``assay report N``: written;
5. the user adds the column to ``data.drop``, audits and runs again;
6. the honest version must become champion without ``--force``: by ``assay run`` itself, or
   by ``assay promote N`` when the run asks for an explicit promotion (a champion that relies
   on a column ``data.drop`` now excludes is no yardstick).

Each step prints its exit code and the lines of the output that matter; the script exits 1
if an expectation fails. Single-feature AUC of the leaking column is printed for reference.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.metrics import roc_auc_score

LEAK = "cancellation_fee_paid"


def churn_table(rows: int, seed: int) -> pd.DataFrame:
    """Customers with an honest, noisy churn signal and one post-outcome field."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, rows)
    charges = np.round(rng.normal(65, 20, rows).clip(15, 130), 2)
    contract = rng.choice(["month-to-month", "one-year", "two-year"], rows, p=[0.55, 0.25, 0.2])
    calls = rng.poisson(1.5, rows)
    payment = rng.choice(["card", "bank", "check", "voucher"], rows)
    gender = rng.choice(["f", "m"], rows)
    logit = (-1.2 - 0.035 * tenure + 0.018 * (charges - 65) + 0.35 * calls
             + np.select([contract == "month-to-month", contract == "one-year"], [0.9, -0.3], -1.2))
    churned = rng.random(rows) < 1 / (1 + np.exp(-logit))
    # the fee is charged when a contract is cancelled: known only after the outcome
    charged = churned & (rng.random(rows) < 0.126 / max(churned.mean(), 1e-9))
    fee = np.where(charged, np.round(rng.uniform(20, 200, rows), 2), 0.0)
    return pd.DataFrame({
        "customer_id": [f"c{i:06d}" for i in range(rows)], "tenure_months": tenure,
        "monthly_charges": charges, "contract": contract, "support_calls": calls,
        "payment_method": payment, "gender": gender, LEAK: fee,
        "churned": np.where(churned, "yes", "no"),
    })


def assay(args: list[str], cwd: Path) -> tuple[int, str]:
    exe = Path(sys.executable).with_name("assay")
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "assay"]
    done = subprocess.run([*argv, *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "CI": "true"}, timeout=3600)
    return done.returncode, done.stdout + done.stderr


def show(step: str, code: int, out: str, pattern: str | None = None) -> None:
    print(f"\n$ assay {step}  -> exit {code}")
    lines = out.splitlines()
    picked = [ln for ln in lines if pattern and re.search(pattern, ln, re.I)] or lines[-12:]
    for line in picked[:25]:
        print(f"    {line}")


def champion(cwd: Path) -> int | None:
    code, out = assay(["models", "--json"], cwd)
    if code != 0:
        return None
    value = json.loads(out[out.index("{"):]).get("champion")
    return int(value) if value is not None else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args(argv)
    root = args.workdir or Path(tempfile.mkdtemp(prefix="assay-leak-"))
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    frame = churn_table(args.rows, args.seed)
    frame.to_csv(root / "data.csv", index=False)
    y = (frame["churned"] == "yes").astype(int)
    share = float((frame[LEAK] > 0).mean())
    print(f"{len(frame)} customers, churn rate {y.mean():.3f}; {LEAK} > 0 on {share:.1%} of rows, "
          f"P(churn | fee > 0) = {y[frame[LEAK] > 0].mean():.3f}, "
          f"single-feature AUC {roc_auc_score(y, frame[LEAK]):.3f}")
    failures: list[str] = []

    code, out = assay(["init", "data.csv", "--target", "churned", "--id", "customer_id",
                       "--protected", "gender"], root)
    show("init data.csv --target churned --id customer_id --protected gender", code, out)
    code, out = assay(["audit"], root)
    show("audit", code, out, rf"{LEAK}|leak")
    if LEAK not in out:
        failures.append("the audit did not name the leaking column")
    code, out = assay(["run"], root)
    show("run", code, out, rf"{LEAK}|promot|champion|gate|plausib|version")
    if LEAK not in out:
        failures.append("the run's output did not name the leaking column")
    if champion(root) is not None:
        failures.append("the leaky model became champion without any override")
    if "blocking finding" in out:  # a user who judges the finding wrong goes on regardless
        code, out = assay(["run", "--accept", "target_leakage"], root)
        show("run --accept target_leakage", code, out,
             rf"{LEAK}|promot|champion|plausib|registered|too good")
        first = champion(root)
        print(f"\n(with the audit overridden, the plausibility gate "
              f"{'refused' if first is None else 'let through'} the leaky model"
              f"{'' if first is None else f': v{first} is champion'})")
    versions = [int(v) for v in re.findall(r"[Vv]ersion (\d+) registered", out)] or [1]
    code, out = assay(["report", str(versions[0]), "-o", "report.html"], root)
    show(f"report {versions[0]} -o report.html", code, out)

    spec = yaml.safe_load((root / "assay.yaml").read_text())
    spec.setdefault("data", {}).setdefault("drop", []).append(LEAK)
    (root / "assay.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    print(f"\n(the user adds {LEAK} to data.drop in assay.yaml)")
    code, out = assay(["audit"], root)
    show("audit", code, out, rf"{LEAK}|leak|finding")
    code, out = assay(["run"], root)
    show("run", code, out, r"promot|champion|gate|version|explicit")
    numbers = [int(v) for v in re.findall(r"[Vv]ersion (\d+) registered", out)]
    latest = numbers[-1] if numbers else None
    if latest is not None and champion(root) != latest:
        code, out = assay(["promote", str(latest), "--reason",
                           "honest model after dropping the post-outcome field"], root)
        show(f"promote {latest}", code, out)
    honest = champion(root)
    if latest is None or honest != latest:
        failures.append("the honest model could not become champion without --force")
    else:
        print(f"\nchampion: v{honest} (no --force)")
    print(f"\nproject: {root}")
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
