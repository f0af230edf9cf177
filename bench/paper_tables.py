"""Benchmark (not a test): every table of the paper-style evaluation from one command, a thin composition of the
library's resumable pieces:

    .venv/bin/python bench/paper_tables.py -c configs/paper/default.yaml        # the real run (days on 2 CPU cores)
    .venv/bin/python bench/paper_tables.py --max-users 300 --grpo-steps 20 --datasets amazon2014-beauty \
        --stages train profiles finetune retrieval sequential --set finetune.max_pairs=500
    .venv/bin/python bench/paper_tables.py --smoke                              # the same composition in minutes

Stages (``--stages``), each a result file ``<work>/stages/<stage>.json`` written atomically when it finishes and
skipped on a rerun (every run appends what it did or skipped to ``<work>/stage_log.jsonl``); inside a stage the
library resumes too (warm-start candidates, GRPO checkpoints, profile files, transfer cells):

1. ``train``: for each dataset of ``train_on``, the warm start (:func:`bluerec.workflow.run_warmstart`) and one GRPO
   run per entry of ``trained`` — BLUE (both rewards) and the RLPF-, LangPTune- and RLAIF-style baselines, the same
   machinery with their own YAML (:func:`bluerec.train.train_blue` with ``resume=True``, best validation
   checkpoint kept);
2. ``profiles``: greedy test profiles of the zero-shot SmolLM2, the warm start and every trained profiler, for the
   seeded ``max_users`` test users of each dataset (resumable files);
3. ``finetune``: each dataset's embedder fine-tuned with MNRL and hard negatives on its train users
   (:func:`bluerec.embed.finetune.finetune_embedder`);
4. ``retrieval``: every baseline and every profile method under the frozen and the fine-tuned embedder, full ranking
   and sampled candidates, paired bootstrap intervals (:func:`bluerec.eval.embedders.compare_embedders`);
5. ``sequential``: SASRec and BERT4Rec trained on each dataset, scored on the same test users and protocols, their
   per-user ranks kept for paired intervals against the frozen embedder's references;
6. ``transfer``: the profilers trained on ``transfer.source`` evaluated without further training on every dataset
   (:func:`bluerec.eval.transfer.run_transfer`; the source's own column is the in-domain diagonal);
7. ``qa``: personalized QA (next-item choice accuracy, rating MAE) on Amazon 2023 All_Beauty with each profile as the
   reader's only context (:func:`bluerec.eval.qa.run_qa`).

Writes ``bench/results/paper_tables.json`` and ``.md`` (``--out``) with the command and the wall time. ``--smoke``
runs the same stages on small synthetic "domains" (bluerec.data.synth with different seeds) with the micro profiler
and tiny budgets; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pydantic import Field, model_validator  # noqa: E402

from bluerec.config import StrictModel, load_config  # noqa: E402
from bluerec.io import write_json_atomic, write_text_atomic  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
SEQREC = SHARED / "seqrec_benchmark_amazon"
RESULTS = ROOT / "bench" / "results"
CONFIGS = ROOT / "configs"
STAGES = ("train", "profiles", "finetune", "retrieval", "sequential", "transfer", "qa")
BASELINE_ROWS = ["popularity", "history_text", "template", "mean_embedding", "last_item", "successor_text",
                 "successor_mean"]
SEQUENTIAL = ("sasrec", "bert4rec")
REFERENCES = ["last_item", "history_text", "template", "zero_shot"]
Say = Callable[[str], None]


class FinetuneBudget(StrictModel):
    profiles: str = "template"
    max_pairs: int | None = Field(5000, ge=2)
    epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(-1, ge=-1)
    batch_size: int = Field(32, ge=2)


class TransferPlan(StrictModel):
    source: str
    methods: list[str] = Field(default_factory=lambda: ["blue"])


class QAPlan(StrictModel):
    data_config: Path | None = CONFIGS / "data" / "all_beauty2023.yaml"  # prepared into prepared_root/qa
    dataset: Path | None = None  # or an already prepared folder
    profilers_from: str
    max_users: int | None = Field(None, ge=1)
    reader: str = "smollm2-135m-instruct"


class PaperConfig(StrictModel):
    """``configs/paper/*.yaml`` (see configs/paper/default.yaml for every key). ``datasets`` are seqrec subset names
    under ../shared/data (or, in ``datasets_prepared``, names mapped to prepared folders); ``train_on`` ⊆ datasets."""

    datasets: list[str]
    datasets_prepared: dict[str, Path] = Field(default_factory=dict)
    train_on: list[str]
    prepared_root: Path = Path("data/prepared")
    work: Path = Path("runs/paper")
    max_users: int | None = Field(1000, ge=1)
    seed: int = 0
    stages: list[str] = Field(default_factory=lambda: list(STAGES))
    trained: dict[str, str]
    warmstart_config: str = "warmstart/beauty_smollm2.yaml"
    grpo_steps: int | None = Field(None, ge=1)
    num_threads: int | None = Field(None, ge=1)
    finetune: FinetuneBudget = Field(default_factory=FinetuneBudget)
    sasrec: dict[str, Any] = Field(default_factory=dict)
    bert4rec: dict[str, Any] = Field(default_factory=dict)
    transfer: TransferPlan
    qa: QAPlan
    cache_dir: Path | None = Path(".cache/embeddings")
    # overrides of the smoke mode (dotted keys as load_config takes them); empty in a real run
    warmstart_overrides: dict[str, Any] = Field(default_factory=dict)
    train_overrides: dict[str, Any] = Field(default_factory=dict)
    evaluate_overrides: dict[str, Any] = Field(default_factory=dict)
    max_new_tokens: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _check(self) -> PaperConfig:
        bad = [s for s in self.stages if s not in STAGES]
        if bad:
            raise ValueError(f"unknown stages {bad}; allowed: {list(STAGES)}")
        if not set(self.train_on) <= set(self.datasets):
            raise ValueError(f"train_on {self.train_on} must be among datasets {self.datasets}")
        if "transfer" in self.stages and self.transfer.source not in self.train_on:
            raise ValueError(f"transfer.source {self.transfer.source!r} must be a dataset of train_on {self.train_on} "
                             "(or leave 'transfer' out of stages)")
        if "qa" in self.stages and self.qa.profilers_from not in self.train_on:
            raise ValueError(f"qa.profilers_from {self.qa.profilers_from!r} must be a dataset of train_on "
                             f"{self.train_on} (or leave 'qa' out of stages)")
        if not set(self.transfer.methods) <= set(self.trained):
            raise ValueError(f"transfer.methods {self.transfer.methods} must be keys of trained {list(self.trained)}")
        if "blue" not in self.trained:
            raise ValueError("trained must have a 'blue' entry (the method the paper is about)")
        return self


# --- the stage runner: one atomic result file per stage, skipped when present ------------------------------------

class Stages:
    """Runs named stages once: ``<work>/stages/<name>.json`` holds a finished stage's result; a rerun reads it."""

    def __init__(self, work: Path, say: Say, fingerprint: str = "") -> None:
        self.fingerprint = fingerprint  # of the config: a stage made under another one is not silently reused
        self.dir = work / "stages"
        self.log = work / "stage_log.jsonl"
        self.say = say
        self.seconds: dict[str, float] = {}
        self.skipped: list[str] = []  # stages this run found done

    def path(self, name: str) -> Path:
        return self.dir / (name.replace("/", "__") + ".json")

    def _log(self, name: str, status: str, seconds: float) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("a", encoding="utf-8") as f:  # a log of what each run did; the results are atomic
            f.write(json.dumps({"stage": name, "status": status, "seconds": round(seconds, 1),
                                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}) + "\n")

    def done(self, name: str) -> dict[str, Any] | None:
        path = self.path(name)
        return json.loads(path.read_text(encoding="utf-8"))["result"] if path.exists() else None

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        found = self.path(name)
        if found.exists():
            record = json.loads(found.read_text(encoding="utf-8"))
            if record.get("config") != self.fingerprint:
                raise SystemExit(f"{found}: made under another config ({record.get('config')}, now {self.fingerprint}: "
                                 "users, budgets, datasets or models changed); use a new --work, or delete the stage "
                                 "files to redo")
            self.seconds[name] = record["seconds"]
            self._log(name, "skipped", 0.0)
            self.skipped.append(name)
            self.say(f"{name}: done earlier ({record['seconds']:.0f}s then)")
            return record["result"]
        self.say(f"{name}: running")
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
        write_json_atomic(found, {"stage": name, "config": self.fingerprint, "seconds": round(seconds, 1),
                                  "result": result})
        self.seconds[name] = round(seconds, 1)
        self._log(name, "done", seconds)
        self.say(f"{name}: done in {seconds:.0f}s")
        return result


# --- the composition -------------------------------------------------------------------------------------------

class Paper:
    def __init__(self, config: PaperConfig, say: Say = print) -> None:
        from bluerec.workflow import WarmStartRunConfig

        self.c = config
        self.say = say
        self.work = Path(config.work)
        import hashlib

        # every key but the list of stages to run decides what a stage computes
        settings = config.model_dump(mode="json", exclude={"stages"})
        fingerprint = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
        self.stages = Stages(self.work, say, fingerprint)
        write_json_atomic(self.work / "config.json", {"fingerprint": fingerprint, "config": settings})
        self.ws_base = load_config(WarmStartRunConfig, CONFIGS / config.warmstart_config, {
            "dataset": "unused", "output_dir": "unused", **config.warmstart_overrides})
        self.embedder = self.ws_base.embedder

    # datasets
    def dataset(self, name: str) -> Path:
        if name in self.c.datasets_prepared:
            return Path(self.c.datasets_prepared[name])
        from bluerec.data.prepare import prepared_seqrec

        return prepared_seqrec(SEQREC / name, Path(self.c.prepared_root) / name, progress=lambda m: None)

    def users(self, name: str) -> list[str]:
        from bluerec.data.dataset import PreparedDataset
        from bluerec.eval.run import select_examples

        return [ex.user_id for ex in select_examples(PreparedDataset(self.dataset(name)), "test", self.c.max_users,
                                                     self.c.seed)]

    # configs of one dataset's training
    def warmstart_config(self, name: str) -> Any:
        from bluerec.workflow import WarmStartRunConfig

        over = {"dataset": str(self.dataset(name)), "output_dir": str(self.work / name / "warmstart"),
                "item_cache_dir": str(self.c.cache_dir) if self.c.cache_dir else None, **self.c.warmstart_overrides}
        if self.c.num_threads:
            over["num_threads"] = self.c.num_threads
        return load_config(WarmStartRunConfig, CONFIGS / self.c.warmstart_config, over)

    def train_config(self, name: str, method: str) -> Any:
        from bluerec.train.config import BlueTrainConfig

        over = {"dataset": str(self.dataset(name)), "profiler.model": str(self.work / name / "warmstart" / "model"),
                "output_dir": str(self.work / name / "grpo" / method),
                "item_cache_dir": str(self.c.cache_dir) if self.c.cache_dir else None, **self.c.train_overrides}
        if self.c.grpo_steps:
            over["grpo.max_steps"] = self.c.grpo_steps
        if self.c.num_threads:
            over["num_threads"] = self.c.num_threads
        cfg = load_config(BlueTrainConfig, CONFIGS / "train" / self.c.trained[method], over)
        if not cfg.eval.select_best:
            raise SystemExit(f"{self.c.trained[method]}: set eval.select_best: true (the test rows use best/)")
        return cfg

    def zero_shot(self) -> Any:
        p = self.ws_base.profiler
        return p.model_copy(update={"lora": p.lora.model_copy(update={"enabled": False})})

    def profilers(self, name: str) -> dict[str, Any]:
        """Profile method → its ProfilerConfig: the zero-shot model, and the trained ones of ``name``."""
        out = {"zero_shot": self.zero_shot()}
        if name in self.c.train_on:
            trained = self.stages.done(f"train/{name}")
            if trained is None:
                raise SystemExit(f"{name}: the train stage has not run (add 'train' to --stages)")
            out["warmstart"] = self.zero_shot().model_copy(update={"model": trained["warmstart"]})
            for method, g in trained["grpo"].items():
                out[method] = self.zero_shot().model_copy(update={"model": g["profiler"]})
        return out

    @property
    def max_new_tokens(self) -> int:
        return self.c.max_new_tokens or self.ws_base.selection.max_new_tokens

    # stages
    def train(self, name: str) -> dict[str, Any]:
        from bluerec.pipeline import train_printer
        from bluerec.train.select import read_best
        from bluerec.train.trainer import train_blue
        from bluerec.workflow import run_warmstart

        ws = self.warmstart_config(name)
        warm = run_warmstart(ws, say=lambda m: self.say("    " + m))
        grpo: dict[str, Any] = {}
        for method in self.c.trained:
            cfg = self.train_config(name, method)
            if cfg.prompt != ws.prompt:
                raise SystemExit(f"{self.c.trained[method]}: prompt differs from the warm start's; keep them equal")
            out = Path(cfg.output_dir)
            best = read_best(out)
            if best is None or not (out / "final" / "config.json").exists():
                result = train_blue(cfg.model_copy(update={"show_progress": False}), resume=True,
                                    progress=train_printer(lambda m, v=method: self.say(f"    [{v}] {m}"), every=10))
                best = result.best
            if best is None:
                raise SystemExit(f"{out}: no validation after a GRPO step chose a best/ checkpoint")
            grpo[method] = {"best": best, "profiler": str(out / best["path"]), "config": self.c.trained[method]}
        return {"warmstart": str(warm["model"]), "warmstart_record": warm, "grpo": grpo}

    def profiles(self, name: str) -> dict[str, str]:
        from bluerec.data.dataset import PreparedDataset
        from bluerec.pipeline import generate_profile_file

        ds, users, paths = PreparedDataset(self.dataset(name)), self.users(name), {}
        for method, profiler in self.profilers(name).items():
            path = self.work / name / "profiles" / f"{method}.test.jsonl"
            t = time.perf_counter()
            generate_profile_file(profiler, ds, "test", path, self.ws_base.prompt, self.max_new_tokens, user_ids=users,
                                  batch_size=self.ws_base.selection.batch_size)
            self.say(f"    {name} {method}: {len(users)} profiles in {time.perf_counter() - t:.0f}s")
            paths[method] = str(path)
        return paths

    def finetune(self, name: str) -> dict[str, Any]:
        from bluerec.embed.finetune import FinetuneConfig, finetune_embedder

        f = self.c.finetune
        out = self.work / name / "embedder_finetuned"
        r = finetune_embedder(FinetuneConfig(
            dataset=self.dataset(name), profiles=f.profiles, embedder=self.embedder, output_dir=out, overwrite=True,
            max_pairs=f.max_pairs, epochs=f.epochs, max_steps=f.max_steps, batch_size=f.batch_size, seed=self.c.seed,
            show_progress=False), progress=lambda m: self.say("    " + m))
        return {"model": str(out), "pairs": r.pairs, "loss_before": r.loss_before, "loss_after": r.loss_after,
                "trained_on": f.profiles}

    def evaluate_config(self, name: str, profiles: dict[str, str]) -> Any:
        from bluerec.eval.run import EvaluateConfig

        cfg: dict[str, Any] = {
            "dataset": str(self.dataset(name)), "split": "test", "profiles": profiles, "max_users": self.c.max_users,
            "seed": self.c.seed, "cache_dir": str(self.c.cache_dir) if self.c.cache_dir else None,
            "embedder": self.embedder.model_dump(),
            "protocols": [{"protocol": "full"}, {"protocol": "sampled", "num_negatives": 99, "seed": self.c.seed}],
            "intervals": {"references": REFERENCES}, **self.c.evaluate_overrides}
        # the references this run has (zero_shot only when its profiles are evaluated)
        cfg["intervals"] = {**cfg["intervals"], "references": [
            r for r in cfg["intervals"].get("references") or REFERENCES if r in profiles or r in BASELINE_ROWS]}
        return EvaluateConfig.model_validate(cfg)

    def retrieval(self, name: str) -> dict[str, Any]:
        from bluerec.eval.embedders import EmbedderCompareConfig, compare_embedders

        profiles = self.stages.done(f"profiles/{name}")
        ft = self.stages.done(f"finetune/{name}")
        if profiles is None or ft is None:
            raise SystemExit(f"{name}: run the profiles and finetune stages first")
        ev = self.evaluate_config(name, profiles)
        out = self.work / name / "retrieval"
        table = compare_embedders(EmbedderCompareConfig(evaluate=ev, embedders={
            "frozen": self.embedder, "finetuned": self.embedder.model_copy(update={"model": ft["model"]})}),
            out, say=lambda m: self.say("    " + m))
        summaries = {e: json.loads((out / e / "summary.json").read_text(encoding="utf-8")) for e in table["embedders"]}
        return {"table": table, "summaries": summaries}

    def sequential(self, name: str, model: str) -> dict[str, Any]:
        from dataclasses import replace

        import numpy as np

        from bluerec.data.dataset import PreparedDataset
        from bluerec.eval import bert4rec, sasrec
        from bluerec.eval.evaluator import EvalConfig, save_user_results

        data = sasrec.sasrec_data(PreparedDataset(self.dataset(name)))
        settings = dict(self.c.sasrec if model == "sasrec" else self.c.bert4rec)
        settings.setdefault("seed", self.c.seed)
        if model == "sasrec":
            fit = sasrec.train_sasrec(data, sasrec.SASRecConfig(**settings), progress=lambda m: self.say("    " + m))
        else:
            fit = bert4rec.train_bert4rec(data, bert4rec.BERT4RecConfig(**settings),
                                          progress=lambda m: self.say("    " + m))
        # the same seeded test users as every other method
        pos = {u: i for i, u in enumerate(data.users)}
        keep = [pos[u] for u in self.users(name)]
        sub = replace(data, users=[data.users[i] for i in keep], test_history=[data.test_history[i] for i in keep],
                      test_target=np.asarray(data.test_target)[keep])
        protocols = self.evaluate_config(name, {}).protocols
        evaluators = sasrec.sasrec_evaluators(sub, [EvalConfig.model_validate(p.model_dump()) for p in protocols])
        score = sasrec.score_sasrec if model == "sasrec" else bert4rec.score_bert4rec
        results = score(fit.model, sub, evaluators)
        for protocol, result in results.items():  # per user, for intervals against the text methods' rows
            save_user_results(result, self.sequential_users(name, model, protocol))
        return {"results": {p: {k: float(v) for k, v in r.metrics.items()} for p, r in results.items()},
                "n_users": len(keep), "training": fit.record()}

    def sequential_users(self, name: str, model: str, protocol: str) -> Path:
        return self.work / name / "sequential" / model / f"{protocol}.parquet"

    def sequential_intervals(self, name: str) -> dict[str, Any]:
        """``{model: {protocol: {reference: {metric: {diff, lo, hi}}}}}``: paired bootstrap of SASRec/BERT4Rec −
        each reference of the frozen embedder's run, from the per-user ranks both saved for the same users."""
        import numpy as np
        import pandas as pd

        from bluerec.eval.bootstrap import bootstrap_mean_intervals
        from bluerec.eval.metrics import METRICS_AT_K

        ref_dir = self.work / name / "retrieval" / "frozen" / "users"
        metrics = ("ndcg@10", "recall@10")
        ranks = lambda path: pd.read_parquet(path, columns=["user_id", "rank"]).set_index("user_id")["rank"]  # noqa: E731
        keys, rows = [], []
        for model in SEQUENTIAL:
            for protocol in ("full", "sampled"):
                path = self.sequential_users(name, model, protocol)
                if self.stages.done(f"{model}/{name}") is None or not path.exists():
                    continue
                own = ranks(path)
                for ref in REFERENCES:
                    ref_path = ref_dir / f"{ref}.{protocol}.parquet"
                    if not ref_path.exists():
                        continue
                    other = ranks(ref_path).reindex(own.index)
                    if other.isna().any():
                        raise SystemExit(f"{ref_path}: not the users of {path} (rerun the sequential stage)")
                    for m in metrics:
                        metric, k = m.split("@")
                        at_k = METRICS_AT_K[metric]
                        keys.append((model, protocol, ref, m))
                        rows.append(at_k(own.to_numpy(float), int(k)) - at_k(other.to_numpy(float), int(k)))
        out: dict[str, Any] = {}
        if rows:
            iv = self.c.evaluate_overrides.get("intervals", {})
            mean, lo, hi = bootstrap_mean_intervals(np.stack(rows), n_resamples=iv.get("n_resamples", 10_000),
                                                    confidence=iv.get("confidence", 0.95), seed=self.c.seed)
            for (model, protocol, ref, m), d, a, b in zip(keys, mean, lo, hi):
                out.setdefault(model, {}).setdefault(protocol, {}).setdefault(ref, {})[m] = {
                    "diff": float(d), "lo": float(a), "hi": float(b)}
        return out

    def transfer(self) -> dict[str, Any]:
        from bluerec.eval.transfer import TransferConfig, run_transfer

        src = self.c.transfer.source
        profilers = self.profilers(src)
        ev = self.evaluate_config(src, {})
        cfg = TransferConfig(
            profilers=[{"name": f"{m}_{src}", "source": src, "profiler": profilers[m], "prompt": self.ws_base.prompt}
                       for m in self.c.transfer.methods],
            targets=[{"name": d, "dataset": self.dataset(d)} for d in self.c.datasets],
            output_dir=self.work / "transfer", max_users=self.c.max_users, seed=self.c.seed, embedder=self.embedder,
            protocols=ev.protocols, intervals=ev.intervals.model_copy(update={"references": None}),
            cache_dir=self.c.cache_dir, max_new_tokens=self.max_new_tokens,
            batch_size=self.ws_base.selection.batch_size)
        return run_transfer(cfg, say=lambda m: self.say("    " + m))

    def qa_dataset(self) -> Path:
        q = self.c.qa
        if q.dataset is not None:
            return q.dataset
        from bluerec.data.config import PrepareConfig
        from bluerec.data.prepare import prepare_dataset

        out = Path(self.c.prepared_root) / "qa_all_beauty2023"
        if not (out / "manifest.json").exists():
            prepare_dataset(load_config(PrepareConfig, q.data_config), out, progress=lambda m: None)
        return out

    def qa(self) -> dict[str, Any]:
        from bluerec.data.dataset import PreparedDataset
        from bluerec.eval.qa import QAConfig, run_qa, select_users
        from bluerec.pipeline import generate_profile_file

        q = self.c.qa
        folder = self.qa_dataset()
        ds = PreparedDataset(folder)
        users = [ex.user_id for ex in select_users(ds.split("test"), q.max_users, self.c.seed)]
        paths: dict[str, Path] = {}
        for method, profiler in self.profilers(q.profilers_from).items():
            path = self.work / "qa" / "profiles" / f"{method}.test.jsonl"
            generate_profile_file(profiler, ds, "test", path, self.ws_base.prompt, self.max_new_tokens, user_ids=users,
                                  batch_size=self.ws_base.selection.batch_size)
            paths[method] = path
        reader = self.zero_shot().model_copy(update={"model": q.reader}) if q.reader != "profiler" else self.zero_shot()
        cfg = QAConfig(dataset=folder, max_users=q.max_users, seed=self.c.seed, contexts=["history", "template"],
                       profiles=paths, reader=reader,
                       resamples=self.c.evaluate_overrides.get("intervals", {}).get("n_resamples", 10_000))
        return run_qa(cfg, self.work / "qa", say=lambda m: self.say("    " + m))

    def run(self) -> dict[str, Any]:
        s, want = self.stages, set(self.c.stages)
        for name in self.c.datasets:  # prepare every dataset once, up front
            self.dataset(name)
        if "train" in want:
            for name in self.c.train_on:
                s.run(f"train/{name}", lambda n=name: self.train(n))
        for name in self.c.datasets:
            if "profiles" in want:
                s.run(f"profiles/{name}", lambda n=name: self.profiles(n))
            if "finetune" in want:
                s.run(f"finetune/{name}", lambda n=name: self.finetune(n))
            if "retrieval" in want:
                s.run(f"retrieval/{name}", lambda n=name: self.retrieval(n))
            if "sequential" in want:
                for model in SEQUENTIAL:
                    s.run(f"{model}/{name}", lambda n=name, m=model: self.sequential(n, m))
        if "transfer" in want:
            s.run("transfer", self.transfer)
        if "qa" in want:
            s.run("qa", self.qa)
        return self.tables()

    # assembly
    def method_rows(self) -> list[str]:
        return [*BASELINE_ROWS, "zero_shot", "warmstart", *self.c.trained, *SEQUENTIAL]

    def tables(self) -> dict[str, Any]:
        s = self.stages
        # each finished stage file read once (a retrieval stage holds every method's summary and intervals)
        done = {name: r for name in self.c.datasets if (r := s.done(f"retrieval/{name}")) is not None}
        sequential = {(m, name): r for m in SEQUENTIAL for name in self.c.datasets
                      if (r := s.done(f"{m}/{name}")) is not None}
        retrieval: dict[str, Any] = {}
        for emb in ("frozen", "finetuned"):
            for name in self.c.datasets:
                r = done.get(name)
                for method in self.method_rows():
                    cell: dict[str, Any] | None = None
                    if r is not None and method in r["table"]["results"]:
                        cell = {p: by_e[emb] for p, by_e in r["table"]["results"][method].items()}
                    elif (method, name) in sequential:
                        cell = sequential[method, name]["results"]  # ID-based: no text embedder, same in both
                    retrieval.setdefault(emb, {}).setdefault(method, {})[name] = cell
        intervals = {name: {e: r["summaries"][e]["intervals"] for e in r["summaries"]} for name, r in done.items()}
        for name, by_e in intervals.items():  # SASRec / BERT4Rec against the frozen embedder's references
            by_e["frozen"] = {**by_e["frozen"], **self.sequential_intervals(name)}
        # what the markdown needs beside the intervals to print them (the frozen run's references and settings)
        interval_meta = {name: {k: r["summaries"]["frozen"].get(k) for k in ("references", "interval_settings")}
                         for name, r in done.items()}
        return {"methods": self.method_rows(), "datasets": list(self.c.datasets), "train_on": list(self.c.train_on),
                "n_users": {name: r["table"]["n_users"] for name, r in done.items()}, "retrieval": retrieval,
                "intervals": intervals, "interval_meta": interval_meta,
                "embedders": {name: r["table"] for name, r in done.items()},
                "finetune": {n: s.done(f"finetune/{n}") for n in self.c.datasets},
                "sequential_training": {f"{m}/{n}": (sequential.get((m, n)) or {}).get("training")
                                        for m in SEQUENTIAL for n in self.c.datasets},
                "transfer": s.done("transfer"), "qa": s.done("qa"), "stage_seconds": s.seconds,
                "stages_resumed": list(s.skipped)}


def _cell(cell: dict[str, Any] | None, protocol: str, metric: str) -> str:
    if not cell or protocol not in cell:
        return "—"
    return f"{cell[protocol][metric]:.4f}"


def frozen_interval_summary(tables: dict[str, Any], dataset: str, intervals: dict[str, Any]) -> dict[str, Any]:
    """The evaluation-summary shape :func:`bluerec.eval.run.intervals_markdown` reads, for one dataset's frozen
    embedder: every method's means (SASRec/BERT4Rec included) beside its intervals against the references."""
    meta = tables["interval_meta"][dataset]
    results = {m: cell for m in tables["methods"] if (cell := tables["retrieval"]["frozen"][m].get(dataset))}
    return {"results": results, "intervals": intervals, "references": meta["references"] or [],
            "interval_settings": meta["interval_settings"] or {}, "n_users": tables["n_users"][dataset]}


def markdown(payload: dict[str, Any]) -> str:
    from bluerec.eval import embedders, qa, transfer
    from bluerec.eval.run import intervals_markdown

    t = payload["tables"]
    lines = [f"# Paper tables ({payload['mode']})", "",
             f"Command: `{payload['command']}` — wall time {payload['seconds'] / 60:.1f} min "
             f"({payload['time']}, {payload['machine']['cpus']} CPUs; the stages' own time, resumed ones included, "
             f"{sum(t['stage_seconds'].values()) / 60:.1f} min; {len(t['stages_resumed'])} stages found done). "
             "Seeded test users per dataset: "
             + ", ".join(f"{d} {n:,}" for d, n in t["n_users"].items()) + ". Trained profilers (warm start, "
             f"BLUE and the RL baselines) on: {', '.join(t['train_on']) or 'none (this run trains nothing)'} "
             "(— elsewhere). SASRec/BERT4Rec are ID-based: "
             "the same numbers under both embedders.", ""]
    for emb in ("frozen", "finetuned"):
        for protocol in ("full", "sampled"):
            lines += [f"## Retrieval, {emb} embedder, {protocol} ranking (NDCG@10 / Recall@10)", "",
                      "| method | " + " | ".join(t["datasets"]) + " |", "|---|" + "---|" * len(t["datasets"])]
            for method in t["methods"]:
                row = [method]
                for d in t["datasets"]:
                    c = t["retrieval"][emb][method].get(d)
                    row.append("—" if not c or protocol not in c else
                               f"{_cell(c, protocol, 'ndcg@10')} / {_cell(c, protocol, 'recall@10')}")
                lines.append("| " + " | ".join(row) + " |")
            lines.append("")
    lines += ["## Paired bootstrap 95% intervals (frozen embedder; method − reference, same users)", ""]
    for d, by_e in t["intervals"].items():
        lines += [f"### {d}", "", intervals_markdown(frozen_interval_summary(t, d, by_e["frozen"])), ""]
    lines += ["## Frozen vs fine-tuned embedder", ""]
    for d, table in t["embedders"].items():
        ft = t["finetune"].get(d) or {}
        lines += [f"### {d} (fine-tuned on {ft.get('pairs', '?')} train pairs of {ft.get('trained_on', '?')} profiles, "
                  f"MNRL {ft.get('loss_before', float('nan')):.3f} → {ft.get('loss_after', float('nan')):.3f})", "",
                  embedders.markdown(table, ["ndcg@10", "recall@10"]), ""]
    if t["transfer"]:
        lines += ["## Cross-domain transfer", "", transfer.markdown(t["transfer"]), ""]
    if t["qa"]:
        lines += ["## Personalized QA (next-item choice accuracy, rating MAE)", "", qa.summary_markdown(t["qa"]), ""]
    lines += ["## Stage wall times (s)", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.0f} |" for k, v in t["stage_seconds"].items()]
    return "\n".join(lines) + "\n"


# --- smoke mode ------------------------------------------------------------------------------------------------

SMOKE_DOMAINS = {"synth-clothing": 11, "synth-beauty": 12}


def smoke_config(work: Path, say: Say = print) -> PaperConfig:
    """Small synthetic "domains" (one seed each), an untrained micro profiler, tiny budgets: every stage runs."""
    from bluerec.data.config import PrepareConfig
    from bluerec.data.dataset import PreparedDataset
    from bluerec.data.prepare import prepare_dataset
    from bluerec.data.synth import SynthConfig, write_synth
    from bluerec.profiler.backends.micro import MicroModelConfig, build_micro_profiler, corpus_for
    from bluerec.workflow import WarmStartRunConfig

    folders = {}
    for name, seed in SMOKE_DOMAINS.items():
        data = work / "data" / name
        if not (data / "manifest.json").exists():
            say(f"smoke: synthesising {name} (seed {seed})")
            synth = write_synth(SynthConfig(n_users=100, n_items=70, n_interests=8, mean_interactions=8,
                                            max_interactions=16, seed=seed), work / "raw" / name)
            prepare_dataset(PrepareConfig(source=synth.source("amazon"), k_core=3, max_history=50), data,
                            progress=lambda m: None)
        folders[name] = data
    model = work / "micro-init"
    if not (model / "config.json").exists():  # one tokenizer over every domain: the transfer profiler reads them all
        ws = load_config(WarmStartRunConfig, CONFIGS / "warmstart" / "beauty_smollm2.yaml")
        corpus = [t for f in folders.values() for t in corpus_for(PreparedDataset(f))]
        build_micro_profiler(corpus, model, vocab_size=1024,
                             model_config=MicroModelConfig(hidden_size=64, intermediate_size=192),
                             prompt_config=ws.prompt)
    profiler = {"backend": "micro", "model": str(model), "dtype": "float32", "device": "cpu"}
    names = list(folders)
    return PaperConfig.model_validate({
        "datasets": names, "datasets_prepared": {k: str(v) for k, v in folders.items()}, "train_on": [names[0]],
        "work": str(work), "max_users": 30, "seed": 0, "num_threads": 1, "max_new_tokens": 16,
        "trained": {"blue": "beauty_smollm2.yaml", "rlpf": "beauty_smollm2_rlpf.yaml",
                    "langptune": "beauty_smollm2_langptune.yaml", "rlaif": "beauty_smollm2_rlaif.yaml"},
        "finetune": {"max_pairs": 64, "max_steps": 4, "batch_size": 16},
        "sasrec": {"max_epochs": 3, "eval_every": 1}, "bert4rec": {"max_epochs": 3, "eval_every": 1},
        "transfer": {"source": names[0], "methods": ["blue"]},
        "qa": {"data_config": None, "dataset": str(folders[names[1]]), "profilers_from": names[0], "max_users": 12,
               "reader": str(model)},
        "cache_dir": None,
        "warmstart_overrides": {"profiler": profiler, "warmstart.max_steps": 40, "warmstart.max_examples": 96,
                                "warmstart.batch_size": 8, "warmstart.learning_rate": 1e-2, "selection.num_users": 8,
                                "selection.max_new_tokens": 16, "choose_target": []},
        "train_overrides": {"profiler.backend": "micro", "profiler.lora.enabled": False, "profiler.device": "cpu",
                            "grpo.max_steps": 1, "grpo.save_steps": 1, "grpo.max_completion_length": 16,
                            "eval.every_steps": 1, "eval.num_users": 8, "max_train_examples": 16},
        "evaluate_overrides": {"intervals": {"references": ["last_item", "history_text", "template", "zero_shot"],
                                             "n_resamples": 200},
                               "protocols": [{"protocol": "full"}, {"protocol": "sampled", "num_negatives": 20,
                                                                    "seed": 0}]},
    })


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", type=Path, default=CONFIGS / "paper" / "default.yaml")
    p.add_argument("--max-users", type=int, default=None, help="seeded test users per dataset (config: 1000)")
    p.add_argument("--datasets", nargs="+", default=None, help="subset of the config's datasets")
    p.add_argument("--train-on", nargs="*", default=None,
                   help="datasets the profilers are trained on (given without names: no training)")
    p.add_argument("--stages", nargs="+", default=None, help=f"of {list(STAGES)}")
    p.add_argument("--grpo-steps", type=int, default=None, help="GRPO steps of every trained method")
    p.add_argument("--num-threads", type=int, default=None)
    p.add_argument("--work", type=Path, default=None, help="work folder (config: runs/paper)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="any config key, dotted, value parsed as YAML (e.g. finetune.max_pairs=500, "
                        "sasrec.max_seconds=300, prepared_root=/data/prepared); repeatable")
    p.add_argument("--smoke", action="store_true", help="synthetic domains, a micro profiler, tiny budgets")
    p.add_argument("--out", type=Path, default=None, help="results JSON (default bench/results/paper_tables.json)")
    args = p.parse_args(argv)
    start = time.perf_counter()
    from rich.console import Console

    console = Console(width=120)
    say: Say = lambda m: console.print(m, highlight=False, markup=False)  # noqa: E731
    if args.smoke:
        work = args.work or ROOT / "runs" / "paper_smoke"
        config = smoke_config(work, say)
        out = args.out or RESULTS / "paper_tables_smoke.json"
    else:
        if not SEQREC.is_dir():
            console.print(f"[yellow]skipped: {SEQREC} is absent (the shared real data sits beside the repository)[/]")
            return 0
        import yaml

        over: dict[str, Any] = {}
        for item in args.overrides:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
            over[key] = yaml.safe_load(value)
        if args.work:
            over["work"] = str(args.work)
        config = load_config(PaperConfig, args.config, over)
        out = args.out or RESULTS / "paper_tables.json"
    update: dict[str, Any] = {}
    if args.max_users:
        update["max_users"] = args.max_users
    if args.datasets:
        update["datasets"] = args.datasets
        if args.train_on is None:  # train only where the chosen datasets are
            update["train_on"] = [d for d in config.train_on if d in args.datasets]
    if args.train_on is not None:
        update["train_on"] = args.train_on
    if args.stages:
        update["stages"] = args.stages
    if args.grpo_steps:
        update["grpo_steps"] = args.grpo_steps
    if args.num_threads:
        update["num_threads"] = args.num_threads
    if update:
        config = PaperConfig.model_validate({**config.model_dump(), **update})
    if config.num_threads:
        import torch

        torch.set_num_threads(config.num_threads)
    tables = Paper(config, say).run()
    payload = {"benchmark": "paper_tables", "mode": "smoke (synthetic; numbers mean nothing)" if args.smoke else "real",
               "command": "python bench/paper_tables.py " + " ".join(sys.argv[1:] if argv is None else argv),
               "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seconds": round(time.perf_counter() - start, 1),
               "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "platform": platform.platform()},
               "config": json.loads(config.model_dump_json()), "tables": tables}
    write_json_atomic(out, payload)
    write_text_atomic(out.with_suffix(".md"), markdown(payload))
    console.print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
