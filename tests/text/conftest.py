"""A tiny random-weight checkpoint on disk, built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.testing.checkpoints import tiny_checkpoint

WORDS = "the a movie film was is good great bad awful not very plot acting".split()


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("checkpoints") / "tiny", WORDS)
