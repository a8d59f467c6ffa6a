"""The production half of ``assay demo``: serve, send traffic, drift, retrain, shadow, decide.

The server is the real one (:func:`assay.serve.app.create_app` under uvicorn) on a
loopback port, reached over HTTP with a scoped token; traffic is later months of the
same flights table, so drift is real (months the model never saw, winter delays).
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import httpx
import numpy as np
import pandas as pd

from assay.project import Project

__all__ = ["LoopbackServer", "Traffic", "send_traffic"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LoopbackServer:
    """``assay serve`` for one project, on 127.0.0.1 in a background thread."""

    def __init__(self, project: Project, *, poll_seconds: float = 0.5) -> None:
        import uvicorn

        from assay.serve.app import create_app

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = create_app(project, auth=True, poll_seconds=poll_seconds)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="assay-demo-server", daemon=True)

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.__exit__(None, None, None)
        raise RuntimeError("the demo server did not become ready within 60 s")

    def __exit__(self, *exc: Any) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)

    def serving(self) -> dict[str, Any]:
        """What ``/readyz`` says is live: champion and challenger versions."""
        return dict(httpx.get(f"{self.url}/readyz", timeout=5).json())

    def wait_for(self, champion: int, challenger: int | None = None, timeout: float = 30.0) -> bool:
        """Poll until the server answers with ``champion`` (and ``challenger``) live."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.serving()
            live_challenger = body.get("challenger")
            if isinstance(live_challenger, dict):
                live_challenger = live_challenger.get("version")
            if body.get("champion") == champion and (challenger is None or live_challenger == challenger):
                return True
            time.sleep(0.3)
        return False


@dataclass(frozen=True)
class Traffic:
    """What one batch of simulated traffic did."""

    requests: int
    predictions: int
    labels: int
    failed: int
    versions: dict[int, int]
    seconds: float


def _records(frame: pd.DataFrame, features: list[str]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(frame), 20):
        chunk = frame.iloc[start:start + 20][features]
        yield [
            {k: (None if (isinstance(v, float) and np.isnan(v)) else v) for k, v in row.items()}
            for row in chunk.to_dict(orient="records")
        ]


def send_traffic(
    server: LoopbackServer,
    token: str,
    frame: pd.DataFrame,
    *,
    features: list[str],
    target: str,
    label_share: float = 1.0,
    on_batch: Callable[[int], None] | None = None,
) -> Traffic:
    """POST ``frame`` to /v1/predict in requests of 20 records, then send the true labels back."""
    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {token}"}
    requests = failed = predictions = labels = 0
    versions: dict[int, int] = {}
    feedback: list[dict[str, Any]] = []
    truth = frame[target].tolist()
    position = 0
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        for batch in _records(frame, features):
            requests += 1
            response = client.post("/v1/predict", json={"records": batch})
            if response.status_code != 200:
                failed += 1
                position += len(batch)
                continue
            for item in response.json()["predictions"]:
                predictions += 1
                versions[item["version"]] = versions.get(item["version"], 0) + 1
                if (position % 100) < label_share * 100:
                    feedback.append({"id": item["id"], "label": truth[position]})
                position += 1
            if on_batch is not None:
                on_batch(predictions)
        for start in range(0, len(feedback), 500):
            chunk = feedback[start:start + 500]
            response = client.post("/v1/feedback", json={"labels": chunk})
            if response.status_code == 200:
                labels += len(chunk)
    return Traffic(requests, predictions, labels, failed, versions, time.perf_counter() - started)
