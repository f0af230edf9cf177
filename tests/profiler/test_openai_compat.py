"""The OpenAI-compatible client against a tiny local HTTP server that fails twice, then succeeds."""

from __future__ import annotations

import json
import logging

import pytest

from bluerec.profiler.backends.base import ProfilerBackend
from bluerec.profiler.backends.openai_compat import OpenAICompatError, OpenAICompatProfiler
from support.openai_server import FakeServer

SECRET = "sk-test-SECRET-123"


def chat(text: str) -> list[dict]:
    return [{"role": "system", "content": "sys"}, {"role": "user", "content": text}]


@pytest.mark.parametrize("fail_status", [503, 429, 0])
def test_retries_then_succeeds_and_never_leaks_the_key(monkeypatch, caplog, fail_status):
    monkeypatch.setenv("BLUEREC_TEST_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    with FakeServer(fail=2, fail_status=fail_status) as server:
        client = OpenAICompatProfiler(server.url, model="tiny-model", api_key_env="BLUEREC_TEST_KEY", timeout=5,
                                      max_retries=3, backoff=0.01)
        out = client.generate([chat("hello world")], num_samples=2, max_new_tokens=16, temperature=0.7, seed=3)
    assert out == [["profile 0 of hello", "profile 1 of hello"]]  # only the text, stripped
    assert client.retries == 2 and len(server.requests) == 3
    last = server.requests[-1]
    assert last["path"] == "/v1/chat/completions" and last["auth"] == f"Bearer {SECRET}"
    assert last["body"]["model"] == "tiny-model" and last["body"]["n"] == 2 and last["body"]["max_tokens"] == 16
    assert last["body"]["temperature"] == 0.7 and last["body"]["seed"] == 3
    assert "retry 1/3" in caplog.text  # retries are logged ...
    for text in (repr(client), str(client), caplog.text, json.dumps(client.describe()), str(vars(client))):
        assert SECRET not in text  # ... but the key never is, nor stored on the object
    assert "BLUEREC_TEST_KEY" in repr(client)


def test_outputs_are_stripped_greedy_and_topped_up(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    with FakeServer(fail=0, n_per_response=1) as server:
        client = OpenAICompatProfiler(server.url + "/v1/", model="m", api_key_env="NO_SUCH_KEY", backoff=0.01)
        assert isinstance(client, ProfilerBackend)
        out = client.generate([chat("aaaaaa"), chat("bbbbbb")], num_samples=3, max_new_tokens=4)
        assert out == [["profile 0 of aaaaaa"] * 3, ["profile 0 of bbbbbb"] * 3]  # server ignores n: more requests
        n_requests = len(server.requests)
        greedy = client.generate([chat("cccccc")], num_samples=2, do_sample=False)
        assert greedy == [["profile 0 of cccccc"] * 2] and len(server.requests) == n_requests + 1
        assert server.requests[-1]["body"]["temperature"] == 0.0
    assert all(r["auth"] is None for r in server.requests)  # no key in the environment: no header
    assert all(r["path"] == "/v1/chat/completions" for r in server.requests)


def test_gives_up_after_max_retries_and_does_not_retry_client_errors():
    with FakeServer(fail=10, fail_status=500) as server:
        client = OpenAICompatProfiler(server.url, model="m", max_retries=2, backoff=0.001)
        with pytest.raises(OpenAICompatError, match="giving up after 3 attempts: HTTP 500"):
            client.generate([chat("x")])
        assert len(server.requests) == 3
    with FakeServer(fail=10, fail_status=400) as server:
        client = OpenAICompatProfiler(server.url, model="m", max_retries=2, backoff=0.001)
        with pytest.raises(OpenAICompatError, match="HTTP 400"):
            client.generate([chat("x")])
        assert len(server.requests) == 1


def test_backoff_grows_exponentially_and_is_capped():
    client = OpenAICompatProfiler("http://127.0.0.1:9", model="m", backoff=1.0, max_backoff=5.0)
    delays = [client._delay(a, None) for a in range(5)]
    assert 1.0 <= delays[0] <= 1.1 and 2.0 <= delays[1] <= 2.2 and 4.0 <= delays[2] <= 4.4
    assert all(5.0 <= d <= 5.5 for d in delays[3:])
    assert client._delay(0, "2") == 2.0


def test_connection_refused_is_retried():
    slept = []
    client = OpenAICompatProfiler("http://127.0.0.1:9", model="m", max_retries=2, backoff=0.5, timeout=1,
                                  sleep=slept.append)
    with pytest.raises(OpenAICompatError, match="giving up"):
        client.generate([chat("x")])
    assert len(slept) == 2 and client.retries == 2
