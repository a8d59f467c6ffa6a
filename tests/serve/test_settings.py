"""The server's settings travel to every worker through ASSAY_SERVE_* and come back intact."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.errors import ConfigError
from assay.serve.protocols import RequestLimits
from assay.serve.settings import ServeSettings


def test_settings_round_trip_through_the_environment() -> None:
    settings = ServeSettings(config=Path("/srv/p/assay.yaml"), auth=False, poll_seconds=0.25,
                             log_drain="process",
                             limits=RequestLimits(max_records=50, header_timeout=2.5))
    env = settings.to_env()
    assert env["ASSAY_SERVE_AUTH"] == "0" and env["ASSAY_SERVE_LOG_DRAIN"] == "process"
    assert env["ASSAY_SERVE_MAX_RECORDS"] == "50"
    assert ServeSettings.from_env(env) == settings


def test_unset_variables_give_the_defaults() -> None:
    assert ServeSettings.from_env({}) == ServeSettings()


@pytest.mark.parametrize(("name", "value", "words"), [
    ("ASSAY_SERVE_AUTH", "yes", "ASSAY_SERVE_AUTH"),
    ("ASSAY_SERVE_LOG_DRAIN", "fork", "ASSAY_SERVE_LOG_DRAIN"),
    ("ASSAY_SERVE_POLL_SECONDS", "-1", "ASSAY_SERVE_POLL_SECONDS"),
    ("ASSAY_SERVE_POLL_SECONDS", "soon", "ASSAY_SERVE_POLL_SECONDS"),
    ("ASSAY_SERVE_MAX_RECORDS", "many", "ASSAY_SERVE_MAX_RECORDS"),
])
def test_a_malformed_variable_is_named(name: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        ServeSettings.from_env({name: value})
