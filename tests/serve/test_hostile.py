"""Hostile and odd request bodies: each gets a 4xx naming the field (or a correct answer), never a 500 or a hang."""

from __future__ import annotations

import json

import pytest

CT = {"content-type": "application/json"}


@pytest.mark.parametrize("body, status, field", [
    (b'{"profile": "x", "history": [{"item_id": "i1", "rating": NaN}]}', 422, "history[0].rating"),
    (b'{"profile": "x", "history": [{"item_id": "i1", "rating": Infinity}]}', 422, "history[0].rating"),
    (b'{"profile": "x", "k": true}', 422, "k"),
    (b'{"profile": "x", "k": 2.5}', 422, "k"),
    (b'{"profile": "x", "k": 3.0}', 422, "k"),
    (b'{"profile": "x", "k": 1e30}', 422, "k"),
    (b'{"profile": "x", "k": 99999999999999999999999999}', 422, "k"),
    (b'{"profile": "x", "exclude_history": "yes"}', 422, "exclude_history"),
    (b'{"history": [{"item_id": ["a"]}]}', 422, "history[0].item_id"),
    (b'{"history": [{"item_id": "   "}]}', 422, "history[0].item_id"),
    (b'{"history": [{"text": "   "}]}', 422, "history[0].text"),
    (b'{"profile": "   "}', 422, "profile"),
    (b'{"profile": "\\ud800"}', 422, "profile"),
    (b'null', 422, "body"),
    (b'[]', 422, "body"),
    (b'"str"', 422, "body"),
    (b'', 422, "body"),
    (b'[' * 100_000, 400, "body"),
    (b'{"a":' * 50_000, 400, "body"),
])
def test_odd_bodies_are_client_errors(make_client, body, status, field):
    client, _ = make_client()
    r = client.post("/v1/recommend", content=body, headers=CT)
    assert r.status_code == status, r.text
    assert field in [e["field"] for e in r.json()["errors"]]


def test_odd_but_valid_inputs_are_answered(make_client):
    client, _ = make_client()
    r = client.post("/v1/recommend", json={"profile": "a\u0000b ✨ 口紅", "k": 2})
    assert r.status_code == 200 and len(r.json()["items"]) == 2
    r = client.post("/v1/recommend", json={"history": [{"item_id": 12345678901234567890123}, {"item_id": "i2"}], "k": 1})
    assert r.status_code == 200 and r.json()["unknown_item_ids"] == ["12345678901234567890123"]
    r = client.post("/v1/recommend", json={"profile": "hair", "candidates": ["i3", "i3", "i3"], "k": 5})
    assert [it["item_id"] for it in r.json()["items"]] == ["i3"]  # duplicates count once


def test_wrong_methods_and_paths_use_the_error_format(make_client):
    client, _ = make_client()
    r = client.get("/v1/recommend")
    assert r.status_code == 405 and r.json()["request_id"]
    assert client.get("/nope").status_code == 404
    r = client.post("/v1/recommend", content=json.dumps({"profile": "x"}), headers={"content-type": "text/plain"})
    assert r.status_code == 422


def test_requests_without_a_client_context_each_get_an_answer(item_file):
    """TestClient without ``with`` runs every request on a new event loop: the batchers must not keep state bound
    to an old loop (a request that waits forever is the worst failure)."""
    from fastapi.testclient import TestClient

    from bluerec.serve import ServeSettings, create_app
    from support.serving import make_engine

    client = TestClient(create_app(make_engine(item_file), ServeSettings(catalogue=item_file)))
    for k in (1, 2, 3):
        assert len(client.post("/v1/recommend", json={"profile": "hair", "k": k}).json()["items"]) == k
