"""The load client of bench/serve_load.py against a real uvicorn server on loopback (fake models): it counts good and
malformed requests, notices lost ones, and stops at its time bound."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from support.serving import ITEMS, SpyProfiler, make_engine  # noqa: E402


@pytest.fixture(scope="module")
def bench():
    from support.benches import load_bench

    return load_bench("serve_load")


def _serve(item_file: Path, profiler=None):
    """A uvicorn server on 127.0.0.1 in a thread; yields its base URL."""
    import uvicorn

    from bluerec.serve import ServeSettings, create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    engine = make_engine(item_file, profiler=profiler or SpyProfiler())
    app = create_app(engine, ServeSettings(catalogue=item_file))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, thread


@pytest.fixture
def item_file(tmp_path) -> Path:
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps({"item_id": i, "text": t, "title": ti}) + "\n" for i, t, ti in ITEMS))
    return path


GOODS = [{"history": [{"item_id": "i1"}, {"item_id": "i3"}], "k": 3}, {"profile": "hair mask", "k": 2,
                                                                        "history": [{"item_id": "i6"}]}]


def test_every_good_request_answered_and_every_malformed_one_refused(bench, item_file):
    base, server, thread = _serve(item_file)
    try:
        res = asyncio.run(bench._load(base, GOODS, n=60, concurrency=4, time_limit=60, malformed=0.3,
                                      request_timeout=30, seed=0))
    finally:
        server.should_exit = True
        thread.join(10)
    assert res["sent"] == 60 and res["not_sent_time_bound"] == 0
    assert res["good_ok"] == res["good_sent"] > 0 and res["lost"] == 0
    assert res["malformed_sent"] >= 6 and res["malformed_answered_4xx"] == res["malformed_sent"]
    assert res["malformed_wrong"] == {} and res["p50_ms"] <= res["p95_ms"] <= res["p99_ms"]


def test_lost_requests_are_counted(bench, item_file):
    base, server, thread = _serve(item_file, profiler=SpyProfiler(fail=True))
    try:
        res = asyncio.run(bench._load(base, GOODS[:1], n=8, concurrency=2, time_limit=60, malformed=0.0,
                                      request_timeout=30, seed=0))
    finally:
        server.should_exit = True
        thread.join(10)
    assert res["lost"] == 8 and res["lost_statuses"] == [500] and res["throughput_rps"] == 0


def test_the_time_bound_stops_sending(bench, item_file):
    base, server, thread = _serve(item_file)
    try:
        res = asyncio.run(bench._load(base, GOODS, n=10_000, concurrency=2, time_limit=0.5, malformed=0.0,
                                      request_timeout=30, seed=0))
    finally:
        server.should_exit = True
        thread.join(10)
    assert 0 < res["sent"] < 10_000 and res["not_sent_time_bound"] == 10_000 - res["sent"]
    assert res["wall_s"] < 10 and res["lost"] == 0


def test_the_server_binds_loopback_only(bench):
    assert bench.HOST == "127.0.0.1"
    args = bench._args([])
    assert args.profiler == "smollm2-135m-instruct" and args.results.name == "serve_load.json"
