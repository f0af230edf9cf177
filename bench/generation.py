"""Benchmark (not a test): profile generation, one prompt at a time vs batched, in tokens/s and model FLOP use.

    .venv/bin/python bench/generation.py                       # SmolLM2-135M-Instruct, 32 beauty users, 2 threads
    .venv/bin/python bench/generation.py --users 64 --batch-sizes 8 32 64

The same prompts (real amazon2014-beauty test users from ``../shared/data`` when present, else a synthetic
dataset, through the project's prompt builder) go through ``HFProfiler.generate`` greedily, first one prompt per
call, then in batches. Everything runs in one process, side by side, so the ratios hold on a noisy machine.

Model FLOP utilisation (MFU) = the model's useful FLOPs per second / the FLOPs per second of a plain fp32 torch
matmul (1024³, same threads) timed in the same run. Useful FLOPs: 2 × non-embedding parameters per prompt token
(prefill) and per generated token, plus 2 × the output head per generated token; attention's quadratic term and
the work spent on padding and on rows that already finished are not counted (they are the waste batching trades).
Writes ``bench/results/generation.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bluerec.data.dataset import PreparedDataset  # noqa: E402
from bluerec.io import write_json_atomic, write_text_atomic  # noqa: E402
from bluerec.profiler.config import ProfilerConfig  # noqa: E402
from bluerec.profiler.loader import load_profiler  # noqa: E402
from bluerec.profiler.profile import latest_per_user, profile_prompts  # noqa: E402
from bluerec.profiler.prompts import PromptConfig, render_prompt  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "seqrec_benchmark_amazon" / "amazon2014-beauty"
RESULTS = ROOT / "bench" / "results"
console = Console()


def dataset(work: Path) -> tuple[PreparedDataset, str]:
    """amazon2014-beauty from ``../shared/data`` when present, else a small synthetic Amazon 2023 dataset."""
    from bluerec.data.prepare import prepared_seqrec

    if SHARED.is_dir():
        return PreparedDataset(prepared_seqrec(SHARED, work / "beauty2014")), "amazon2014-beauty"
    from bluerec.data.config import PrepareConfig, SourceConfig
    from bluerec.data.prepare import prepare_dataset
    from bluerec.data.synth import SynthConfig, write_synth

    out = work / "synth"
    if not (out / "manifest.json").exists():
        raw = work / "raw"
        write_synth(SynthConfig(n_users=300, n_items=200), raw)
        cfg = PrepareConfig(source=SourceConfig(format="amazon2023", reviews=[raw / "amazon" / "All_Beauty.jsonl.gz"],
                                                meta=[raw / "amazon" / "meta_All_Beauty.jsonl.gz"]), k_core=0)
        prepare_dataset(cfg, out, progress=lambda m: None)
    return PreparedDataset(out), "synthetic"


def matmul_flops_per_s(seconds: float = 2.0, n: int = 1024) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)  # warm-up
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.matmul(a, b)
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - start)


def param_counts(model: Any) -> tuple[int, int]:
    """(non-embedding parameters, output-head parameters); a tied head counts as the embedding matrix."""
    embed = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    total = sum(p.numel() for p in model.parameters())
    tied = head.data_ptr() == embed.data_ptr()
    non_embed = total - embed.numel() - (0 if tied else head.numel())
    return non_embed, head.numel()


def run(profiler: Any, prompts: list[list[dict]], batch_size: int, max_new_tokens: int) -> dict[str, Any]:
    tok = profiler.tokenizer
    profiler.batch_size = batch_size
    start = time.perf_counter()
    outs: list[str] = []
    for i in range(0, len(prompts), batch_size):
        outs += [g[0] for g in profiler.generate(prompts[i : i + batch_size], do_sample=False,
                                                  max_new_tokens=max_new_tokens)]
    seconds = time.perf_counter() - start
    prompt_tokens = sum(len(tok(render_prompt(m, tok), add_special_tokens=False)["input_ids"]) for m in prompts)
    new_tokens = sum(len(tok(o, add_special_tokens=False)["input_ids"]) + 1 for o in outs)  # + the EOS / last step
    return {"batch_size": batch_size, "seconds": seconds, "prompt_tokens": prompt_tokens, "new_tokens": new_tokens,
            "profiles": outs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct", help="known name, folder or hub id")
    ap.add_argument("--users", type=int, default=32)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--max-prompt-tokens", type=int, default=160)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", type=Path, default=ROOT / ".cache" / "bench-generation")
    ap.add_argument("--out", type=Path, default=RESULTS / "generation")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    ds, name = dataset(args.work)
    prompt_config = PromptConfig(max_prompt_tokens=args.max_prompt_tokens, max_history_items=10, max_item_chars=80)
    users = latest_per_user(ds.split("test"))[: args.users]
    profiler = load_profiler(ProfilerConfig(model=args.model, device="cpu", dtype="float32"))
    prompts = profile_prompts(profiler, ds, users, prompt_config)
    non_embed, head = param_counts(profiler.model)
    console.print(f"{args.model}: {non_embed / 1e6:.1f}M non-embedding + {head / 1e6:.1f}M head parameters; "
                  f"{len(prompts)} {name} prompts; {args.threads} threads")

    peak = matmul_flops_per_s()
    rows = [run(profiler, prompts, 1, args.max_new_tokens)]
    for bs in args.batch_sizes:
        rows.append(run(profiler, prompts, bs, args.max_new_tokens))
    peak = (peak + matmul_flops_per_s()) / 2  # before and after: the machine's speed drifts
    base = rows[0]
    for r in rows:
        flops = 2 * non_embed * (r["prompt_tokens"] + r["new_tokens"]) + 2 * head * r["new_tokens"]
        r["new_tokens_per_s"] = r["new_tokens"] / r["seconds"]
        r["profiles_per_s"] = len(prompts) / r["seconds"]
        r["mfu"] = flops / r["seconds"] / peak
        r["speedup_vs_one_at_a_time"] = base["seconds"] / r["seconds"]
        r["same_profiles_as_one_at_a_time"] = sum(a == b for a, b in zip(r["profiles"], base["profiles"]))

    table = Table(title=f"profile generation, {args.model}, {len(prompts)} prompts, greedy, "
                        f"≤{args.max_new_tokens} new tokens, {args.threads} threads")
    for col in ("batch", "seconds", "s / profile", "new tok/s", "MFU", "speed-up", "same text"):
        table.add_column(col, justify="right")
    md = ["| batch | seconds | s / profile | new tokens/s | MFU | speed-up vs 1 | same profile as batch 1 |",
          "|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = [str(r["batch_size"]), f"{r['seconds']:.1f}", f"{r['seconds'] / len(prompts):.2f}",
                 f"{r['new_tokens_per_s']:.1f}", f"{r['mfu']:.1%}", f"{r['speedup_vs_one_at_a_time']:.2f}×",
                 f"{r['same_profiles_as_one_at_a_time']}/{len(prompts)}"]
        table.add_row(*cells)
        md.append("| " + " | ".join(cells) + " |")
    console.print(table)
    console.print(f"fp32 matmul reference: {peak / 1e9:.1f} GFLOP/s")
    result = {
        "benchmark": "generation", "model": args.model, "dataset": name, "prompts": len(prompts),
        "max_new_tokens": args.max_new_tokens, "max_prompt_tokens": args.max_prompt_tokens, "threads": args.threads,
        "matmul_gflops": peak / 1e9, "non_embedding_params": non_embed, "head_params": head,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "runs": [{k: v for k, v in r.items() if k != "profiles"} for r in rows],
        "example_profiles": [{"batch_size": r["batch_size"], "profile": r["profiles"][0]} for r in rows],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out.with_suffix(".json"), result)
    write_text_atomic(args.out.with_suffix(".md"),
                      f"# Profile generation ({args.model}, {len(prompts)} {name} prompts)\n\n" + "\n".join(md)
                      + f"\n\nfp32 matmul reference: {peak / 1e9:.1f} GFLOP/s; command: "
                      f"`python bench/generation.py --users {args.users}`\n")
    console.print(f"wrote {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
