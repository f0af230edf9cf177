"""``bluerec serve``: help, clean errors, and a real uvicorn server on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from typer.testing import CliRunner

from bluerec.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_help_lists_the_options():
    res = runner.invoke(app, ["serve", "--help"])
    assert res.exit_code == 0
    for opt in ("--profiler", "--dataset", "--no-batching", "--max-wait-ms", "--index"):
        assert opt in res.output


def test_bad_inputs_exit_cleanly(tmp_path, item_file):
    res = runner.invoke(app, ["serve"])
    assert res.exit_code == 2 and "catalogue" in res.output
    res = runner.invoke(app, ["serve", "-d", str(tmp_path / "none.jsonl")])
    assert res.exit_code == 2 and "none.jsonl" in res.output
    res = runner.invoke(app, ["serve", "-d", str(item_file), "--profiler", "no-such-model"])
    assert res.exit_code == 2 and "not a local model folder" in res.output
    res = runner.invoke(app, ["serve", "-d", str(item_file), "--index", "hnsw"])
    assert res.exit_code == 2 and "exact" in res.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serves_over_http_on_loopback(tmp_path, item_file):
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "BLUEREC_API_KEY": "k1"}
    proc = subprocess.Popen([sys.executable, "-m", "bluerec.cli.main", "serve", "-d", str(item_file), "--port",
                             str(port), "--cache-dir", str(tmp_path / "cache"), "--threads", "1"],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
                    assert json.load(r) == {"status": "ok"}
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.3)
        req = urllib.request.Request(base + "/v1/recommend", data=json.dumps({"profile": "hair mask", "k": 2}).encode(),
                                     headers={"content-type": "application/json", "X-API-Key": "k1"})
        with urllib.request.urlopen(req, timeout=30) as r:
            body = json.load(r)
        assert len(body["items"]) == 2 and r.headers["x-request-id"] == body["request_id"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
