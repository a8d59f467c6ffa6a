"""Multi-layer perceptrons in PyTorch with the scikit-learn estimator interface.

Both estimators take the preprocessed numeric matrix (sparse input is densified),
train with AdamW on mini-batches, stop early when the validation loss has not
improved for ``patience`` epochs and restore the weights of the best epoch. The
validation rows are an explicit ``eval_set`` or an internal ``validation_fraction``
of the training rows. Training is deterministic for a given ``random_state``: the
seed is set and torch runs single-threaded inside ``fit``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted

from assay.errors import MissingDependencyError
from assay.train.pipeline import StepCallback

try:
    import torch
    from torch import nn
except ImportError:  # pragma: no cover - torch is an optional dependency
    raise MissingDependencyError("torch", "deep") from None

__all__ = ["TorchMLPClassifier", "TorchMLPRegressor"]


def _dense(X: Any) -> np.ndarray:
    if sp.issparse(X):
        X = X.toarray()
    return np.ascontiguousarray(np.asarray(X, dtype=np.float32))


class _BaseMLP(BaseEstimator):
    """Shared training loop; subclasses define the output layer, loss and targets."""

    def __init__(
        self,
        hidden_layers: Sequence[int] = (64, 64),
        *,
        dropout: float = 0.1,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        batch_size: int = 64,
        max_epochs: int = 200,
        patience: int = 10,
        validation_fraction: float = 0.1,
        random_state: int = 0,
    ) -> None:
        self.hidden_layers = hidden_layers
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    # subclass hooks -------------------------------------------------------------------
    def _prepare_targets(self, y: np.ndarray) -> tuple[torch.Tensor, int]:
        raise NotImplementedError

    def _encode(self, y: np.ndarray) -> torch.Tensor:
        raise NotImplementedError

    def _loss(self) -> nn.Module:
        raise NotImplementedError

    def _loss_scale(self) -> float:
        return 1.0

    def _stratify(self, y: np.ndarray) -> np.ndarray | None:
        return None

    # training -------------------------------------------------------------------------
    def _network(self, n_in: int, n_out: int) -> nn.Sequential:
        layers: list[nn.Module] = []
        width = n_in
        for size in self.hidden_layers:
            layers += [nn.Linear(width, int(size)), nn.ReLU(), nn.Dropout(float(self.dropout))]
            width = int(size)
        layers.append(nn.Linear(width, n_out))
        return nn.Sequential(*layers)

    def _fit(
        self,
        X: Any,
        y: Any,
        eval_set: tuple[Any, Any] | None,
        on_step: StepCallback | None,
    ) -> None:
        X_arr = _dense(X)
        y_arr = np.asarray(y)
        X_val: np.ndarray | None
        y_val: np.ndarray | None
        if eval_set is not None:
            X_val, y_val = _dense(eval_set[0]), np.asarray(eval_set[1])
        elif self.validation_fraction > 0 and len(y_arr) >= 20:
            stratify = self._stratify(y_arr)
            try:
                X_arr, X_val, y_arr, y_val = train_test_split(
                    X_arr,
                    y_arr,
                    test_size=self.validation_fraction,
                    random_state=self.random_state,
                    stratify=stratify,
                )
            except ValueError:  # a class too rare to stratify
                X_arr, X_val, y_arr, y_val = train_test_split(
                    X_arr, y_arr, test_size=self.validation_fraction, random_state=self.random_state
                )
        else:
            X_val = y_val = None
        self.n_features_in_ = X_arr.shape[1]
        target, n_out = self._prepare_targets(y_arr)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            torch.manual_seed(self.random_state)
            self._train(X_arr, target, X_val, y_val, n_out, on_step)
        finally:
            torch.set_num_threads(threads)

    def _train(
        self,
        X: np.ndarray,
        target: torch.Tensor,
        X_val: np.ndarray | None,
        y_val: np.ndarray | None,
        n_out: int,
        on_step: StepCallback | None,
    ) -> None:
        net = self._network(X.shape[1], n_out)
        optimiser = torch.optim.AdamW(
            net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        loss_fn = self._loss()
        inputs = torch.from_numpy(X)
        val_inputs = torch.from_numpy(X_val) if X_val is not None else None
        val_target = self._encode(y_val) if y_val is not None else None
        generator = torch.Generator().manual_seed(self.random_state)
        scale = self._loss_scale()
        history: dict[str, list[float]] = {"train": [], "validation": []}
        best_loss, best_epoch, best_state, stale = np.inf, 0, None, 0
        batch = max(1, int(self.batch_size))
        for epoch in range(1, int(self.max_epochs) + 1):
            net.train()
            order = torch.randperm(len(inputs), generator=generator)
            for start in range(0, len(order), batch):
                idx = order[start : start + batch]
                optimiser.zero_grad()
                loss = loss_fn(net(inputs[idx]), target[idx])
                loss.backward()
                optimiser.step()
            net.eval()
            with torch.no_grad():
                train_loss = float(loss_fn(net(inputs), target)) * scale
                history["train"].append(train_loss)
                if val_inputs is None or val_target is None:
                    best_epoch, best_state = epoch, None
                    continue
                val_loss = float(loss_fn(net(val_inputs), val_target)) * scale
            history["validation"].append(val_loss)
            if val_loss < best_loss - 1e-7:
                best_loss, best_epoch, stale = val_loss, epoch, 0
                best_state = copy.deepcopy(net.state_dict())
            else:
                stale += 1
            if on_step is not None:
                on_step(epoch, val_loss)
            if stale >= self.patience:
                break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        self.module_ = net
        self.history_ = history
        self.best_epoch_ = int(best_epoch)
        self.n_epochs_ = len(history["train"])

    def _forward(self, X: Any) -> torch.Tensor:
        check_is_fitted(self, "module_")
        X_arr = _dense(X)
        if X_arr.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X_arr.shape[1]} features, but the network was fitted with "
                f"{self.n_features_in_}"
            )
        with torch.no_grad():
            out: torch.Tensor = self.module_(torch.from_numpy(X_arr))
        return out


class TorchMLPClassifier(ClassifierMixin, _BaseMLP):
    """A feed-forward classifier (softmax output, cross-entropy loss).

    Args:
        hidden_layers: widths of the hidden layers.
        dropout: dropout after each hidden layer.
        learning_rate, weight_decay: AdamW settings.
        batch_size, max_epochs, patience: mini-batch size, epoch cap, and epochs
            without validation improvement before stopping.
        validation_fraction: held out of the training rows when no ``eval_set`` is given.
        class_weight: ``"balanced"`` weighs the loss by inverse class frequency.
        random_state: the seed of initialisation, shuffling, dropout and the split.

    Fitted attributes: ``classes_``, ``module_``, ``history_`` (train/validation
    loss per epoch), ``history_metric_`` (``"log_loss"``), ``best_epoch_``
    (1-based), ``n_epochs_``.
    """

    def __init__(
        self,
        hidden_layers: Sequence[int] = (64, 64),
        *,
        dropout: float = 0.1,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        batch_size: int = 64,
        max_epochs: int = 200,
        patience: int = 10,
        validation_fraction: float = 0.1,
        class_weight: Literal["balanced"] | None = None,
        random_state: int = 0,
    ) -> None:
        super().__init__(
            hidden_layers,
            dropout=dropout,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            batch_size=batch_size,
            max_epochs=max_epochs,
            patience=patience,
            validation_fraction=validation_fraction,
            random_state=random_state,
        )
        self.class_weight = class_weight

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        eval_set: tuple[Any, Any] | None = None,
        on_step: StepCallback | None = None,
    ) -> TorchMLPClassifier:
        """Train; ``eval_set=(X_val, y_val)`` drives early stopping; ``on_step`` sees each epoch."""
        self.classes_ = np.unique(np.asarray(y))
        if len(self.classes_) < 2:
            raise ValueError("the training labels hold a single class; a classifier needs two")
        self.history_metric_ = "log_loss"
        self._fit(X, y, eval_set, on_step)
        return self

    def _stratify(self, y: np.ndarray) -> np.ndarray | None:
        return y

    def _encode(self, y: np.ndarray) -> torch.Tensor:
        codes = np.searchsorted(self.classes_, y)
        codes = np.clip(codes, 0, len(self.classes_) - 1)
        return torch.from_numpy(codes.astype(np.int64))

    def _prepare_targets(self, y: np.ndarray) -> tuple[torch.Tensor, int]:
        codes = self._encode(y)
        weight = None
        if self.class_weight == "balanced":
            counts = np.bincount(codes.numpy(), minlength=len(self.classes_)).astype(np.float64)
            counts[counts == 0] = 1.0
            weight = torch.tensor(len(codes) / (len(self.classes_) * counts), dtype=torch.float32)
        self._weight = weight
        return codes, len(self.classes_)

    def _loss(self) -> nn.Module:
        return nn.CrossEntropyLoss(weight=self._weight)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        proba = torch.softmax(self._forward(X), dim=1).numpy().astype(np.float64)
        return np.asarray(proba / proba.sum(axis=1, keepdims=True))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class."""
        return np.asarray(self.classes_[np.argmax(self.predict_proba(X), axis=1)])


class TorchMLPRegressor(RegressorMixin, _BaseMLP):
    """A feed-forward regressor trained on a standardised target.

    ``loss`` is ``"squared_error"`` (mean) or ``"absolute_error"`` (median). The
    recorded ``history_`` is in the target's own units (``history_metric_`` is
    ``"mse"`` or ``"mae"``). Other
    arguments and fitted attributes are those of :class:`TorchMLPClassifier`.
    """

    def __init__(
        self,
        hidden_layers: Sequence[int] = (64, 64),
        *,
        dropout: float = 0.1,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        batch_size: int = 64,
        max_epochs: int = 200,
        patience: int = 10,
        validation_fraction: float = 0.1,
        loss: Literal["squared_error", "absolute_error"] = "squared_error",
        random_state: int = 0,
    ) -> None:
        super().__init__(
            hidden_layers,
            dropout=dropout,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            batch_size=batch_size,
            max_epochs=max_epochs,
            patience=patience,
            validation_fraction=validation_fraction,
            random_state=random_state,
        )
        self.loss = loss

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        eval_set: tuple[Any, Any] | None = None,
        on_step: StepCallback | None = None,
    ) -> TorchMLPRegressor:
        """Train; ``eval_set=(X_val, y_val)`` drives early stopping; ``on_step`` sees each epoch."""
        y_arr = np.asarray(y, dtype=np.float64)
        self.y_mean_ = float(np.mean(y_arr))
        std = float(np.std(y_arr))
        self.y_scale_ = std if std > 0 else 1.0
        self.history_metric_ = "mae" if self.loss == "absolute_error" else "mse"
        self._fit(X, y_arr, eval_set, on_step)
        return self

    def _encode(self, y: np.ndarray) -> torch.Tensor:
        scaled = (np.asarray(y, dtype=np.float64) - self.y_mean_) / self.y_scale_
        return torch.from_numpy(scaled.astype(np.float32)[:, None])

    def _prepare_targets(self, y: np.ndarray) -> tuple[torch.Tensor, int]:
        return self._encode(y), 1

    def _loss(self) -> nn.Module:
        return nn.L1Loss() if self.loss == "absolute_error" else nn.MSELoss()

    def _loss_scale(self) -> float:
        return self.y_scale_ if self.loss == "absolute_error" else self.y_scale_**2

    def predict(self, X: Any) -> np.ndarray:
        """Predicted values in the target's units."""
        out = self._forward(X).numpy()[:, 0].astype(np.float64)
        return out * self.y_scale_ + self.y_mean_
