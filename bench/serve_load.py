"""Load test of ``bluerec serve`` on loopback (not a test): throughput and latency of ``POST /v1/recommend``.

One run starts the server twice with uvicorn on 127.0.0.1 (a free port; micro-batching on, then off) and drives
each with a bounded, self-stopping asyncio + httpx client (a fixed request count AND a time bound per phase,
``--concurrency`` requests in flight):

* ``ready``: requests carrying a ready profile (template profiles of test users): embedding + retrieval only;
* ``generate``: requests carrying a history (test users' item ids): the profiler writes the profile first;
* ``ready-clean`` (batching on): the ``ready`` load without malformed requests, the baseline that shows the
  server holds its throughput while answering malformed ones.

A share of the requests (``--malformed``) is malformed (invalid JSON, k out of range, only unknown item ids, an
oversized body, no history or profile, a wrong type); each must get its 4xx. Every good request must get 200 with a
non-empty item list; any that does not is *lost*, and the exit status is 1. Prints a table with the on/off ratios and
writes ``bench/results/serve_load.json`` (+ ``.md``) atomically.

    .venv/bin/python bench/serve_load.py                        # SmolLM2-135M-Instruct (a name the lead resolves)
    .venv/bin/python bench/serve_load.py --profiler micro       # an untrained micro profiler: load testing only
    .venv/bin/python bench/serve_load.py --profiler runs/quickstart/train/final --concurrency 32

The catalogue is a synthetic prepared dataset (``bluerec data synth`` + ``bluerec data prepare``, built once in
``--work``) unless ``--dataset`` names one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bluerec.io import write_json_atomic, write_text_atomic  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "serve_load.json"
HOST = "127.0.0.1"  # loopback only, always
MALFORMED_KINDS = {  # kind -> the status it must get
    "invalid_json": 422, "k_out_of_range": 422, "unknown_ids_only": 422, "oversized_body": 413,
    "no_history_or_profile": 422, "wrong_type": 422,
}


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profiler", default="smollm2-135m-instruct",
                   help="profiler for the generation phase: a model folder or name (default smollm2-135m-instruct); "
                        "'micro' builds an untrained micro profiler from the catalogue (load testing only)")
    p.add_argument("--dataset", type=Path, default=None, help="prepared dataset (default: synthesised in --work)")
    p.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "bluerec_serve_load",
                   help="scratch folder: synthetic data, item-embedding cache, micro profiler")
    p.add_argument("--items", type=int, default=1000, help="synthetic catalogue size (default 1000)")
    p.add_argument("--ready-requests", type=int, default=400, help="requests per ready-profile phase")
    p.add_argument("--generate-requests", type=int, default=64, help="requests per generation phase")
    p.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    p.add_argument("--time-limit", type=float, default=45.0, help="seconds per phase; no request is sent after it")
    p.add_argument("--request-timeout", type=float, default=120.0, help="seconds before a request counts as lost")
    p.add_argument("--malformed", type=float, default=0.2, help="share of malformed requests (default 0.2)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--max-new-tokens", type=int, default=32, help="profile length in tokens (greedy)")
    p.add_argument("--max-batch-size", type=int, default=16)
    p.add_argument("--max-wait-ms", type=float, default=10.0)
    p.add_argument("--threads", type=int, default=1,
                   help="server torch threads (default 1: on a small shared CPU, more threads spin against each other "
                        "and the client; 0 keeps torch's default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--results", type=Path, default=RESULTS)
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------------------ inputs


def _catalogue(args: argparse.Namespace, say: Any) -> Path:
    if args.dataset is not None:
        return args.dataset
    from bluerec.data.config import PrepareConfig
    from bluerec.data.prepare import prepare_dataset
    from bluerec.data.synth import SynthConfig, write_synth

    cfg = SynthConfig(n_users=max(300, args.items // 2), n_items=args.items, n_interests=24, seed=args.seed)
    out = args.work / "data"
    stamp = args.work / "synth_config.json"
    if (out / "manifest.json").exists() and stamp.exists() and json.loads(stamp.read_text()) == cfg.model_dump(mode="json"):
        return out
    say(f"synthesising and preparing a {args.items}-item catalogue in {out}")
    synth = write_synth(cfg, args.work / "raw")
    prepare_dataset(PrepareConfig(source=synth.source("amazon"), k_core=3, max_history=50), out, progress=lambda m: None)
    write_json_atomic(stamp, cfg.model_dump(mode="json"))
    return out


def _micro_profiler(args: argparse.Namespace, dataset: Path) -> Path:
    from bluerec.data.dataset import PreparedDataset
    from bluerec.profiler.backends.micro import build_micro_profiler, corpus_for

    out = args.work / "micro-profiler"
    if not (out / "config.json").exists():
        build_micro_profiler(corpus_for(PreparedDataset(dataset)), out, vocab_size=2048)
    return out


def _bodies(dataset: Path, k: int, seed: int) -> tuple[list[dict], list[dict], list[str]]:
    """Request bodies from the test users: ready template profiles, and histories of catalogue ids."""
    from bluerec.data.dataset import PreparedDataset
    from bluerec.profiler.template import template_items_for, template_profile

    ds = PreparedDataset(dataset)
    examples = [ex for ex in ds.split("test") if ex.history]
    random.Random(seed).shuffle(examples)
    examples = examples[:200]
    ready = [{"profile": template_profile(template_items_for(ds, ex)), "k": k,
              "history": [{"item_id": i} for i in ex.history[-10:]]} for ex in examples]
    hist = [{"history": [{"item_id": i} for i in ex.history[-10:]], "k": k} for ex in examples]
    return ready, hist, list(ds.items.ids)


def _malformed(kind: str, good: dict) -> tuple[bytes, dict]:
    headers = {"content-type": "application/json"}
    if kind == "invalid_json":
        return b'{"profile": "unterminated', headers
    if kind == "k_out_of_range":
        return json.dumps({**good, "k": 0}).encode(), headers
    if kind == "unknown_ids_only":
        return json.dumps({"history": [{"item_id": f"no-such-item-{n}"} for n in range(5)], "k": 5}).encode(), headers
    if kind == "oversized_body":
        return json.dumps({"profile": "x" * 300_000}).encode(), headers
    if kind == "no_history_or_profile":
        return json.dumps({"k": 5}).encode(), headers
    if kind == "wrong_type":
        return json.dumps({"history": "not a list"}).encode(), headers
    raise ValueError(kind)


# ------------------------------------------------------------------------------------------------ server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Server:
    """``bluerec serve`` in a child process on loopback; stopped (terminate, then kill) on exit."""

    def __init__(self, args: argparse.Namespace, dataset: Path, profiler: str, batching: bool) -> None:
        self.port = _free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.log_path = args.work / f"server-{'on' if batching else 'off'}.log"
        cmd = [sys.executable, "-m", "bluerec.cli.main", "serve", "--profiler", profiler, "-d", str(dataset),
               "--host", HOST, "--port", str(self.port), "--cache-dir", str(args.work / "cache"),
               "--max-new-tokens", str(args.max_new_tokens), "--max-batch-size", str(args.max_batch_size),
               "--max-wait-ms", str(args.max_wait_ms), "--batching" if batching else "--no-batching",
               "--log-level", "warning"]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        env.pop("BLUEREC_API_KEY", None)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=args.work)

    def wait_ready(self, timeout: float = 600.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.base + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"server not ready after {timeout:.0f}s; log: {self.log_path}")

    def info(self) -> dict:
        import httpx

        return httpx.get(self.base + "/v1/info", timeout=30).json()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ------------------------------------------------------------------------------------------------ client


async def _load(base: str, goods: list[dict], n: int, concurrency: int, time_limit: float, malformed: float,
                request_timeout: float, seed: int) -> dict[str, Any]:
    """Send ``n`` requests (a seeded share malformed) with ``concurrency`` in flight; stop sending after
    ``time_limit`` seconds; wait for the ones in flight. Returns counts and good-request latencies."""
    import httpx

    rng = random.Random(seed)
    kinds = list(MALFORMED_KINDS)
    plan: list[tuple[str, bytes, dict]] = []
    for i in range(n):
        good = goods[i % len(goods)]
        if rng.random() < malformed:
            kind = kinds[len([p for p in plan if p[0] != "good"]) % len(kinds)]
            plan.append((kind, *_malformed(kind, good)))
        else:
            plan.append(("good", json.dumps(good).encode(), {"content-type": "application/json"}))
    next_i = 0
    records: list[tuple[str, int, float, bool]] = []  # kind, status (0 = transport error), seconds, ok
    started = time.perf_counter()
    stop_at = started + time_limit

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal next_i
        while next_i < len(plan) and time.perf_counter() < stop_at:
            kind, body, headers = plan[next_i]
            next_i += 1
            t0 = time.perf_counter()
            try:
                r = await client.post(base + "/v1/recommend", content=body, headers=headers)
                status = r.status_code
                if kind == "good":
                    ok = status == 200 and bool(r.json().get("items"))
                else:
                    ok = status == MALFORMED_KINDS[kind] and bool(r.json().get("errors"))
            except (httpx.HTTPError, ValueError):
                status, ok = 0, False
            records.append((kind, status, time.perf_counter() - t0, ok))

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=request_timeout, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    wall = time.perf_counter() - started
    good = [r for r in records if r[0] == "good"]
    bad = [r for r in records if r[0] != "good"]
    lat = np.array([r[2] for r in good if r[3]]) * 1000.0
    pct = (lambda q: round(float(np.percentile(lat, q)), 1) if lat.size else None)
    wrong: dict[str, int] = {}
    for kind, status, _, ok in bad:
        if not ok:
            key = f"{kind}->{status}"
            wrong[key] = wrong.get(key, 0) + 1
    return {
        "planned": n, "sent": len(records), "not_sent_time_bound": n - len(records), "wall_s": round(wall, 2),
        "good_sent": len(good), "good_ok": sum(r[3] for r in good), "lost": sum(not r[3] for r in good),
        "lost_statuses": sorted({r[1] for r in good if not r[3]}),
        "malformed_sent": len(bad), "malformed_answered_4xx": sum(r[3] for r in bad), "malformed_wrong": wrong,
        "throughput_rps": round(len(lat) / wall, 2) if wall > 0 else None,
        "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99),
    }


def _batch_delta(before: dict, after: dict, which: str) -> dict[str, Any]:
    b, a = before["batching"][which], after["batching"][which]
    calls, items = a["calls"] - b["calls"], a["items"] - b["items"]
    return {"calls": calls, "items": items, "mean_batch": round(items / calls, 2) if calls else None}


# ------------------------------------------------------------------------------------------------ main


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    from rich.console import Console
    from rich.table import Table

    console = Console(width=150)
    say = lambda m: console.print(m, highlight=False)  # noqa: E731
    args.work.mkdir(parents=True, exist_ok=True)
    dataset = _catalogue(args, say)
    profiler = str(_micro_profiler(args, dataset)) if args.profiler == "micro" else args.profiler
    ready, hist, _ = _bodies(dataset, args.k, args.seed)
    phases: dict[str, dict[str, Any]] = {}
    server_info: dict[str, Any] = {}
    for batching in (True, False):
        label = "on" if batching else "off"
        say(f"starting the server (micro-batching {label}) on {HOST}")
        server = Server(args, dataset, profiler, batching)
        try:
            t0 = time.perf_counter()
            try:
                server.wait_ready()
            except RuntimeError as err:
                console.print(f"[red]the server did not start[/]: {err}", highlight=False)
                return 2
            say(f"  ready in {time.perf_counter() - t0:.0f}s")
            runs = [("ready", ready, args.ready_requests, args.malformed), ("generate", hist, args.generate_requests,
                                                                             args.malformed)]
            if batching:
                runs.insert(0, ("ready-clean", ready, args.ready_requests, 0.0))
            for name, goods, n, share in runs:
                before = server.info()
                res = asyncio.run(_load(server.base, goods, n, args.concurrency, args.time_limit, share,
                                        args.request_timeout, args.seed))
                after = server.info()
                res["generate_batches"] = _batch_delta(before, after, "generate")
                res["retrieve_batches"] = _batch_delta(before, after, "retrieve")
                phases[f"{name}/{label}"] = res
                say(f"  {name:<12} {res['throughput_rps']} req/s, p50 {res['p50_ms']} ms, lost {res['lost']}, "
                    f"malformed answered {res['malformed_answered_4xx']}/{res['malformed_sent']}")
            if batching:
                server_info = {k: after[k] for k in ("profiler", "generation", "embedder", "catalogue", "index", "limits")}
        finally:
            server.stop()

    ratios = {
        "ready: throughput on/off": _ratio(phases["ready/on"]["throughput_rps"], phases["ready/off"]["throughput_rps"]),
        "ready: p50 latency off/on": _ratio(phases["ready/off"]["p50_ms"], phases["ready/on"]["p50_ms"]),
        "generate: throughput on/off": _ratio(phases["generate/on"]["throughput_rps"],
                                              phases["generate/off"]["throughput_rps"]),
        "generate: p50 latency off/on": _ratio(phases["generate/off"]["p50_ms"], phases["generate/on"]["p50_ms"]),
        "ready (on): throughput with malformed / clean": _ratio(phases["ready/on"]["throughput_rps"],
                                                                 phases["ready-clean/on"]["throughput_rps"]),
    }
    lost = sum(p["lost"] for p in phases.values())
    wrong = sum(sum(p["malformed_wrong"].values()) for p in phases.values())
    record = {
        "benchmark": "serve_load",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": "python bench/serve_load.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_avg_1m_at_end": os.getloadavg()[0]},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "server": server_info,
        "phases": phases,
        "ratios": ratios,
        "lost_good_requests": lost,
        "malformed_wrongly_answered": wrong,
        "passed": lost == 0 and wrong == 0,
    }
    write_json_atomic(args.results, record)
    md = _markdown(record)
    write_text_atomic(args.results.with_suffix(".md"), md)

    table = Table(title=f"bluerec serve on loopback: POST /v1/recommend, {args.concurrency} in flight")
    for col in ("phase", "batching", "good ok/sent", "malformed 4xx/sent", "req/s", "p50 ms", "p95 ms", "p99 ms",
                "mean gen batch", "mean retr batch", "lost"):
        table.add_column(col, justify="left" if col in ("phase", "batching") else "right")
    for key, p in phases.items():
        name, label = key.split("/")
        table.add_row(name, label, f"{p['good_ok']}/{p['good_sent']}", f"{p['malformed_answered_4xx']}/{p['malformed_sent']}",
                      str(p["throughput_rps"]), str(p["p50_ms"]), str(p["p95_ms"]), str(p["p99_ms"]),
                      str(p["generate_batches"]["mean_batch"] or "-"), str(p["retrieve_batches"]["mean_batch"] or "-"),
                      str(p["lost"]))
    console.print(table)
    for k, v in ratios.items():
        console.print(f"  {k}: {v}×")
    verdict = "[green]PASS[/]" if record["passed"] else "[red]FAIL[/]"
    console.print(f"{verdict}: {lost} good requests lost, {wrong} malformed requests answered wrongly; "
                  f"results in {args.results}")
    return 0 if record["passed"] else 1


def _markdown(record: dict[str, Any]) -> str:
    s = record["settings"]
    srv = record["server"]
    prof = (srv.get("profiler") or {}).get("model", s["profiler"])
    lines = [
        f"# bluerec serve load test ({record['time']})", "",
        f"`{record['command']}` — profiler `{Path(str(prof)).name}`, {srv.get('catalogue', {}).get('n_items', '?')} "
        f"items ({srv.get('index', {}).get('description', '?')}), {s['concurrency']} requests in flight, "
        f"{s['malformed']:.0%} malformed, profiles of {s['max_new_tokens']} new tokens, batches ≤ {s['max_batch_size']} "
        f"/ ≤ {s['max_wait_ms']} ms, {record['machine']['cpus']} CPUs.", "",
        "| phase | batching | good ok/sent | malformed 4xx/sent | req/s | p50 ms | p95 ms | p99 ms | mean gen batch | "
        "mean retr batch | lost |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, p in record["phases"].items():
        name, label = key.split("/")
        lines.append(f"| {name} | {label} | {p['good_ok']}/{p['good_sent']} | {p['malformed_answered_4xx']}/"
                     f"{p['malformed_sent']} | {p['throughput_rps']} | {p['p50_ms']} | {p['p95_ms']} | {p['p99_ms']} | "
                     f"{p['generate_batches']['mean_batch'] or '-'} | {p['retrieve_batches']['mean_batch'] or '-'} | "
                     f"{p['lost']} |")
    lines += ["", "| ratio | value |", "|---|---:|"]
    lines += [f"| {k} | {v}× |" for k, v in record["ratios"].items()]
    lines += ["", f"Lost good requests: {record['lost_good_requests']}; malformed requests answered wrongly: "
              f"{record['malformed_wrongly_answered']}; {'PASS' if record['passed'] else 'FAIL'}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
