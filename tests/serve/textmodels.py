"""Text-classification helpers for the serving tests: the data, a counting model wrapper that
prefers batches, registering a wrapped model, and a real server on a loopback port.

The server runs in this process (uvicorn in a thread, the same protocol class ``assay serve``
uses), so a test can read the counters of the model the server loaded while it talks to it
over real HTTP.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from assay.project import Project
from assay.registry import ModelRegistry
from assay.serve.app import create_app
from assay.serve.connection import protocol_class
from assay.serve.gather import BatchPolicy
from assay.serve.protocols import RequestLimits

GOOD = ["great", "love", "fast", "friendly", "excellent"]
BAD = ["slow", "broken", "rude", "refund", "awful"]
FILLER = ["the", "service", "was", "and", "order", "staff", "my"]
#: a text holding this makes :class:`CountingTextModel` raise (a row that breaks the model)
POISON = "kaboom"


def text_frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Reviews (``review``) labelled ``pos``/``neg`` by their sentiment words."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = "pos" if i % 2 else "neg"
        words = list(rng.choice(FILLER, 6)) + list(rng.choice(GOOD if label == "pos" else BAD, 2))
        rng.shuffle(words)
        rows.append({"review": " ".join(words), "label": label})
    return pd.DataFrame(rows)


class CountingTextModel:
    """A fitted text model wrapped to count its ``predict_proba`` calls and rows; it declares
    ``prefers_batches_`` (as a transformer family does) and raises on a text holding
    :data:`POISON`.

    Attributes:
        inner: the fitted model (a pipeline reading the ``review`` column of a frame).
        calls: rows of each ``predict_proba`` call, in order (reset when unpickled).
    """

    prefers_batches_ = True

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[int] = []
        self._lock = threading.Lock()

    @property
    def classes_(self) -> Any:
        return self.inner.classes_

    def predict_proba(self, X: pd.DataFrame) -> Any:
        with self._lock:
            self.calls.append(len(X))
        if X["review"].astype(str).str.contains(POISON).any():
            raise ValueError("the model cannot read this text")
        return self.inner.predict_proba(X)

    def predict(self, X: pd.DataFrame) -> Any:
        return np.asarray(self.classes_)[np.argmax(self.predict_proba(X), axis=1)]

    def __getstate__(self) -> dict[str, Any]:
        return {"inner": self.inner}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["inner"])  # type: ignore[misc]


def register_like(registry: ModelRegistry, base: int, model: Any, *, promote: bool = True) -> int:
    """Register ``model`` with the schema and lineage of version ``base``; promote it if asked."""
    record = registry.get(base)
    new = registry.register(
        None, model_obj=model, task=record.task, family=record.family, params=record.params,
        metrics=record.metrics, data_version=record.data_version, config=record.config,
        code_version=record.code_version, schema=record.schema, lineage=record.lineage,
    )
    if promote:
        registry.promote(new.version, gate_passed=False, force=True, reason="test: wrapped model")
    return new.version


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """A running server: its base URL and the app (for its state)."""

    def __init__(self, url: str, app: Any) -> None:
        self.url = url
        self.app = app

    @property
    def state(self) -> Any:
        return self.app.state.assay

    def champion_model(self) -> Any:
        """The model object the server scores with (its counters are live)."""
        return self.state.runtime.routing.champion.model


@contextmanager
def live_server(project: Project, wal_dir: Path, *, batching: BatchPolicy | None = None,
                limits: RequestLimits | None = None) -> Iterator[LiveServer]:
    """``create_app`` under uvicorn on a free loopback port, ready (a champion loaded)."""
    import uvicorn

    limits = limits or RequestLimits()
    app = create_app(project, auth=False, poll_seconds=0.2, wal_dir=wal_dir, batching=batching,
                     limits=limits)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                            access_log=False, http=protocol_class(limits))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-text-server", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or not thread.is_alive():
                raise AssertionError("the server did not become ready")
            time.sleep(0.05)
        yield LiveServer(url, app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
