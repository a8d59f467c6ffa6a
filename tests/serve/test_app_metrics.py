"""Server metrics: counts per endpoint, version and route, read back through Prometheus' parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from assay.serve.metrics import ServerMetrics


def _samples(metrics: ServerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_requests_errors_and_latency_by_endpoint() -> None:
    metrics = ServerMetrics()
    metrics.observe_request("/v1/predict", 200, 0.003)
    metrics.observe_request("/v1/predict", 200, 0.004)
    metrics.observe_request("/v1/predict", 422, 0.001, code="invalid_records")
    metrics.observe_request("unmatched", 404, 0.001)
    s = _samples(metrics)
    assert s[("assay_http_requests_total", (("endpoint", "/v1/predict"), ("status", "200")))] == 2
    assert s[("assay_http_errors_total", (("code", "invalid_records"), ("endpoint", "/v1/predict")))] == 1
    assert s[("assay_http_errors_total", (("code", "http_404"), ("endpoint", "unmatched")))] == 1
    assert s[("assay_http_request_duration_seconds_count", (("endpoint", "/v1/predict"),))] == 3
    assert s[("assay_http_request_duration_seconds_bucket", (("endpoint", "/v1/predict"), ("le", "0.002")))] == 1


def test_predictions_flags_and_live_models_per_version_and_route() -> None:
    metrics = ServerMetrics()
    metrics.observe_predictions(3, "champion", 5, 0.002)
    metrics.observe_predictions(4, "shadow", 5, 0.002)
    metrics.observe_flags(3, [("unknown_category",), (), ("unknown_category", "out_of_range")])
    metrics.observe_scoring_error(4, "shadow")
    metrics.set_models(3, 4, True)
    s = _samples(metrics)
    assert s[("assay_predictions_total", (("route", "champion"), ("version", "3")))] == 5
    assert s[("assay_predictions_total", (("route", "shadow"), ("version", "4")))] == 5
    assert s[("assay_prediction_flags_total", (("flag", "unknown_category"), ("version", "3")))] == 2
    assert s[("assay_prediction_errors_total", (("route", "shadow"), ("version", "4")))] == 1
    assert s[("assay_model_loaded", (("route", "challenger"), ("version", "4")))] == 1
    assert s[("assay_ready", ())] == 1
    metrics.set_models(4, None, True)  # a promotion: the old labels disappear
    s = _samples(metrics)
    assert ("assay_model_loaded", (("route", "champion"), ("version", "3"))) not in s
    assert s[("assay_model_loaded", (("route", "champion"), ("version", "4")))] == 1


def test_two_apps_do_not_share_counters() -> None:
    a, b = ServerMetrics(), ServerMetrics()
    a.observe_request("/healthz", 200, 0.001)
    assert ("assay_http_requests_total", (("endpoint", "/healthz"), ("status", "200"))) not in _samples(b)
