"""The server's settings travel to every worker through ASSAY_SERVE_* and come back intact."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.errors import ConfigError
from assay.serve.gather import BatchPolicy
from assay.serve.protocols import RequestLimits
from assay.serve.settings import ServeSettings


def test_settings_round_trip_through_the_environment() -> None:
    settings = ServeSettings(config=Path("/srv/p/assay.yaml"), auth=False, poll_seconds=0.25,
                             log_drain="process",
                             limits=RequestLimits(max_records=50, header_timeout=2.5),
                             batching=BatchPolicy(wait_ms=2.5, max_rows=64, adaptive=False))
    env = settings.to_env()
    assert env["ASSAY_SERVE_AUTH"] == "0" and env["ASSAY_SERVE_LOG_DRAIN"] == "process"
    assert env["ASSAY_SERVE_MAX_RECORDS"] == "50"
    assert env["ASSAY_SERVE_BATCH_WAIT_MS"] == "2.5" and env["ASSAY_SERVE_MAX_BATCH"] == "64"
    assert env["ASSAY_SERVE_BATCH_ADAPTIVE"] == "0"
    assert ServeSettings.from_env(env) == settings


def test_unset_variables_give_the_defaults() -> None:
    assert ServeSettings.from_env({}) == ServeSettings()
    assert ServeSettings().batching == BatchPolicy(wait_ms=5.0, max_rows=32)


def test_a_batch_of_one_turns_gathering_off() -> None:
    assert not ServeSettings.from_env({"ASSAY_SERVE_MAX_BATCH": "1"}).batching.enabled
    assert ServeSettings.from_env({"ASSAY_SERVE_BATCH_WAIT_MS": "0"}).batching.wait_ms == 0.0
    with pytest.raises(ConfigError, match="--max-batch"):
        BatchPolicy(max_rows=0)


@pytest.mark.parametrize(("name", "value", "words"), [
    ("ASSAY_SERVE_AUTH", "yes", "ASSAY_SERVE_AUTH"),
    ("ASSAY_SERVE_LOG_DRAIN", "fork", "ASSAY_SERVE_LOG_DRAIN"),
    ("ASSAY_SERVE_POLL_SECONDS", "-1", "ASSAY_SERVE_POLL_SECONDS"),
    ("ASSAY_SERVE_POLL_SECONDS", "soon", "ASSAY_SERVE_POLL_SECONDS"),
    ("ASSAY_SERVE_MAX_RECORDS", "many", "ASSAY_SERVE_MAX_RECORDS"),
    ("ASSAY_SERVE_BATCH_WAIT_MS", "-5", "ASSAY_SERVE_BATCH_WAIT_MS"),
    ("ASSAY_SERVE_BATCH_ADAPTIVE", "maybe", "ASSAY_SERVE_BATCH_ADAPTIVE"),
    ("ASSAY_SERVE_BATCH_WAIT_MS", "soon", "ASSAY_SERVE_BATCH_WAIT_MS"),
    ("ASSAY_SERVE_MAX_BATCH", "0", "ASSAY_SERVE_MAX_BATCH"),
    ("ASSAY_SERVE_MAX_BATCH", "2.5", "ASSAY_SERVE_MAX_BATCH"),
])
def test_a_malformed_variable_is_named(name: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        ServeSettings.from_env({name: value})
