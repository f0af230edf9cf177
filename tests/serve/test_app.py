"""Every endpoint, every limit and the API key, through FastAPI's TestClient (fake profiler and embedder)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import pytest

from support.serving import ITEMS, SpyProfiler, make_engine

HIST = [{"item_id": "i1", "rating": 5}, {"item_id": "i4"}]


def _fields(resp) -> list[str]:
    return [e["field"] for e in resp.json()["errors"]]


# -- endpoints ---------------------------------------------------------------------------------------------------


def test_healthz_and_info(make_client):
    client, engine = make_client()
    assert client.get("/healthz").json() == {"status": "ok"}
    info = client.get("/v1/info").json()
    assert info["catalogue"]["n_items"] == 6 and info["catalogue"]["kind"] == "item_file"
    assert info["index"]["type"] == "exact" and info["index"]["n_items"] == 6
    assert info["profiler"] == {"backend": "spy", "model": "spy"}
    assert info["generation"]["do_sample"] is False and "prompt_config_sha" in info["generation"]
    assert info["embedder"] == {"model": "hash@1", "dimension": 64}
    assert info["limits"]["max_k"] == 100 and info["batching"]["generate"]["enabled"] is True


def test_openapi_schema_is_served_with_typed_models_and_the_key_header(make_client):
    client, _ = make_client()
    schema = client.get("/openapi.json").json()
    assert {"/v1/profile", "/v1/recommend", "/v1/info", "/healthz"} <= set(schema["paths"])
    comps = schema["components"]["schemas"]
    assert {"ProfileRequest", "RecommendRequest", "RecommendResponse", "HistoryEntry", "ErrorResponse"} <= set(comps)
    assert schema["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    assert "422" in schema["paths"]["/v1/recommend"]["post"]["responses"]
    assert client.get("/docs").status_code == 200


def test_profile_from_ids_and_free_texts(make_client):
    client, engine = make_client()
    r = client.post("/v1/profile", json={"history": [*HIST, {"text": "Vintage record player", "rating": 3.5}]})
    assert r.status_code == 200, r.text
    body = r.json()
    # Spy profile = the item lines of the prompt, oldest first: catalogue texts, then the free text.
    assert "Maybelline Matte Lipstick Red" in body["profile"] and body["profile"].index("Pink") < body["profile"].index("Vintage")
    assert body["n_history_used"] == 3 and body["unknown_item_ids"] == [] and body["n_unknown"] == 0
    assert body["model"]["backend"] == "spy" and body["generation"]["max_new_tokens"] == 64
    assert r.headers["x-request-id"] == body["request_id"]


def test_unknown_ids_are_counted_not_dropped_silently(make_client):
    client, _ = make_client()
    r = client.post("/v1/profile", json={"history": [{"item_id": "nope"}, {"item_id": "i2"}, {"item_id": 42}]})
    assert r.status_code == 200
    assert r.json()["unknown_item_ids"] == ["nope", "42"] and r.json()["n_unknown"] == 2
    assert r.json()["n_history_used"] == 1
    r = client.post("/v1/recommend", json={"history": [{"item_id": "nope"}, {"item_id": "i2"}], "k": 3})
    assert r.status_code == 200 and r.json()["unknown_item_ids"] == ["nope"] and r.json()["n_unknown"] == 1


@pytest.mark.parametrize("path", ["/v1/profile", "/v1/recommend"])
def test_a_history_of_only_unknown_ids_is_422(make_client, path):
    client, _ = make_client()
    r = client.post(path, json={"history": [{"item_id": "x1"}, {"item_id": "x2"}]})
    assert r.status_code == 422 and _fields(r) == ["history"]
    assert r.json()["errors"][0]["type"] == "unknown_items" and "x1" in r.json()["errors"][0]["msg"]


def test_recommend_with_a_history_excludes_it(make_client):
    client, engine = make_client()
    r = client.post("/v1/recommend", json={"history": HIST, "k": 10})
    assert r.status_code == 200, r.text
    body = r.json()
    ids = [it["item_id"] for it in body["items"]]
    assert body["profile_generated"] is True and body["n_excluded"] == 2
    assert len(ids) == 4 and not {"i1", "i4"} & set(ids)  # 6 items minus 2 history items
    scores = [it["score"] for it in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert {"item_id", "score", "title", "text"} == set(body["items"][0])
    keep = client.post("/v1/recommend", json={"history": HIST, "k": 10, "exclude_history": False}).json()
    assert len(keep["items"]) == 6 and keep["n_excluded"] == 0


def test_recommend_with_a_ready_profile_skips_generation(make_client):
    client, engine = make_client()
    r = client.post("/v1/recommend", json={"profile": "curly hair shampoo and hair mask", "k": 2})
    assert r.status_code == 200
    body = r.json()
    assert body["profile_generated"] is False and engine.profiler.calls == []
    assert body["items"][0]["item_id"] == "i3" and len(body["items"]) == 2
    # A history beside a ready profile only says what to exclude.
    r = client.post("/v1/recommend", json={"profile": "curly hair shampoo", "history": [{"item_id": "i3"}], "k": 2})
    assert "i3" not in [it["item_id"] for it in r.json()["items"]] and engine.profiler.calls == []


def test_recommend_restricted_to_candidates(make_client):
    client, _ = make_client()
    r = client.post("/v1/recommend", json={"profile": "hair", "k": 5, "candidates": ["i1", "i6", "zz", "i3"],
                                           "history": [{"item_id": "i3"}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert sorted(it["item_id"] for it in body["items"]) == ["i1", "i6"]  # i3 is history, zz unknown
    assert body["items"][0]["item_id"] == "i6"
    assert body["unknown_candidate_ids"] == ["zz"] and body["n_unknown_candidates"] == 1
    r = client.post("/v1/recommend", json={"profile": "hair", "candidates": ["zz", "yy"]})
    assert r.status_code == 422 and _fields(r) == ["candidates"]


def test_faiss_and_exact_indexes_agree(item_file, make_client):
    exact, _ = make_client(engine=make_engine(item_file, index="exact"))
    faiss, _ = make_client(engine=make_engine(item_file, index="faiss"), index="faiss")
    body = {"history": HIST, "k": 3}
    a, b = exact.post("/v1/recommend", json=body).json(), faiss.post("/v1/recommend", json=body).json()
    assert [i["item_id"] for i in a["items"]] == [i["item_id"] for i in b["items"]]
    assert faiss.get("/v1/info").json()["index"]["type"] == "faiss"


# -- limits ------------------------------------------------------------------------------------------------------


def test_history_length_limit(make_client):
    client, _ = make_client(limits={"max_history": 3})
    r = client.post("/v1/profile", json={"history": [{"item_id": "i1"}] * 4})
    assert r.status_code == 422 and _fields(r) == ["history"] and "at most 3" in r.json()["errors"][0]["msg"]
    assert client.post("/v1/profile", json={"history": [{"item_id": "i1"}] * 3}).status_code == 200


def test_text_length_limits_name_the_field(make_client):
    client, _ = make_client(limits={"max_text_chars": 20})
    r = client.post("/v1/profile", json={"history": [{"item_id": "i1"}, {"text": "x" * 21}]})
    assert r.status_code == 422 and _fields(r) == ["history[1].text"]
    r = client.post("/v1/profile", json={"history": [{"item_id": "i1", "review": "y" * 21}]})
    assert r.status_code == 422 and _fields(r) == ["history[0].review"]
    r = client.post("/v1/recommend", json={"profile": "z" * 21})
    assert r.status_code == 422 and _fields(r) == ["profile"]


@pytest.mark.parametrize("k", [0, -1, 11])
def test_k_range(make_client, k):
    client, _ = make_client(limits={"max_k": 10, "default_k": 5})
    r = client.post("/v1/recommend", json={"profile": "hair", "k": k})
    assert r.status_code == 422 and _fields(r) == ["k"] and "[1, 10]" in r.json()["errors"][0]["msg"]
    assert client.post("/v1/recommend", json={"profile": "hair"}).json()["k"] == 5


def test_candidate_list_limit(make_client):
    client, _ = make_client(limits={"max_candidates": 2})
    r = client.post("/v1/recommend", json={"profile": "hair", "candidates": ["i1", "i2", "i3"]})
    assert r.status_code == 422 and _fields(r) == ["candidates"]


def test_body_size_limit_is_413_by_header_and_by_bytes(make_client):
    client, _ = make_client(limits={"max_body_bytes": 1024})
    big = {"profile": "hair " * 400}
    r = client.post("/v1/recommend", json=big)
    assert r.status_code == 413 and _fields(r) == ["body"] and r.json()["request_id"]

    def chunks():  # no Content-Length: the limit holds on the bytes received
        for _ in range(10):
            yield b" " * 200

    r = client.post("/v1/recommend", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


@pytest.mark.parametrize("body, field", [
    ({"history": [{"item_id": "i1", "text": "both"}]}, "history[0]"),
    ({"history": [{}]}, "history[0]"),
    ({"history": [{"item_id": "i1", "rating": 7}]}, "history[0].rating"),
    ({"history": []}, "history"),
    ({"k": 3}, "body"),
    ({"profile": "x", "kk": 3}, "kk"),
    ({"profile": "x", "k": "many"}, "k"),
])
def test_malformed_bodies_are_422_naming_the_field(make_client, body, field):
    client, _ = make_client()
    r = client.post("/v1/recommend", json=body)
    assert r.status_code == 422, r.text
    assert field in _fields(r)
    assert all(set(e) == {"field", "loc", "msg", "type"} for e in r.json()["errors"])  # the input is not echoed


def test_invalid_json_is_422_and_not_echoed(make_client):
    client, _ = make_client()
    r = client.post("/v1/recommend", content=b'{"profile": "secret-value', headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["errors"][0]["type"] == "json_invalid"
    assert "secret-value" not in r.text


# -- API key -----------------------------------------------------------------------------------------------------


def test_api_key_is_required_when_set(make_client):
    client, _ = make_client(api_key="s3cret")
    for path, method in (("/v1/info", "get"), ("/v1/recommend", "post"), ("/v1/profile", "post")):
        kwargs = {} if method == "get" else {"json": {"profile": "x", "history": HIST}}
        assert getattr(client, method)(path, **kwargs).status_code == 401
        r = getattr(client, method)(path, headers={"X-API-Key": "wrong"}, **kwargs)
        assert r.status_code == 401 and "X-API-Key" in r.json()["detail"]
    ok = client.post("/v1/recommend", json={"profile": "hair"}, headers={"X-API-Key": "s3cret"})
    assert ok.status_code == 200
    assert client.get("/healthz").status_code == 200  # liveness stays open
    assert client.get("/openapi.json").status_code == 200


def test_api_key_from_environment(make_client, monkeypatch):
    monkeypatch.setenv("BLUEREC_API_KEY", "from-env")
    client, _ = make_client()
    assert client.get("/v1/info").status_code == 401
    assert client.get("/v1/info", headers={"X-API-Key": "from-env"}).status_code == 200


def test_no_key_configured_means_open(make_client, monkeypatch):
    monkeypatch.delenv("BLUEREC_API_KEY", raising=False)
    client, _ = make_client()
    assert client.get("/v1/info").status_code == 200


# -- failures ----------------------------------------------------------------------------------------------------


def test_a_crash_is_a_generic_500_with_a_request_id_and_the_details_only_in_the_log(item_file, make_client, caplog):
    engine = make_engine(item_file, profiler=SpyProfiler(fail=True))
    client, _ = make_client(engine=engine, raise_server_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="bluerec.serve"):
        r = client.post("/v1/profile", json={"history": HIST}, headers={"X-Request-ID": "req-123"})
    assert r.status_code == 500
    assert r.json() == {"detail": "internal server error", "errors": [], "request_id": "req-123"}
    assert "secret internal detail" not in r.text and "Traceback" not in r.text
    assert any("req-123" in rec.getMessage() and rec.exc_info for rec in caplog.records)
    # The server keeps answering.
    assert client.post("/v1/recommend", json={"profile": "hair"}).status_code == 200


def test_without_a_profiler_only_ready_profiles_are_served(item_file, make_client):
    client, _ = make_client(engine=make_engine(item_file, profiler=None))
    r = client.post("/v1/profile", json={"history": HIST})
    assert r.status_code == 503 and "no profiler" in r.json()["detail"]
    assert client.post("/v1/recommend", json={"history": HIST}).status_code == 503
    assert client.post("/v1/recommend", json={"profile": "hair"}).status_code == 200
    assert client.get("/v1/info").json()["profiler"] is None


# -- micro-batching ----------------------------------------------------------------------------------------------


def _concurrent(client, n: int, body) -> list:
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda i: client.post("/v1/recommend", json=body(i)), range(n)))


def test_concurrent_requests_share_one_generate_and_one_retrieval_call(make_client):
    # A batch closes as soon as it is full, so the long wait bound only matters if a thread is very late.
    client, engine = make_client(batching={"max_batch_size": 4, "max_wait_ms": 5000})
    hists = [[{"item_id": f"i{i + 1}"}, {"item_id": f"i{(i + 2) % 6 + 1}"}] for i in range(4)]
    responses = _concurrent(client, 4, lambda i: {"history": hists[i], "k": 3})
    assert [r.status_code for r in responses] == [200] * 4
    assert engine.profiler.calls == [4]  # ONE generate call for four requests
    assert engine.index.calls == [4] and engine.embedder.query_calls == [4]  # ONE retrieval call
    for i, r in enumerate(responses):  # each request got its own answer
        first = hists[i][0]["item_id"]
        text = next(t for item_id, t, _ in ITEMS if item_id == first)
        assert r.json()["profile"].startswith("likes " + text)
    batching = client.get("/v1/info").json()["batching"]
    assert batching["generate"]["calls"] == 1 and batching["generate"]["largest"] == 4


def test_batching_off_makes_one_call_per_request(make_client):
    client, engine = make_client(batching={"enabled": False})
    responses = _concurrent(client, 3, lambda i: {"history": HIST, "k": 2})
    assert [r.status_code for r in responses] == [200] * 3
    assert engine.profiler.calls == [1, 1, 1] and engine.index.calls == [1, 1, 1]


def test_a_batch_mixing_full_ranking_and_candidates_is_one_retrieval_call(make_client):
    client, engine = make_client(batching={"max_batch_size": 3, "max_wait_ms": 5000})
    bodies = [{"profile": "hair", "k": 2}, {"profile": "hair", "k": 4, "candidates": ["i1", "i3"]},
              {"profile": "makeup", "k": 1}]
    responses = _concurrent(client, 3, lambda i: bodies[i])
    assert engine.index.calls == [3]
    assert [len(r.json()["items"]) for r in responses] == [2, 2, 1]


def test_a_full_queue_is_503_with_retry_after(item_file, make_client):
    engine = make_engine(item_file, profiler=SpyProfiler(delay=1.0))
    client, _ = make_client(engine=engine, batching={"max_batch_size": 1, "max_queue": 1})
    responses = _concurrent(client, 4, lambda i: {"history": HIST, "k": 2})
    codes = sorted(r.status_code for r in responses)
    assert codes.count(200) >= 2 and 503 in codes  # one running, one waiting, the rest refused
    busy = next(r for r in responses if r.status_code == 503)
    assert busy.headers["retry-after"] == "1" and busy.json()["detail"] == "server busy, retry later"
