"""Scale benchmark (not a test): synthesise a large Amazon Reviews 2023 category, then ``bluerec data prepare`` it
in a child process whose peak memory (child + its children, polled every 0.05 s) and wall time are measured.

    .venv/bin/python bench/prepare_scale.py                    # 5,000,000 reviews (the benchmark)
    .venv/bin/python bench/prepare_scale.py --reviews 1000000  # quicker

Prints a table (generation and prepare throughput, peak RSS against the limit, pass/fail) and writes
``bench/results/prepare_scale.json`` atomically. Exit status 1 when prepare fails or exceeds the memory limit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bluerec.data.synth import SynthConfig, expected_interactions_per_user, write_synth  # noqa: E402
from bluerec.io import write_json_atomic  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "prepare_scale.json"
POLL_S = 0.05


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reviews", type=int, default=5_000_000, help="target number of reviews (default 5,000,000)")
    p.add_argument("--items", type=int, default=None, help="items in the catalogue (default: reviews / 25, max 200k)")
    p.add_argument("--interests", type=int, default=300, help="latent interest clusters")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "bluerec_prepare_scale",
                   help="scratch folder for the raw files and the prepared dataset (removed unless --keep)")
    p.add_argument("--limit-mb", type=float, default=2048.0, help="peak RSS limit for prepare (MB)")
    p.add_argument("--memory-limit", default=None, help="PrepareConfig.memory_limit (DuckDB), default: its default")
    p.add_argument("--threads", type=int, default=None, help="PrepareConfig.threads, default: its default")
    p.add_argument("--reuse", action="store_true", help="reuse raw files already in --work if the config matches")
    p.add_argument("--keep", action="store_true", help="keep --work afterwards")
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)  # internal: run prepare from a spec
    p.add_argument("--child-synth", type=Path, default=None, help=argparse.SUPPRESS)  # internal: run the generator
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------------------- child


def _child(spec_path: Path) -> int:
    from bluerec.data.config import PrepareConfig
    from bluerec.data.prepare import prepare_dataset

    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    config = PrepareConfig.model_validate(spec["config"])
    started = time.perf_counter()

    def say(msg: str) -> None:
        print(f"[prepare {time.perf_counter() - started:7.1f}s] {msg}", file=sys.stderr, flush=True)

    manifest = prepare_dataset(config, spec["out"], progress=say)
    write_json_atomic(spec["result"], {"counts": manifest.get("counts", {}), "seconds": time.perf_counter() - started})
    return 0


def _child_synth(spec_path: Path) -> int:
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    config = SynthConfig.model_validate(spec["config"])
    cpu0, t0 = time.process_time(), time.perf_counter()
    result = write_synth(config, spec["out"])
    wall = time.perf_counter() - t0
    n_rev = result.counts["amazon"]["reviews"]
    write_json_atomic(spec["result"], {
        "reviews": n_rev,
        "users": config.n_users,
        "items": config.n_items,
        "wall_s": wall,
        "cpu_s": time.process_time() - cpu0,  # all threads
        "reviews_per_s": n_rev / wall,
        "reviews_per_cpu_s": n_rev / (time.process_time() - cpu0),
        "review_phase_s": result.timings["amazon/reviews"],
        "review_phase_per_s": n_rev / result.timings["amazon/reviews"],
        "setup_s": result.timings["amazon/setup"],
        "bytes_reviews_gz": result.files["amazon/reviews"].stat().st_size,
        "bytes_meta_gz": result.files["amazon/meta"].stat().st_size,
        "bytes_truth": result.files["truth"].stat().st_size,
        "reviews_file": str(result.files["amazon/reviews"]),
        "meta_file": str(result.files["amazon/meta"]),
    })
    return 0


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def _run_child(spec: dict[str, Any], work: Path, flag: str = "--child") -> dict[str, Any]:
    """Run this script with ``flag`` in a child process; poll the RSS of its process tree every POLL_S."""
    spec_path = work / f"spec{flag.replace('-', '_')}.json"
    write_json_atomic(spec_path, spec)
    cmd = [sys.executable, str(Path(__file__).resolve()), flag, str(spec_path)]
    before_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    popen = subprocess.Popen(cmd, cwd=ROOT)
    proc = psutil.Process(popen.pid)
    peak, samples = 0, 0
    while popen.poll() is None:
        peak = max(peak, _tree_rss(proc))
        samples += 1
        time.sleep(POLL_S)
    wall = time.perf_counter() - t0
    # largest single descendant so far (Linux: KiB); only meaningful when it grew with this child
    maxrss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    maxrss_kb = maxrss_kb if maxrss_kb > before_kb else 0
    return {
        "returncode": popen.returncode,
        "wall_s": wall,
        "peak_rss_mb": max(peak / 2**20, maxrss_kb / 1024),
        "peak_rss_polled_mb": peak / 2**20,
        "ru_maxrss_mb": maxrss_kb / 1024,
        "rss_samples": samples,
    }


# ---------------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    if args.child is not None:
        return _child(args.child)
    if args.child_synth is not None:
        return _child_synth(args.child_synth)

    from rich.console import Console
    from rich.table import Table

    console = Console()
    n_items = args.items or max(1_000, min(200_000, args.reviews // 25))
    base = SynthConfig(domain="amazon", n_users=1, n_items=n_items, n_interests=min(args.interests, n_items),
                       max_interactions=60, seed=args.seed)
    n_users = max(1, round(args.reviews / expected_interactions_per_user(base)))
    synth_cfg = base.model_copy(update={"n_users": n_users})
    synth_cfg = SynthConfig.model_validate(synth_cfg.model_dump())
    work = args.work
    raw_dir, out_dir = work / "raw", work / "prepared"
    stamp = raw_dir / "synth_config.json"

    # ---- generate
    reuse = args.reuse and stamp.exists() and json.loads(stamp.read_text()) == synth_cfg.model_dump(mode="json")
    if reuse:
        console.print(f"reusing raw files in {raw_dir}")
        truth_counts = json.loads((raw_dir / "gen_result.json").read_text())
        gen = truth_counts
    else:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        console.print(f"generating ~{args.reviews:,} reviews ({n_users:,} users, {n_items:,} items) into {raw_dir}")
        gen_path = work / "gen_result.json"
        gen_run = _run_child(
            {"config": synth_cfg.model_dump(mode="json"), "out": str(raw_dir), "result": str(gen_path)},
            work, "--child-synth",
        )
        if gen_run["returncode"] != 0 or not gen_path.exists():
            console.print(f"[red]generation failed[/] (exit {gen_run['returncode']})")
            return 1
        gen = json.loads(gen_path.read_text()) | {"peak_rss_mb": gen_run["peak_rss_mb"]}
        write_json_atomic(raw_dir / "gen_result.json", gen)
        write_json_atomic(stamp, synth_cfg.model_dump(mode="json"))

    # ---- prepare in a child process
    from bluerec.data.config import PrepareConfig, SourceConfig

    prep_kwargs: dict[str, Any] = {}
    if args.memory_limit:
        prep_kwargs["memory_limit"] = args.memory_limit
    if args.threads:
        prep_kwargs["threads"] = args.threads
    prep_cfg = PrepareConfig(
        source=SourceConfig(format="amazon2023", reviews=[Path(gen["reviews_file"])], meta=[Path(gen["meta_file"])]),
        **prep_kwargs,
    )
    shutil.rmtree(out_dir, ignore_errors=True)
    result_path = work / "prepare_result.json"
    result_path.unlink(missing_ok=True)
    console.print(f"preparing in a child process (polling RSS every {POLL_S}s) into {out_dir}")
    run = _run_child({"config": prep_cfg.model_dump(mode="json"), "out": str(out_dir), "result": str(result_path)}, work)
    child = json.loads(result_path.read_text()) if result_path.exists() else {}
    ok_run = run["returncode"] == 0 and bool(child)
    ok_mem = run["peak_rss_mb"] <= args.limit_mb
    passed = ok_run and ok_mem

    record = {
        "benchmark": "prepare_scale",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_avg_1m_at_end": os.getloadavg()[0]},
        "synth_config": synth_cfg.model_dump(mode="json"),
        "prepare_config": prep_cfg.model_dump(mode="json"),
        "generation": {k: v for k, v in gen.items() if k not in ("reviews_file", "meta_file")} | {"reused": reuse},
        "prepare": {
            **run,
            "reviews_per_s": gen["reviews"] / run["wall_s"],
            "counts": child.get("counts", {}),
            "seconds_inside": child.get("seconds"),
        },
        "limit_mb": args.limit_mb,
        "passed": passed,
    }
    write_json_atomic(args.results, record)

    table = Table(title=f"prepare at scale: {gen['reviews']:,} Amazon 2023 reviews")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("generation wall", f"{gen['wall_s']:.1f} s")
    table.add_row("generation throughput", f"{gen['reviews_per_s']:,.0f} reviews/s")
    table.add_row("  review phase only", f"{gen['review_phase_per_s']:,.0f} reviews/s")
    if "reviews_per_cpu_s" in gen:
        table.add_row("  per CPU-second", f"{gen['reviews_per_cpu_s']:,.0f} reviews/cpu-s")
    if "peak_rss_mb" in gen:
        table.add_row("generation peak RSS", f"{gen['peak_rss_mb']:,.0f} MB")
    table.add_row("raw size (gz)", f"{(gen['bytes_reviews_gz'] + gen['bytes_meta_gz']) / 2**20:,.0f} MB")
    table.add_row("prepare wall", f"{run['wall_s']:.1f} s")
    table.add_row("prepare throughput", f"{gen['reviews'] / run['wall_s']:,.0f} reviews/s")
    table.add_row("prepare peak RSS (tree, polled)", f"{run['peak_rss_polled_mb']:,.0f} MB")
    table.add_row("prepare ru_maxrss (largest proc)", f"{run['ru_maxrss_mb']:,.0f} MB")
    table.add_row("limit", f"{args.limit_mb:,.0f} MB")
    counts = child.get("counts", {})
    for key in ("raw_interactions", "interactions", "users", "items"):
        if key in counts:
            table.add_row(f"counts.{key}", f"{counts[key]:,}")
    verdict = "[green]PASS[/]" if passed else f"[red]FAIL[/] ({'prepare failed' if not ok_run else 'memory'})"
    table.add_row("result", verdict)
    console.print(table)
    console.print(f"wrote {args.results}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
