"""Benchmark (not a test): does zero-shot SmolLM2 use the collaborative context it is shown?

    .venv/bin/python bench/context_zeroshot.py --users 500

Greedy SmolLM2-135M-Instruct profiles (≤ 48 new tokens, prompts of ≤ 256 tokens with the 10 newest titles) of a
seeded sample of amazon2014-beauty test users, once with the history alone and once with the
``prompt.collaborative`` section (top 5 successors of the 3 newest items, train-only statistics), evaluated beside
last item, history text, template and the LLM-free successor baselines on the same users, with paired bootstrap
intervals. No training: this is the starting point BLUE with context has to improve on. Writes
``bench/results/context_zeroshot.json`` and ``.md`` (the evaluation folder's summary).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bluerec.data.dataset import PreparedDataset  # noqa: E402
from bluerec.data.prepare import prepared_seqrec  # noqa: E402
from bluerec.eval.run import EvaluateConfig, EvaluationRun, select_examples  # noqa: E402
from bluerec.profiler.backends.base import GenerationConfig  # noqa: E402
from bluerec.profiler.config import ProfilerConfig  # noqa: E402
from bluerec.profiler.loader import load_profiler  # noqa: E402
from bluerec.profiler.profile import generate_profiles  # noqa: E402
from bluerec.profiler.prompts import CollaborativeContext, PromptConfig  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "seqrec_benchmark_amazon" / "amazon2014-beauty"
RESULTS = ROOT / "bench" / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=500)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "context_zeroshot")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"needs {SHARED} (../shared/data beside the repository)")
    torch.set_num_threads(args.threads)
    ds = PreparedDataset(prepared_seqrec(SHARED, ROOT / "data" / "prepared" / "beauty2014"))
    users = [ex.user_id for ex in select_examples(ds, "test", args.users, 0)]
    profiler = load_profiler(ProfilerConfig(model=args.model, device="cpu", dtype="float32"))
    gen = GenerationConfig(do_sample=False, max_new_tokens=48, batch_size=32)
    base = PromptConfig(max_prompt_tokens=256, max_history_items=10, max_item_chars=80)
    with_context = base.model_copy(update={"collaborative": CollaborativeContext(enabled=True, max_items=5,
                                                                                from_recent=3)})
    files = {}
    for name, prompt in (("zeroshot", base), ("zeroshot_ctx", with_context)):
        files[name] = args.work / f"{name}.jsonl"
        generate_profiles(profiler, ds, "test", prompt, gen, files[name], user_ids=users,
                          progress=lambda done, total, n=name: print(f"{n}: {done}/{total}", flush=True))
    run = EvaluationRun(EvaluateConfig(
        dataset=ds.root, max_users=args.users, seed=0, profiles=files,
        methods=["last_item", "history_text", "template", "successor_text", "successor_mean"]))
    run.run_all(args.work / "eval")
    RESULTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.work / "eval" / "summary.json", RESULTS / "context_zeroshot.json")
    shutil.copyfile(args.work / "eval" / "summary.md", RESULTS / "context_zeroshot.md")
    print((RESULTS / "context_zeroshot.md").read_text())


if __name__ == "__main__":
    main()
