"""Prometheus metrics of the server: requests, errors, latency, predictions per version and route.

Each app owns its own :class:`prometheus_client.CollectorRegistry`, so several
apps in one process (tests) never share counters. Label values are bounded:
``endpoint`` is the route template (``/v2/models/{name}/infer``), never the raw
path, and ``route`` is champion | canary | shadow.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["BATCH_BUCKETS", "LATENCY_BUCKETS", "ServerMetrics"]

#: requests or rows per gathered call
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024)
#: seconds; dense below 50 ms, where a latency objective usually sits
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0,
)


class ServerMetrics:
    """The counters and histograms one server exposes at ``GET /metrics``.

    Metric names (all prefixed ``assay_``):

    - ``http_requests_total{endpoint, status}``: every HTTP request answered.
    - ``http_errors_total{endpoint, code}``: every 4xx/5xx, by the error code of its body.
    - ``http_request_duration_seconds{endpoint}``: time to answer, histogram.
    - ``predictions_total{version, route}``: records scored (shadow included).
    - ``prediction_duration_seconds{version, route}``: scoring time of one request's batch, histogram
      (for a model that prefers batches, from joining the queue to the answer of its call).
    - ``prediction_flags_total{version, flag}``: answered-but-flagged records, by flag.
    - ``prediction_errors_total{version, route}``: scoring failures (a failing shadow never fails a request).
    - ``model_batches_total{version}``: gathered calls to a model that prefers batches
      (:mod:`assay.serve.gather`); ``model_batch_requests`` and ``model_batch_rows`` their
      requests and rows, histograms; ``model_batch_fallbacks_total{version}``: batches whose
      call failed and whose requests were scored alone.
    - ``model_loaded{version, route}``: 1 for each live version (route champion | challenger).
    - ``ready``: 1 when a verified champion is loaded.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter("assay_http_requests", "HTTP requests answered.",
                                ["endpoint", "status"], registry=r)
        self.errors = Counter("assay_http_errors", "HTTP error responses, by error code.",
                              ["endpoint", "code"], registry=r)
        self.latency = Histogram("assay_http_request_duration_seconds", "Time to answer a request.",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.predictions = Counter("assay_predictions", "Records scored, per model version and route.",
                                   ["version", "route"], registry=r)
        self.scoring = Histogram("assay_prediction_duration_seconds",
                                 "Scoring time of one request's records, per model version and route.",
                                 ["version", "route"], buckets=LATENCY_BUCKETS, registry=r)
        self.flags = Counter("assay_prediction_flags", "Records answered but flagged (unknown category, ...).",
                             ["version", "flag"], registry=r)
        self.scoring_errors = Counter("assay_prediction_errors", "Scoring failures, per model version and route.",
                                      ["version", "route"], registry=r)
        self.batches = Counter("assay_model_batches",
                               "Gathered calls to a model that prefers batches.", ["version"],
                               registry=r)
        self.batch_requests = Histogram("assay_model_batch_requests", "Requests per gathered call.",
                                        ["version"], buckets=BATCH_BUCKETS, registry=r)
        self.batch_rows = Histogram("assay_model_batch_rows", "Rows per gathered call.",
                                    ["version"], buckets=BATCH_BUCKETS, registry=r)
        self.batch_fallbacks = Counter(
            "assay_model_batch_fallbacks",
            "Gathered calls that failed; their requests were scored alone.", ["version"],
            registry=r)
        self.loaded = Gauge("assay_model_loaded", "1 for each live model version.", ["version", "route"],
                            registry=r)
        self.ready = Gauge("assay_ready", "1 when a verified champion is loaded.", registry=r)
        self._live: set[tuple[str, str]] = set()

    def observe_request(self, endpoint: str, status: int, seconds: float, code: str | None = None) -> None:
        """Count one answered request (and its error code, for a 4xx/5xx)."""
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)
        if status >= 400:
            self.errors.labels(endpoint, code or f"http_{status}").inc()

    def observe_predictions(self, version: int, route: str, count: int, seconds: float) -> None:
        """Count ``count`` records scored by ``version`` on ``route`` in ``seconds``."""
        v = str(version)
        self.predictions.labels(v, route).inc(count)
        self.scoring.labels(v, route).observe(seconds)

    def observe_flags(self, version: int, flags: Iterable[Iterable[str]]) -> None:
        """Count the flags of each answered record."""
        v = str(version)
        for row in flags:
            for flag in row:
                self.flags.labels(v, flag).inc()

    def observe_scoring_error(self, version: int, route: str) -> None:
        """Count a scoring failure."""
        self.scoring_errors.labels(str(version), route).inc()

    def observe_batch(self, version: int, requests: int, rows: int, fell_back: bool) -> None:
        """Count one gathered call of ``version`` over ``requests`` requests and ``rows`` rows."""
        v = str(version)
        self.batches.labels(v).inc()
        self.batch_requests.labels(v).observe(requests)
        self.batch_rows.labels(v).observe(rows)
        if fell_back:
            self.batch_fallbacks.labels(v).inc()

    def set_models(self, champion: int | None, challenger: int | None, ready: bool) -> None:
        """Record the live versions (call after each routing change; cheap when nothing changed)."""
        live = {(str(v), route) for v, route in ((champion, "champion"), (challenger, "challenger"))
                if v is not None}
        if live != self._live:
            for key in self._live - live:
                self.loaded.remove(*key)
            for key in live:
                self.loaded.labels(*key).set(1)
            self._live = live
        self.ready.set(1 if ready else 0)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
