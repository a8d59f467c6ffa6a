"""Text-classification families on a pretrained encoder: frozen embeddings, LoRA, full fine-tune.

Registered in :data:`assay.train.families.FAMILIES` when this module is imported:

* ``embedding_linear``: logistic regression on the frozen encoder's embeddings
  (``C`` searched); the embeddings are computed once per base and row set.
* ``lora``: LoRA adapters on the attention projections plus a linear head, the base
  frozen; the artifact holds only the adapters and the head.
* ``finetune_full``: every encoder weight trained (opt-in: slow on a CPU, and the
  artifact holds the whole encoder).

The base checkpoint (``model.base``), the tokens read per text, the device and the
embedding cache come from the build context's ``text`` options (a search resolves the
base once and passes it), else from the family's own attributes; ``None`` is the default
MiniLM encoder. Resolving it
hashes its weights, so a family resolves it once and keeps it. Importing this module
imports neither torch nor transformers: the estimators load with the first ``build``.

:meth:`TextFamily.estimated_seconds` estimates what one fit costs from the base's size,
the rows, the epochs and the tokens per text, with constants measured on a two-core
CPU, so that a search can skip a family whose cost exceeds its budget, saying why.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import optuna

from assay.config.metrics import CLASSIFICATION_TASKS
from assay.errors import ConfigError, MissingDependencyError
from assay.text.checkpoint import BaseCheckpoint, resolve_base
from assay.train.context import BuildContext
from assay.train.families import FAMILIES, BaseModelFamily
from assay.train.objective import ObjectiveHints

if TYPE_CHECKING:
    from assay.train.text_models import EmbeddingLinearClassifier, TransformerTextClassifier

__all__ = [
    "EmbeddingLinearFamily",
    "FullFineTuneFamily",
    "LoraFamily",
    "TextFamily",
    "encoder_blocks",
    "encoder_params",
    "mean_tokens",
]

#: seconds per (token x encoder weight) of MiniLM-L6 (10.6M layer weights), 128 tokens,
#: batches of 16, torch 2.13, two CPU cores shared with other work (load 3.5-4): a
#: training step ran 1.7 texts/s with LoRA and 1.9 with every weight trained on two
#: threads (4.1 and 3.2 on one: the shared cores make a second thread wait), and
#: embedding 9.8 texts/s. LoRA still back-propagates through every layer (it skips only
#: the frozen weights' gradients), so on a CPU it costs about what a full step costs.
SECONDS_PER_TOKEN_WEIGHT: dict[str, float] = {
    "lora": 4.2e-10,
    "full": 4.2e-10,
    "forward": 7.5e-11,
}
#: loading the base and building the model, per fit
LOAD_SECONDS = 2.0
#: metrics that judge labels, not probabilities: early stopping follows macro F1 for them
_LABEL_METRICS = frozenset(
    {
        "accuracy",
        "balanced_accuracy",
        "f1",
        "f1_macro",
        "f1_weighted",
        "precision",
        "recall",
        "recall_macro",
        "precision_macro",
    }
)


def mean_tokens(texts: Iterable[object], max_length: int = 128) -> float:
    """The mean tokens per text a WordPiece or BPE tokenizer will read, from characters.

    English runs at about 4.2 characters per token with MiniLM's tokenizer; four is
    used (an over- rather than an under-estimate), plus the two special tokens, capped
    at ``max_length``. Missing and non-string values count as empty texts.
    """
    counts = [
        min(max_length, math.ceil(len(t) / 4) + 2) if isinstance(t, str) else 2 for t in texts
    ]
    return float(sum(counts)) / len(counts) if counts else 2.0


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _config(base: BaseCheckpoint) -> dict[str, Any]:
    try:
        config = json.loads((base.path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def encoder_blocks(base: BaseCheckpoint) -> int:
    """The number of transformer blocks of the encoder, from ``config.json``."""
    config = _config(base)
    return int(config.get("num_hidden_layers", config.get("n_layers", 12)) or 12)


def encoder_params(base: BaseCheckpoint) -> int:
    """Weights of the encoder's layers (embeddings excluded: a lookup costs no arithmetic).

    Read from ``config.json``: per layer four attention projections and the two
    feed-forward matrices.
    """
    config = _config(base)
    hidden = base.hidden_size
    inner = int(config.get("intermediate_size", config.get("hidden_dim", 4 * hidden)) or 0)
    return encoder_blocks(base) * (4 * hidden * hidden + 2 * hidden * inner)


@dataclass(frozen=True)
class _Reading:
    base: BaseCheckpoint
    max_length: int | None
    device: str | None
    cache_dir: str | Path | None
    quantize: Literal["none", "int8"]


class TextFamily(BaseModelFamily):
    """A family that reads the text column through a pretrained encoder.

    Args:
        base: the checkpoint (``model.base``: a directory, an installed package or a
            resolved :class:`BaseCheckpoint`); ``None`` is the default MiniLM encoder.
        max_length: tokens read per text (``model.max_length``; default 128).
        device: ``model.device`` (``auto``, ``cpu`` or ``cuda``).
        cache_dir: where frozen embeddings are kept on disk (``embedding_linear``).
    """

    tasks: ClassVar[frozenset[str]] = frozenset({"text-classification"})
    #: builds on the pretrained checkpoint of the context's text options
    uses_base: ClassVar[bool] = True
    #: the estimator's ``method``, or ``"forward"`` for frozen embeddings (cost model)
    cost_kind: ClassVar[str] = "forward"

    def __init__(
        self,
        base: BaseCheckpoint | str | Path | None = None,
        *,
        max_length: int | None = None,
        device: str | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        self.base = base
        self.max_length = max_length
        self.device = device
        self.cache_dir = cache_dir
        self._resolved: dict[str, BaseCheckpoint] = {}
        self._speeds: dict[str, dict[str, float]] = {}

    def resolve(self, base: BaseCheckpoint | str | Path | None = None) -> BaseCheckpoint:
        """The checkpoint ``base`` (else the family's) names, resolved and hashed once."""
        chosen = self.base if base is None else base
        if isinstance(chosen, BaseCheckpoint):
            return chosen
        key = "" if chosen is None else str(chosen)
        if key not in self._resolved:
            self._resolved[key] = resolve_base(None if chosen is None else str(chosen))
        return self._resolved[key]

    def _reading(self, context: BuildContext) -> _Reading:
        """The base, tokens per text, device and cache: the context's, else the family's own."""
        text = context.text
        return _Reading(
            base=self.resolve(text.base),
            max_length=text.max_length or self.max_length,
            device=text.device or self.device,
            cache_dir=text.cache_dir or self.cache_dir,
            quantize=text.quantize,
        )

    def _text_column(self, text_column: str | None) -> str:
        if text_column is None:
            raise ConfigError(
                f"the {self.alias} family needs a text column",
                key="data.text",
                expected="the name of the free-text column",
                received="no text column",
                fix=f"Set data.text in assay.yaml, or remove {self.alias} from search.families.",
            )
        return text_column

    def _epochs(self, params: Mapping[str, Any] | None) -> int:
        return 1

    def _trained_share(self, params: Mapping[str, Any] | None, base: BaseCheckpoint) -> float:
        """The share of the encoder's blocks a training step runs (and back-propagates)."""
        return 1.0

    def estimated_seconds(
        self,
        n_rows: int,
        base: BaseCheckpoint | str | Path | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        mean_tokens: float | None = None,
        speeds: Mapping[str, float] | None = None,
    ) -> float:
        """Seconds one fit on ``n_rows`` rows should take on a two-core CPU.

        Cost = rows x epochs x tokens per text x encoder weights x the measured seconds
        per token-weight of this kind of step, plus loading. Batches are padded to their
        own longest text, so pass ``mean_tokens`` (:func:`mean_tokens` of the training
        texts); without it every text counts ``max_length`` tokens, a ceiling. ``params``
        (else the defaults) give the epochs. The estimate is for a CPU; a GPU is much
        faster. ``speeds`` (:meth:`measured_speeds`) replaces the constants with what this
        machine measured.
        """
        per = dict(SECONDS_PER_TOKEN_WEIGHT)
        per.update(speeds or {})
        checkpoint = self.resolve(base)
        tokens = float(mean_tokens or min(self.max_length or 128, checkpoint.max_length))
        weights = float(encoder_params(checkpoint))
        share = self._trained_share(params, checkpoint)
        per_row = tokens * weights * share * per[self.cost_kind]
        epochs = self._epochs(params)
        # each epoch also scores the validation rows (about a tenth) and a training sample
        scoring = 0.0
        # frozen lower blocks run once per text, their output cached for every epoch
        lower = 0.0
        if self.cost_kind != "forward":
            scoring = 0.2 * tokens * weights * share * per["forward"]
            lower = (1.0 - share) * tokens * weights * per["forward"]
        return LOAD_SECONDS + float(n_rows) * (epochs * (per_row + scoring) + lower)

    def over_budget(
        self,
        n_rows: int,
        budget_seconds: float,
        base: BaseCheckpoint | str | Path | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        mean_tokens: float | None = None,
        measure: bool = False,
    ) -> str | None:
        """Why one fit would not finish within ``budget_seconds`` (a skip reason), else None.

        ``measure``: time this machine first (:meth:`measured_speeds`) instead of using
        the constants measured on a two-core CPU.
        """
        speeds = self.measured_speeds(base) if measure and self.cost_kind != "forward" else None
        seconds = self.estimated_seconds(
            n_rows, base, params=params, mean_tokens=mean_tokens, speeds=speeds
        )
        if seconds <= budget_seconds:
            return None
        checkpoint = self.resolve(base)
        tokens = mean_tokens or min(self.max_length or 128, checkpoint.max_length)
        epochs = self._epochs(params)
        where = "on this machine" if speeds else "on the CPU"
        return (
            f"one fit on {n_rows:,} rows ({epochs} epoch{'s' if epochs != 1 else ''}, about "
            f"{tokens:.0f} tokens per text, base {checkpoint.source}) is estimated at "
            f"{_minutes(seconds)} {where}; the search budget is {_minutes(budget_seconds)}"
        )

    def measured_speeds(self, base: BaseCheckpoint | str | Path | None = None) -> dict[str, float]:
        """Seconds per token-weight of a forward pass and a training step, timed here once.

        Falls back to the constants when the timing cannot run (no torch).
        """
        checkpoint = self.resolve(base)
        key = f"{checkpoint.sha256}:{self.device or 'auto'}"
        if key not in self._speeds:
            try:
                from assay.train.text_speed import measure_speed
            except MissingDependencyError:
                return dict(SECONDS_PER_TOKEN_WEIGHT)
            self._speeds[key] = measure_speed(
                checkpoint, encoder_params(checkpoint), self.device
            )
        return dict(self._speeds[key])

    def _stopping(self, objective: ObjectiveHints) -> Literal["f1_macro", "log_loss"]:
        return "f1_macro" if objective.primary_metric in _LABEL_METRICS else "log_loss"


@FAMILIES.register("embedding_linear")
class EmbeddingLinearFamily(TextFamily):
    """Logistic regression on the frozen encoder's mean-pooled embeddings of the text column."""

    def search_space(self, trial: optuna.Trial, task: str) -> dict[str, Any]:
        """``C``, log-uniform."""
        return {"C": trial.suggest_float("C", 1e-2, 1e3, log=True)}

    def grid(self, task: str) -> dict[str, list[Any]]:
        """Five decades of regularisation (unit-length embeddings want a weak penalty)."""
        return {"C": [10.0, 1.0, 100.0, 0.1, 1000.0]}

    def refit_params(self, model: Any, row_ratio: float) -> dict[str, Any] | None:
        """Nothing to fix: the logistic regression needs no validation rows."""
        return {}

    def build(self, params: Mapping[str, Any], context: BuildContext) -> EmbeddingLinearClassifier:
        """An :class:`~assay.train.text_models.EmbeddingLinearClassifier` on the text column."""
        from assay.train.text_models import EmbeddingLinearClassifier  # imports torch

        column = self._text_column(context.text_column)
        options = self._reading(context)
        return EmbeddingLinearClassifier(
            options.base,
            text_column=column,
            C=float(params.get("C", 10.0)),
            class_weight="balanced" if context.objective.balance_classes else None,
            max_length=options.max_length,
            cache_dir=options.cache_dir,
            device=options.device,
            random_state=context.seed,
        )


class _FineTuneFamily(TextFamily):
    """What LoRA and the full fine-tune share: building the estimator, refitting on epochs."""

    method: ClassVar[Literal["lora", "full"]]
    cross_validated = False

    def _epochs(self, params: Mapping[str, Any] | None) -> int:
        chosen = params if params is not None else self.defaults("text-classification")
        return int(chosen.get("epochs", 3))

    def refit_params(self, model: Any, row_ratio: float) -> dict[str, Any] | None:
        """On a GPU, ``epochs``: the early-stopped best epoch, with no rows held out.

        On a CPU the search keeps the early-stopped model (``None``): a refit is a second
        fit as long as the first, to add the validation rows, and it would double what the
        family costs within the search budget.
        """
        best = int(getattr(model, "best_epoch_", 0) or 0)
        device = str(getattr(model, "device_", "cpu"))
        if best <= 0 or not device.startswith("cuda"):
            return None
        return {"epochs": best, "validation_fraction": 0.0}

    def _options(self, params: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def build(self, params: Mapping[str, Any], context: BuildContext) -> TransformerTextClassifier:
        """A :class:`~assay.train.text_models.TransformerTextClassifier` on the text column.

        ``patience`` (default 2), ``batch_size`` (16) and ``validation_fraction`` (0.1,
        used without an ``eval_set``) may be passed in params.
        """
        from assay.train.text_models import TransformerTextClassifier  # imports torch

        column = self._text_column(context.text_column)
        if context.task not in CLASSIFICATION_TASKS:
            raise ConfigError(
                f"the {self.alias} family classifies; the task is '{context.task}'",
                key="task",
                expected="text-classification",
                received=context.task,
                fix=f"Remove {self.alias} from search.families.",
            )
        options = self._reading(context)
        objective = context.objective
        return TransformerTextClassifier(
            options.base,
            text_column=column,
            method=self.method,
            learning_rate=float(params.get("learning_rate", 1e-3)),
            epochs=int(params.get("epochs", 3)),
            batch_size=int(params.get("batch_size", 16)),
            max_length=options.max_length,
            patience=int(params.get("patience", 2)),
            validation_fraction=float(params.get("validation_fraction", 0.1)),
            stopping_metric=self._stopping(objective),
            class_weight="balanced" if objective.balance_classes else None,
            seed=context.seed,
            device=options.device,
            quantize=options.quantize,
            **self._options(params),
        )


@FAMILIES.register("lora")
class LoraFamily(_FineTuneFamily):
    """LoRA adapters on the encoder's attention projections and a linear head; the base frozen.

    LoRA trains well with learning rates ten times those of a full fine-tune. Adapters go
    on the top ``layers`` blocks only (default 2): the frozen blocks below then run once
    per text instead of once per step and epoch, which on a CPU makes a step several
    times cheaper (:mod:`assay.train.text_layers`). The defaults (the top 2 blocks, rank
    8, alpha 16, 3 epochs) fit a few thousand reviews on two cores in minutes.
    """

    method = "lora"
    cost_kind = "lora"

    def _trained_share(self, params: Mapping[str, Any] | None, base: BaseCheckpoint) -> float:
        chosen = params if params is not None else self.defaults("text-classification")
        blocks = encoder_blocks(base)
        layers = chosen.get("layers")
        return 1.0 if layers is None else min(blocks, max(1, int(layers))) / blocks

    def search_space(self, trial: optuna.Trial, task: str) -> dict[str, Any]:
        """Adapted top blocks, rank, alpha as a multiple of the rank, adapter dropout,
        learning rate, epochs."""
        return {
            "layers": trial.suggest_categorical("layers", [1, 2, 3]),
            "r": trial.suggest_categorical("r", [4, 8, 16]),
            "alpha_multiplier": trial.suggest_categorical("alpha_multiplier", [1.0, 2.0, 4.0]),
            "lora_dropout": trial.suggest_float("lora_dropout", 0.0, 0.3),
            "learning_rate": trial.suggest_float("learning_rate", 1e-4, 5e-3, log=True),
            "epochs": trial.suggest_int("epochs", 2, 6),
        }

    def grid(self, task: str) -> dict[str, list[Any]]:
        """Four points over the rank and the learning rate."""
        return {
            "layers": [2],
            "r": [8, 16],
            "alpha_multiplier": [2.0],
            "lora_dropout": [0.1],
            "learning_rate": [1e-3, 3e-4],
            "epochs": [3],
        }

    def defaults(self, task: str) -> dict[str, Any]:
        """The top 2 blocks, rank 8, alpha 16, dropout 0.1, learning rate 1e-3, 3 epochs."""
        return {
            "layers": 2,
            "r": 8,
            "alpha_multiplier": 2.0,
            "lora_dropout": 0.1,
            "learning_rate": 1e-3,
            "epochs": 3,
        }

    def _options(self, params: Mapping[str, Any]) -> dict[str, Any]:
        r = int(params.get("r", 8))
        layers = params.get("layers", 2)
        return {
            "layers": None if layers is None else int(layers),
            "r": r,
            "alpha": float(params.get("alpha_multiplier", 2.0)) * r,
            "lora_dropout": float(params.get("lora_dropout", 0.1)),
        }


@FAMILIES.register("finetune_full")
class FullFineTuneFamily(_FineTuneFamily):
    """Every encoder weight fine-tuned with a linear head (opt-in: costly, and a large artifact)."""

    method = "full"
    cost_kind = "full"

    def search_space(self, trial: optuna.Trial, task: str) -> dict[str, Any]:
        """Learning rate and epochs."""
        return {
            "learning_rate": trial.suggest_float("learning_rate", 2e-5, 1e-4, log=True),
            "epochs": trial.suggest_int("epochs", 2, 5),
        }

    def grid(self, task: str) -> dict[str, list[Any]]:
        """Two learning rates."""
        return {"learning_rate": [5e-5, 2e-5], "epochs": [3]}

    def _options(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {}
