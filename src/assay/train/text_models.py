"""Text classifiers on a pretrained encoder, with the scikit-learn estimator interface.

:class:`EmbeddingLinearClassifier` keeps the encoder frozen: a logistic regression on
its mean-pooled embeddings, which are cached per text in memory and per row set on
disk (keyed by the base's weight hash), so a search that fits several ``C`` on the same
rows encodes them once. :class:`TransformerTextClassifier` fine-tunes the encoder, with
LoRA adapters on the attention projections (``method="lora"``) or all of its weights
(``method="full"``), under a mean-pooling + dropout + linear head, early-stopped on the
validation rows with the best epoch's weights restored.

Both read one text column of a frame (or a sequence of strings) with
:func:`~assay.train.text_inputs.read_texts`: missing values count as empty texts, any
other non-string value is a :class:`DataError` naming the column. torch is imported
with this module; transformers and peft on first use. A pickled model holds what
training changed (the head, the adapters, or for ``full`` every encoder weight) and the
base's source and SHA-256: unpickling re-resolves the base and refuses one whose
weights differ.
"""

from __future__ import annotations

import copy as _copy
import hashlib
import io
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted

from assay.errors import ConfigError, DataError, MissingDependencyError
from assay.text.checkpoint import BaseCheckpoint
from assay.text.encoder import (
    embedding_memory,
    forget_embeddings,
    load_model,
    load_tokenizer,
    mean_pool,
    remember,
)
from assay.train.pipeline import StepCallback
from assay.train.text_layers import MAX_CACHE_BYTES, TopLayers, cache_bytes, encoder_layers, stack
from assay.train.text_inputs import (
    DEFAULT_MAX_LENGTH,
    BaseLike,
    label_codes,
    pad_batch,
    read_texts,
    resolve_checkpoint,
    reverify_base,
    sorted_batches,
    text_device,
    thread_count,
    token_limit,
    tokenize,
    torch_threads,
    training_batches,
)

try:
    import torch
    from torch import nn
except ImportError:  # pragma: no cover - torch comes with the text extra
    raise MissingDependencyError("torch", "text") from None

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "EmbeddingLinearClassifier",
    "TransformerTextClassifier",
    "clear_embedding_cache",
    "default_cache_dir",
    "lora_targets",
    "read_texts",
]

#: row sets smaller than this are not written to the disk cache (one-row serving calls)
_DISK_MIN_ROWS = 100
#: training rows scored in evaluation mode after each epoch for the training curve
_TRAIN_CURVE_ROWS = 512
_PREDICT_BATCH = 64

StoppingMetric = Literal["f1_macro", "log_loss"]


# the frozen encoder and its embedding cache ---------------------------------------------


def default_cache_dir() -> Path:
    """``$ASSAY_CACHE_DIR/embeddings``, else ``$XDG_CACHE_HOME/assay/embeddings`` or ~/.cache."""
    root = os.environ.get("ASSAY_CACHE_DIR")
    if root:
        return Path(root).expanduser() / "embeddings"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "assay" / "embeddings"


@dataclass
class _FrozenEncoder:
    """One loaded base in evaluation mode, and the embeddings it has computed per text."""

    base: BaseCheckpoint
    max_length: int
    device: str
    tokenizer: Any = None
    model: Any = None
    vectors: dict[str, np.ndarray] = field(init=False)
    batches: int = 0

    def __post_init__(self) -> None:
        # the process's memory of this base's embeddings, shared with the audit's and
        # the drift reference's encoders
        self.vectors = embedding_memory(self.base, self.max_length)

    def embed(self, texts: Sequence[str], cache_dir: Path | None) -> np.ndarray:
        """Unit-length mean-pooled embeddings: memory, then the disk file of the row set."""
        missing = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        file = None
        if missing and cache_dir is not None and len(texts) >= _DISK_MIN_ROWS:
            file = cache_dir / f"{self.base.sha256[:16]}-{self.max_length}" / _set_name(texts)
            stored = _load_array(file, len(texts), self.base.hidden_size)
            if stored is not None:
                self._remember(texts, stored)
                return stored
        if missing:
            self._remember(missing, self._encode(missing))
        out = (
            np.stack([self.vectors[t] for t in texts])
            if texts
            else np.zeros((0, self.base.hidden_size), dtype=np.float32)
        )
        if file is not None:
            _save_array(file, out)
        return out

    def _remember(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        remember(self.vectors, texts, vectors)

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self.model is None:  # loaded on the first miss: a disk hit needs no weights
            self.tokenizer = load_tokenizer(self.base)
            self.model = load_model(self.base).to(self.device).requires_grad_(False)
        ids = tokenize(self.tokenizer, texts, self.max_length)
        out = np.zeros((len(texts), self.base.hidden_size), dtype=np.float32)
        pad = int(self.tokenizer.pad_token_id or 0)
        threads = thread_count(self.base, sum(len(i) for i in ids))
        with torch.inference_mode(), torch_threads(threads):
            for rows in sorted_batches([len(i) for i in ids], _PREDICT_BATCH):
                batch = pad_batch([ids[i] for i in rows], pad, self.device)
                hidden = self.model(**batch).last_hidden_state
                pooled = mean_pool(hidden, batch["attention_mask"])
                pooled = nn.functional.normalize(pooled, p=2, dim=1)
                out[rows] = pooled.float().cpu().numpy()
                self.batches += 1
        return out


_ENCODERS: dict[tuple[str, str, int, str], _FrozenEncoder] = {}


def _frozen_encoder(base: BaseCheckpoint, max_length: int, device: str) -> _FrozenEncoder:
    key = (base.sha256, str(base.path), max_length, device)
    if key not in _ENCODERS:
        _ENCODERS[key] = _FrozenEncoder(base, max_length, device)
    return _ENCODERS[key]


def clear_embedding_cache() -> None:
    """Forget the loaded encoders and their in-memory embeddings (the disk cache stays)."""
    _ENCODERS.clear()
    forget_embeddings()


def _set_name(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        raw = text.encode("utf-8", errors="surrogatepass")
        digest.update(len(raw).to_bytes(8, "little"))
        digest.update(raw)
    return digest.hexdigest() + ".npy"


def _load_array(file: Path, rows: int, width: int) -> np.ndarray | None:
    try:
        array = np.load(file, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if array.shape != (rows, width) or array.dtype != np.float32:
        return None
    return np.asarray(array)


def _save_array(file: Path, array: np.ndarray) -> None:
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        partial = file.with_name(f"{file.name}.{os.getpid()}.partial")
        with open(partial, "wb") as handle:
            np.save(handle, array, allow_pickle=False)
        os.replace(partial, file)
    except OSError:  # a read-only or full cache only costs a re-encode next time
        pass


# the frozen-encoder classifier ----------------------------------------------------------


class EmbeddingLinearClassifier(ClassifierMixin, BaseEstimator):
    """Logistic regression on a frozen encoder's mean-pooled, unit-length text embeddings.

    Args:
        base: the checkpoint (``model.base``: a directory, an installed package, or a
            resolved :class:`BaseCheckpoint`); ``None`` is the default MiniLM encoder.
        text_column: the frame's text column (a frame of one column needs none).
        C: inverse L2 penalty of the logistic regression.
        class_weight: ``"balanced"`` weighs classes by inverse frequency.
        max_length: tokens read per text (default 128, capped by the base).
        cache_dir: where row sets' embeddings are kept on disk (``None``:
            :func:`default_cache_dir`); ``disk_cache=False`` keeps them in memory only.
        device: ``cpu``, ``cuda`` or ``None``/``auto`` (a GPU when torch sees one).
        random_state: the logistic regression's seed.

    Fitted attributes: ``classes_``, ``linear_`` (the LogisticRegression), ``base_``.
    """

    #: the server may score concurrent requests to this model in one call
    prefers_batches_ = True

    def __init__(
        self,
        base: BaseLike = None,
        *,
        text_column: str | None = None,
        C: float = 10.0,
        class_weight: Literal["balanced"] | None = None,
        max_length: int | None = None,
        cache_dir: str | Path | None = None,
        disk_cache: bool = True,
        device: str | None = None,
        random_state: int = 0,
    ) -> None:
        self.base = base
        self.text_column = text_column
        self.C = C
        self.class_weight = class_weight
        self.max_length = max_length
        self.cache_dir = cache_dir
        self.disk_cache = disk_cache
        self.device = device
        self.random_state = random_state

    def embed(self, X: Any) -> np.ndarray:
        """The embeddings of ``X``'s texts, shape (rows, hidden size)."""
        base = getattr(self, "base_", None) or resolve_checkpoint(self.base)
        encoder = _frozen_encoder(
            base, token_limit(base, self.max_length), text_device(self.device)
        )
        folder = None
        if self.disk_cache:
            folder = Path(self.cache_dir).expanduser() if self.cache_dir else default_cache_dir()
        return encoder.embed(read_texts(X, self.text_column), folder)

    def fit(self, X: Any, y: Any) -> EmbeddingLinearClassifier:
        """Embed the training texts (once per base and row set) and fit the linear head."""
        self.classes_, codes = label_codes(y)
        self.base_ = resolve_checkpoint(self.base)
        features = self.embed(X)
        self.linear_ = LogisticRegression(
            C=float(self.C),
            class_weight=self.class_weight,
            max_iter=2000,
            random_state=self.random_state,
        ).fit(features, codes)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        check_is_fitted(self, "linear_")
        out = np.zeros((0, len(self.classes_)))
        features = self.embed(X)
        if len(features):
            out = self.linear_.predict_proba(features)
        return np.asarray(out, dtype=np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class."""
        return np.asarray(self.classes_[np.argmax(self.predict_proba(X), axis=1)])

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if isinstance(getattr(self, "base_", None), BaseCheckpoint):
            self.base_ = reverify_base(self.base_)


# the fine-tuned classifier --------------------------------------------------------------


def _peft() -> Any:
    """The ``peft`` package (LoRA), or a MissingDependencyError naming the ``text`` extra."""
    try:
        import peft
        import peft.utils.constants
    except ImportError as exc:  # pragma: no cover - peft comes with the text extra
        raise MissingDependencyError("peft", "text") from exc
    return peft


#: attention projections per encoder type (LoRA's targets); others use peft's own table
_ATTENTION = {
    "bert": ["query", "key", "value"],
    "roberta": ["query", "key", "value"],
    "xlm-roberta": ["query", "key", "value"],
    "camembert": ["query", "key", "value"],
    "electra": ["query", "key", "value"],
    "distilbert": ["q_lin", "k_lin", "v_lin"],
    "deberta-v2": ["query_proj", "key_proj", "value_proj"],
}


def lora_targets(model_type: str) -> list[str]:
    """The attention projection modules LoRA adapts in an encoder of ``model_type``."""
    if model_type in _ATTENTION:
        return list(_ATTENTION[model_type])
    known = _peft().utils.constants.TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
    if model_type in known:
        return list(known[model_type])
    raise ConfigError(
        f"LoRA does not know the attention projections of a '{model_type}' encoder",
        key="model.base",
        expected="a bert, roberta, distilbert, deberta-v2 or electra checkpoint",
        received=model_type,
        fix="Use the finetune_full or embedding_linear family with this base, or another base.",
    )


class _Classifier(nn.Module):
    """Encoder -> attention-masked mean pooling -> dropout -> linear head."""

    def __init__(self, encoder: Any, hidden: int, n_classes: int, dropout: float) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.classify(hidden, attention_mask)

    def classify(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits from the encoder's last hidden states."""
        logits: torch.Tensor = self.head(self.dropout(mean_pool(hidden, attention_mask)))
        return logits


class _Steps:
    """How a batch of rows reaches the logits: through the whole network, or from the
    cached output of the frozen lower blocks through the top ones only."""

    def __init__(self, net: _Classifier, pad: int, device: str, top: TopLayers | None) -> None:
        self.net = net
        self.pad = pad
        self.device = device
        self.top = top
        self.cached: dict[int, list[torch.Tensor]] = {}

    def remember(self, rows: _Rows) -> None:
        """Run the frozen lower blocks once over ``rows`` (only on the cached path)."""
        if self.top is not None and id(rows) not in self.cached:
            self.cached[id(rows)] = self.top.lower(rows.ids, self.pad, self.device)

    def logits(self, rows: _Rows, index: np.ndarray) -> torch.Tensor:
        if self.top is not None:
            states = self.cached[id(rows)]
            hidden, mask = stack([states[i] for i in index], self.device)
            return self.net.classify(self.top.forward(hidden, mask), mask)
        logits: torch.Tensor = self.net(
            **pad_batch([rows.ids[i] for i in index], self.pad, self.device)
        )
        return logits


@dataclass
class _Rows:
    """Token ids and label codes of one row set."""

    ids: list[list[int]]
    codes: np.ndarray

    @property
    def lengths(self) -> list[int]:
        return [len(i) for i in self.ids]


class TransformerTextClassifier(ClassifierMixin, BaseEstimator):
    """A pretrained encoder fine-tuned for classification, with LoRA or in full.

    Training: AdamW (no decay on biases and LayerNorm), linear warm-up over
    ``warmup_ratio`` of the steps then cosine decay to zero, gradients clipped to norm
    1, batches of similar length padded per batch. After each epoch the validation
    rows (``eval_set``, else ``validation_fraction`` of the training rows, stratified)
    are scored; training stops ``patience`` epochs after the best and the best epoch's
    weights (adapters or encoder, and the head) are restored. Seeded: the same seed,
    data and thread count give the same model.

    Args:
        base: the checkpoint (see :class:`EmbeddingLinearClassifier`).
        method: ``"lora"`` (adapters on the attention projections, base frozen) or
            ``"full"`` (every weight trained).
        r, alpha, lora_dropout: the LoRA rank, scaling (``alpha / r``) and dropout.
        layers: LoRA adapts only the top ``layers`` encoder blocks (``None``: every
            block). The frozen blocks below run once per text and their output is
            cached for every epoch (:mod:`assay.train.text_layers`), so a step costs
            what the top blocks cost.
        learning_rate, weight_decay, warmup_ratio: optimiser and schedule.
        epochs: the most epochs; batch_size: texts per step.
        max_length: tokens read per text (default 128, capped by the base).
        head_dropout: dropout before the linear head.
        patience: epochs without validation improvement before stopping.
        validation_fraction: held out when no ``eval_set`` is given (0: none).
        stopping_metric: ``"f1_macro"`` (ties broken by log loss) or ``"log_loss"``.
        class_weight: ``"balanced"`` weighs the loss by inverse class frequency.
        seed: initialisation, dropout, shuffling and the validation split.
        device: ``cpu``, ``cuda`` or ``None``/``auto``.
        threads: torch threads while fitting and scoring (default: the cores this
            process may use; one for an encoder narrower than 256, and for scoring a
            few texts).
        quantize: ``"int8"`` scores (after training, and wherever the model is loaded)
            with the adapters merged into the base and the linear layers' weights in
            int8, activations quantised per call (``torch.ao.quantization.
            quantize_dynamic``); each text is then scored alone, so its answer does not
            depend on the texts batched with it. On a CPU about twice as fast as float32
            for one text and faster in bulk too; what it costs in accuracy is measured on
            the test rows like any model. The default; ``"none"`` scores in float32 (so
            does a model on a GPU, and on a CPU whose torch build has no quantised engine).

    Fitted attributes: ``classes_``, ``base_``, ``history_`` (per-epoch log loss on up
    to 512 training rows, scored like the validation rows without dropout, and on the
    validation rows: the form the MLP records, which the learning-curve diagnosis reads),
    ``history_metric_`` (``"log_loss"``), ``validation_scores_`` (the stopping metric
    per epoch), ``best_epoch_`` (1-based), ``n_epochs_``, ``n_params_``,
    ``n_trainable_params_``, ``lower_cached_`` (whether the frozen lower blocks ran
    once per text) and ``device_`` (where it was trained).
    """

    #: the server may score concurrent requests to this model in one call
    prefers_batches_ = True
    _net: _Classifier | None = None
    _scorer: nn.Module | None = None
    _tokenizer: Any = None

    def __init__(
        self,
        base: BaseLike = None,
        *,
        text_column: str | None = None,
        method: Literal["lora", "full"] = "lora",
        r: int = 8,
        alpha: float = 16.0,
        lora_dropout: float = 0.1,
        layers: int | None = None,
        learning_rate: float = 1e-3,
        epochs: int = 3,
        batch_size: int = 16,
        max_length: int | None = None,
        warmup_ratio: float = 0.1,
        weight_decay: float = 0.01,
        head_dropout: float = 0.1,
        patience: int = 2,
        validation_fraction: float = 0.1,
        stopping_metric: StoppingMetric = "f1_macro",
        class_weight: Literal["balanced"] | None = None,
        seed: int = 0,
        device: str | None = None,
        threads: int | None = None,
        quantize: Literal["none", "int8"] = "int8",
    ) -> None:
        self.base = base
        self.text_column = text_column
        self.method = method
        self.r = r
        self.alpha = alpha
        self.lora_dropout = lora_dropout
        self.layers = layers
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.max_length = max_length
        self.warmup_ratio = warmup_ratio
        self.weight_decay = weight_decay
        self.head_dropout = head_dropout
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.stopping_metric = stopping_metric
        self.class_weight = class_weight
        self.seed = seed
        self.device = device
        self.threads = threads
        self.quantize = quantize

    # building ---------------------------------------------------------------------------

    def _check_params(self) -> None:
        if self.method not in ("lora", "full"):
            raise ConfigError(
                f"unknown fine-tuning method {self.method!r}",
                key="method",
                expected="'lora' or 'full'",
                received=self.method,
                fix="Use method='lora' (adapters) or method='full' (every weight).",
            )
        if getattr(self, "quantize", "none") not in ("none", "int8"):
            raise ConfigError(
                f"unknown quantisation {self.quantize!r}",
                key="quantize",
                expected="'none' or 'int8'",
                received=self.quantize,
                fix="Use quantize='none' (float32) or 'int8'.",
            )
        if self.stopping_metric not in ("f1_macro", "log_loss"):
            raise ConfigError(
                f"unknown stopping metric {self.stopping_metric!r}",
                key="stopping_metric",
                expected="'f1_macro' or 'log_loss'",
                received=self.stopping_metric,
                fix="Use stopping_metric='f1_macro' or 'log_loss'.",
            )

    def _adapted_blocks(self, encoder: Any) -> list[int] | None:
        """The indices of the blocks LoRA adapts: the top ``layers`` (None: every block)."""
        layers = getattr(self, "layers", None)
        blocks = encoder_layers(encoder)
        if layers is None or blocks is None or int(layers) >= len(blocks):
            return None
        return list(range(len(blocks) - max(1, int(layers)), len(blocks)))

    def _build(self, base: BaseCheckpoint, n_classes: int, device: str) -> _Classifier:
        encoder = load_model(base)
        if self.method == "lora":
            peft = _peft()
            config = peft.LoraConfig(
                r=int(self.r),
                lora_alpha=float(self.alpha),
                lora_dropout=float(self.lora_dropout),
                target_modules=lora_targets(base.model_type),
                layers_to_transform=self._adapted_blocks(encoder),
                bias="none",
            )
            with warnings.catch_warnings():  # peft asks transformers a deprecated question
                warnings.simplefilter("ignore", FutureWarning)
                encoder = peft.get_peft_model(encoder, config)  # freezes every base weight
        return _Classifier(encoder, base.hidden_size, n_classes, float(self.head_dropout)).to(
            device
        )

    @property
    def _model(self) -> _Classifier:
        if self._net is None:
            raise RuntimeError("the network is not built: fit the model first")
        return self._net

    def _trainable_state(self) -> dict[str, torch.Tensor]:
        """What training changed: adapters (or every encoder weight) and the head, on CPU."""
        net = self._model
        if self.method == "lora":
            encoder = _peft().get_peft_model_state_dict(net.encoder)
        else:
            encoder = net.encoder.state_dict()
        state = {f"encoder.{k}": v for k, v in encoder.items()}
        state.update({f"head.{k}": v for k, v in net.head.state_dict().items()})
        return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}

    def _load_trainable(self, state: dict[str, torch.Tensor]) -> None:
        encoder = {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
        head = {k[len("head.") :]: v for k, v in state.items() if k.startswith("head.")}
        if self.method == "lora":
            _peft().set_peft_model_state_dict(self._model.encoder, encoder)
        else:
            self._model.encoder.load_state_dict(encoder)
        self._model.head.load_state_dict(head)

    # training ---------------------------------------------------------------------------

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        eval_set: tuple[Any, Any] | None = None,
        on_step: StepCallback | None = None,
    ) -> TransformerTextClassifier:
        """Fine-tune; ``eval_set=(X_val, y_val)`` drives early stopping; ``on_step(epoch,
        loss)`` sees each epoch's validation loss (``1 - macro F1`` or the log loss)."""
        self._check_params()
        texts = read_texts(X, self.text_column)
        self.classes_, codes = label_codes(y)
        if len(texts) != len(codes):
            raise DataError(
                f"{len(texts)} texts but {len(codes)} labels",
                where="the training rows",
                expected="one label per text",
                received=f"{len(texts)} texts, {len(codes)} labels",
                fix="Pass the texts and labels of the same rows.",
            )
        val_texts: list[str] = []
        val_codes = np.zeros(0, dtype=np.int64)
        if eval_set is not None:
            val_texts = read_texts(eval_set[0], self.text_column)
            val_labels = np.asarray(eval_set[1]).ravel()
            known = np.isin(val_labels, self.classes_)
            val_texts = [t for t, k in zip(val_texts, known, strict=True) if k]
            val_codes = np.searchsorted(self.classes_, val_labels[known]).astype(np.int64)
        elif self.validation_fraction > 0 and len(texts) >= 20:
            texts, val_texts, codes, val_codes = self._split(texts, codes)
        self.base_ = resolve_checkpoint(self.base)
        self.max_length_ = token_limit(self.base_, self.max_length)
        device = text_device(self.device)
        self.device_ = device
        with torch_threads(int(self.threads or thread_count(self.base_))):
            torch.manual_seed(int(self.seed))
            self._tokenizer = load_tokenizer(self.base_)
            self._net = self._build(self.base_, len(self.classes_), device)
            train = _Rows(tokenize(self._tokenizer, texts, self.max_length_), codes)
            val = _Rows(tokenize(self._tokenizer, val_texts, self.max_length_), val_codes)
            self._train(train, val, device, on_step)
        self.n_params_ = sum(p.numel() for p in self._model.parameters())
        self.n_trainable_params_ = sum(
            p.numel() for p in self._model.parameters() if p.requires_grad
        )
        self._scorer = self._quantised()
        return self

    def _quantised(self) -> nn.Module | None:
        """The int8 scoring copy of the trained network (``quantize="int8"`` on a CPU)."""
        if getattr(self, "quantize", "none") != "int8" or self._net is None:
            return None
        if next(self._net.parameters()).device.type != "cpu":
            return None
        copy = _copy.deepcopy(self._net).to("cpu").eval()
        if self.method == "lora":
            copy.encoder = copy.encoder.merge_and_unload()
        if not _int8_engine():
            return None
        dynamic: Any = getattr(torch.ao.quantization, "quantize_dynamic")
        with warnings.catch_warnings():  # torch points this API to torchao; it still works
            warnings.simplefilter("ignore")
            quantised: nn.Module = dynamic(copy, {nn.Linear}, dtype=torch.qint8)
        return quantised.eval()

    def _split(
        self, texts: list[str], codes: np.ndarray
    ) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
        index = np.arange(len(texts))
        try:
            fit_idx, val_idx = train_test_split(
                index, test_size=self.validation_fraction, random_state=self.seed, stratify=codes
            )
        except ValueError:  # a class too rare to stratify
            fit_idx, val_idx = train_test_split(
                index, test_size=self.validation_fraction, random_state=self.seed
            )
        return (
            [texts[i] for i in fit_idx],
            [texts[i] for i in val_idx],
            codes[fit_idx],
            codes[val_idx],
        )

    def _optimiser(self, steps: int) -> tuple[torch.optim.Optimizer, Any]:
        decay: list[nn.Parameter] = []
        plain: list[nn.Parameter] = []
        for name, param in self._model.named_parameters():
            if not param.requires_grad:
                continue
            no_decay = name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name
            (plain if no_decay else decay).append(param)
        optimiser = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": float(self.weight_decay)},
                {"params": plain, "weight_decay": 0.0},
            ],
            lr=float(self.learning_rate),
        )
        warmup = round(float(self.warmup_ratio) * steps)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / (warmup + 1)
            progress = (step - warmup) / max(1, steps - warmup)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

        return optimiser, torch.optim.lr_scheduler.LambdaLR(optimiser, factor)

    def _train(self, train: _Rows, val: _Rows, device: str, on_step: StepCallback | None) -> None:
        generator = torch.Generator().manual_seed(int(self.seed))
        size = max(1, int(self.batch_size))
        epochs = max(1, int(self.epochs))
        per_epoch = math.ceil(len(train.ids) / size)
        optimiser, schedule = self._optimiser(per_epoch * epochs)
        weight = None
        if self.class_weight == "balanced":
            counts = np.bincount(train.codes, minlength=len(self.classes_)).astype(np.float64)
            counts[counts == 0] = 1.0
            balanced = len(train.codes) / (len(self.classes_) * counts)
            weight = torch.tensor(balanced, dtype=torch.float32, device=device)
        loss_fn = nn.CrossEntropyLoss(weight=weight)
        sample = torch.randperm(len(train.ids), generator=generator)[:_TRAIN_CURVE_ROWS].numpy()
        trainable = [p for p in self._model.parameters() if p.requires_grad]
        pad = int(self._tokenizer.pad_token_id or 0)
        steps = _Steps(self._model, pad, device, self._top_layers(train, val, pad, device))
        steps.remember(train)
        steps.remember(val)
        self.lower_cached_ = steps.top is not None
        history: dict[str, list[float]] = {"train": [], "validation": []}
        scores: list[float] = []
        best: tuple[float, float] = (math.inf, math.inf)
        best_epoch, best_state, stale = 0, None, 0
        for epoch in range(1, epochs + 1):
            self._model.train()
            for rows in training_batches(train.lengths, size, generator):
                target = torch.from_numpy(train.codes[rows]).to(device)
                optimiser.zero_grad(set_to_none=True)
                loss = loss_fn(steps.logits(train, rows), target)
                loss.backward()
                nn.utils.clip_grad_norm_(trainable, 1.0)
                optimiser.step()
                schedule.step()
            self._model.eval()
            history["train"].append(_log_loss(_scored(steps, train, sample), train.codes[sample]))
            if not val.ids:
                best_epoch = epoch
                continue
            proba = _scored(steps, val, np.arange(len(val.ids)))
            log_loss = _log_loss(proba, val.codes)
            history["validation"].append(log_loss)
            if self.stopping_metric == "f1_macro":
                score = float(
                    f1_score(
                        val.codes,
                        np.argmax(proba, axis=1),
                        labels=np.arange(len(self.classes_)),
                        average="macro",
                        zero_division=0,
                    )
                )
                scores.append(score)
                rank = (1.0 - score, log_loss)
            else:
                scores.append(log_loss)
                rank = (log_loss, 0.0)
            tied = abs(rank[0] - best[0]) <= 1e-9
            if rank[0] < best[0] - 1e-9 or (tied and rank[1] < best[1] - 1e-9):
                best, best_epoch, stale = rank, epoch, 0
                best_state = self._trainable_state()
            else:
                stale += 1
            if on_step is not None:
                on_step(epoch, rank[0])
            if stale >= int(self.patience):
                break
        if best_state is not None:
            self._load_trainable(best_state)
        self._model.eval()
        self.history_ = history
        self.history_metric_ = "log_loss"
        self.validation_scores_ = scores
        self.best_epoch_ = int(best_epoch)
        self.n_epochs_ = len(history["train"])

    def _top_layers(self, train: _Rows, val: _Rows, pad: int, device: str) -> TopLayers | None:
        """The top-block runner when LoRA adapts only the top blocks and the cached path
        fits in memory and computes what the whole network computes; else None."""
        if self.method != "lora":
            return None
        encoder = self._model.encoder.base_model.model
        adapted = self._adapted_blocks(encoder)
        if adapted is None:
            return None
        needed = cache_bytes(train.lengths + val.lengths, self.base_.hidden_size)
        if needed > MAX_CACHE_BYTES:
            return None
        try:
            top = TopLayers(encoder, len(adapted))
        except ValueError:
            return None
        return top if top.agrees(train.ids[:8], pad, device) else None

    # inference --------------------------------------------------------------------------

    def _proba(self, ids: Sequence[list[int]]) -> np.ndarray:
        out = np.zeros((len(ids), len(self.classes_)), dtype=np.float64)
        if not ids:
            return out
        if self._scorer is not None:
            pad = int(self._tokenizer.pad_token_id or 0)
            with torch.inference_mode():
                for i, row in enumerate(ids):  # alone: int8 activations scale per call
                    logits = self._scorer(**pad_batch([row], pad, "cpu"))
                    out[i] = torch.softmax(logits.float(), dim=1).cpu().numpy()[0]
            return out
        device = next(self._model.parameters()).device
        pad = int(self._tokenizer.pad_token_id or 0)
        with torch.inference_mode():
            for rows in sorted_batches([len(i) for i in ids], _PREDICT_BATCH):
                logits = self._model(**pad_batch([ids[i] for i in rows], pad, str(device)))
                out[rows] = torch.softmax(logits.float(), dim=1).cpu().numpy()
        return out

    def _ensure_loaded(self) -> None:
        if self._net is not None:
            return
        weights = getattr(self, "_weights", None)
        if weights is None:
            check_is_fitted(self, "best_epoch_")
            raise RuntimeError("the fitted model lost its weights")
        state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
        self._tokenizer = load_tokenizer(self.base_)
        self._net = self._build(self.base_, len(self.classes_), text_device(self.device))
        self._load_trainable(state)
        self._model.eval()
        self._scorer = self._quantised()
        self._weights = None

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities for a frame's text column or a sequence of strings."""
        check_is_fitted(self, "best_epoch_")
        self._ensure_loaded()
        ids = tokenize(self._tokenizer, read_texts(X, self.text_column), self.max_length_)
        # int8 scores one text at a time: products that small only wait on a second thread
        threads = self.threads or (
            1 if self._scorer is not None else thread_count(self.base_, sum(len(i) for i in ids))
        )
        with torch_threads(int(threads)):
            return self._proba(ids)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class."""
        return np.asarray(self.classes_[np.argmax(self.predict_proba(X), axis=1)])

    # pickling ---------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = dict(super().__getstate__())  # never the live __dict__
        net = state.pop("_net", None)
        state.pop("_tokenizer", None)
        state.pop("_scorer", None)
        if net is not None:
            buffer = io.BytesIO()
            torch.save(self._trainable_state(), buffer)
            state["_weights"] = buffer.getvalue()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # versions pickled before these parameters existed adapted every block in float32
        state = {"layers": None, "quantize": "none", **state}
        super().__setstate__(state)
        self._net = None
        self._scorer = None
        self._tokenizer = None
        if isinstance(getattr(self, "base_", None), BaseCheckpoint):
            self.base_ = reverify_base(self.base_)


def _int8_engine() -> bool:
    """Whether this torch build has a quantised engine for int8 linear layers on the CPU."""
    engines = [e for e in torch.backends.quantized.supported_engines if e != "none"]
    if not engines:
        return False
    if torch.backends.quantized.engine in (None, "none"):
        torch.backends.quantized.engine = engines[0]
    return True


def _scored(steps: _Steps, rows: _Rows, index: np.ndarray) -> np.ndarray:
    """Probabilities of ``rows[index]``, in evaluation mode, in batches of similar length."""
    out = np.zeros((len(index), steps.net.head.out_features), dtype=np.float64)
    lengths = [len(rows.ids[i]) for i in index]
    with torch.inference_mode():
        for batch in sorted_batches(lengths, _PREDICT_BATCH):
            logits = steps.logits(rows, index[batch])
            out[batch] = torch.softmax(logits.float(), dim=1).cpu().numpy()
    return out


def _log_loss(proba: np.ndarray, codes: np.ndarray) -> float:
    if len(codes) == 0:
        return float("nan")
    picked = np.clip(proba[np.arange(len(codes)), codes], 1e-15, 1.0)
    return float(-np.mean(np.log(picked)))
