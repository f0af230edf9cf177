"""Fixtures for the evaluation tests."""

from __future__ import annotations

import pytest

from bluerec.embed import Embedder


@pytest.fixture(scope="session")
def minilm() -> Embedder:
    return Embedder()
