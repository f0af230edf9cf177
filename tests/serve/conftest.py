"""Fixtures for the serving tests: a small item file and a TestClient factory (fakes in tests/support/serving.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bluerec.serve import ServeSettings, ServingEngine, create_app
from support.serving import ITEMS, make_engine


@pytest.fixture(scope="session")
def item_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("serve") / "items.jsonl"
    path.write_text("".join(json.dumps({"item_id": i, "text": t, "title": ti}) + "\n" for i, t, ti in ITEMS))
    return path


@pytest.fixture
def make_client(item_file):
    """``make_client(**settings) -> (TestClient, engine)``; closed after the test."""
    from fastapi.testclient import TestClient

    clients = []

    def factory(engine: ServingEngine | None = None, raise_server_exceptions: bool = True, **settings: Any):
        engine = engine or make_engine(item_file)
        cfg = ServeSettings.model_validate({"catalogue": str(item_file), **settings})
        client = TestClient(create_app(engine, cfg), raise_server_exceptions=raise_server_exceptions)
        client.__enter__()
        clients.append(client)
        return client, engine

    yield factory
    for c in clients:
        c.__exit__(None, None, None)
