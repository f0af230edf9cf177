"""Benchmark (not a test): BLUE with SmolLM2-135M-Instruct on amazon2014-beauty, beside every baseline — a thin
composition of the library's workflow, each stage the same call as a CLI command:

    .venv/bin/python bench/blue_beauty.py --max-users 2000                 # the real run (hours on 2 cores)
    .venv/bin/python bench/blue_beauty.py --variants both                   # one ablation at a time also works
    .venv/bin/python bench/blue_beauty.py --variants both context           # BLUE with / without other users' context
    .venv/bin/python bench/blue_beauty.py --smoke                           # the plumbing in a few minutes

Stages (each resumes: a rerun reuses what is finished and continues what is not):

1. warm start — ``bluerec warmstart -c configs/warmstart/beauty_smollm2.yaml`` (:func:`bluerec.workflow.run_warmstart`):
   every candidate target warm-started, the best on **validation** users kept as ``<work>/warmstart/model``; a
   variant whose prompt differs (``context``: the collaborative section "Often bought next by other shoppers…")
   gets its own warm start with that prompt, ``<work>/warmstart_<variant>/model``, and its own zero-shot and
   warm-start rows (``zero_shot_<variant>``, ``warmstart_<variant>``), from ``configs/warmstart/beauty_smollm2_<variant>.yaml``
   when that file exists (the context variant's adds a target that copies the section);
2. GRPO per ablation — ``bluerec train -c configs/train/beauty_smollm2[_<variant>].yaml --resume``
   (:func:`bluerec.train.train_blue`) from that warm start; ``eval.select_best`` keeps the checkpoint with the best
   validation NDCG@10 as ``<work>/grpo/<variant>/best`` (steps > 0: every row is "after RL");
3. evaluation — ``bluerec evaluate --max-users N`` (:class:`bluerec.eval.run.EvaluationRun`): greedy test profiles of
   the zero-shot SmolLM2, the warm start and every ``best/``, and every baseline, all on the same seeded test
   users, full ranking and 100 sampled candidates, with paired bootstrap 95% intervals against last item, raw
   history text, template, the zero-shot profile and the warm start.

After a run, every profile method's test profiles are kept in ``bench/results/blue_beauty_profiles/`` (gzipped JSONL
and ``provenance.json``: the warm-start choice, each GRPO run's best step and validation curve). The models are not
kept, so a later invocation on another machine adds rows with ``--reuse-profiles``: the stored methods are evaluated
from their profiles on the same users, and only what the new rows need is trained and generated::

    .venv/bin/python bench/blue_beauty.py --variants both text --reuse-profiles   # warm start again + GRPO text only

The configs are the YAML files themselves; this script only points them at one dataset and one work folder
(``dataset``, ``profiler.model`` = the chosen warm start, ``output_dir``). The test split is read only in stage 3.
``--smoke`` runs the same composition on a small synthetic dataset with a micro profiler and a few steps (numbers
from it mean nothing). Writes ``bench/results/blue_beauty.json`` and ``.md`` (``--out``).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402

from bluerec.config import load_config  # noqa: E402
from bluerec.eval.run import EvaluateConfig  # noqa: E402
from bluerec.io import write_json_atomic  # noqa: E402
from bluerec.profiler.config import ProfilerConfig  # noqa: E402
from bluerec.profiler.prompts import PromptConfig  # noqa: E402
from bluerec.train.config import BlueTrainConfig  # noqa: E402
from bluerec.workflow import WarmStartRunConfig  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "seqrec_benchmark_amazon"
SUBSET = "amazon2014-beauty"
RESULTS = ROOT / "bench" / "results"
CONFIGS = ROOT / "configs"
# Ablation → its YAML (each but "both" is a few lines extending beauty_smollm2.yaml with ``base:``).
VARIANTS = {"both": "beauty_smollm2.yaml", "embedding": "beauty_smollm2_embedding.yaml",
            "text": "beauty_smollm2_text.yaml", "one_way": "beauty_smollm2_one_way.yaml",
            "context": "beauty_smollm2_context.yaml", "newest": "beauty_smollm2_newest.yaml",
            "newest_context": "beauty_smollm2_newest_context.yaml",
            "newest_context_wide": "beauty_smollm2_newest_context_wide.yaml",
            "newest_context_wide_lr3e-4": "beauty_smollm2_newest_context_wide_lr3e-4.yaml",
            "newest_context_wide_popneg": "beauty_smollm2_newest_context_wide_popneg.yaml",
            "newest_context_wide_popneg_mrr": "beauty_smollm2_newest_context_wide_popneg_mrr.yaml",
            "newest_context_wide_popneg_gdpo": "beauty_smollm2_newest_context_wide_popneg_gdpo.yaml",
            "newest_context_wide_popneg_t07": "beauty_smollm2_newest_context_wide_popneg_t07.yaml",
            "newest_context_t07_dcg": "beauty_smollm2_newest_context_t07_dcg.yaml",
            "newest_context_t07_ndcg50": "beauty_smollm2_newest_context_t07_ndcg50.yaml",
            "newest_context_t07_ndcg50_only": "beauty_smollm2_newest_context_t07_ndcg50_only.yaml",
            "newest_context_t07_histneg": "beauty_smollm2_newest_context_t07_histneg.yaml",
            "newest_context_long_t07_histneg": "beauty_smollm2_newest_context_long_t07_histneg.yaml"}
# A variant that trains from another variant's warm start (same prompt, other GRPO settings) names it here, so that
# it reuses that warm start, its YAML and its rows whether or not that variant is run too.
WARMSTART_OF = {"newest_context_wide": "newest_context", "newest_context_wide_lr3e-4": "newest_context",
                "newest_context_wide_popneg": "newest_context", "newest_context_wide_popneg_mrr": "newest_context",
                "newest_context_wide_popneg_gdpo": "newest_context",
                "newest_context_wide_popneg_t07": "newest_context", "newest_context_t07_dcg": "newest_context",
                "newest_context_t07_ndcg50": "newest_context", "newest_context_t07_ndcg50_only": "newest_context",
                "newest_context_t07_histneg": "newest_context",
                "newest_context_long_t07_histneg": "newest_context_long"}
REFERENCES = ["last_item", "history_text", "template", "zero_shot", "warmstart"]
console = Console(width=120)
Say = Callable[[str], None]


@dataclass
class Plan:
    """Every stage's typed config, pointed at one dataset and one work folder.

    ``warmstarts`` maps a prompt's tag to the warm start trained with that prompt: ``""`` for the warm-start
    config's own prompt (``<work>/warmstart``), a variant's name for a variant whose prompt differs (for example
    ``context``, with the collaborative section: ``<work>/warmstart_context``). ``prompts`` gives each profile row
    (``zero_shot[_tag]``, ``warmstart[_tag]``, ``blue_<variant>``) the prompt its profiler reads."""

    dataset: Path
    work: Path
    warmstarts: dict[str, WarmStartRunConfig]
    train: dict[str, BlueTrainConfig]
    evaluate: EvaluateConfig
    zero_shot: ProfilerConfig
    prompts: dict[str, PromptConfig]
    budgets: dict[str, int]
    dtypes: dict[str, str] = field(default_factory=dict)  # row → the dtype its profiler generates in (default float32)
    warmstart_of: dict[str, str] = field(default_factory=dict)  # GRPO variant → the tag of the warm start it starts from
    generation_batch_size: int = 32
    notes: list[str] = field(default_factory=list)

    @property
    def warmstart(self) -> WarmStartRunConfig:
        """The warm start of the warm-start config's own prompt."""
        return self.warmstarts[""]


def _suffix(tag: str) -> str:
    return f"_{tag}" if tag else ""


def _prompt_tag(warmstarts: dict[str, WarmStartRunConfig], prompt: PromptConfig) -> str | None:
    """The tag of the warm start trained on ``prompt`` (None: none yet)."""
    return next((t for t, ws in warmstarts.items() if ws.prompt == prompt), None)


def make_plan(dataset: Path, work: Path, *, variants: list[str], max_users: int | None,
              warmstart_config: Path = CONFIGS / "warmstart" / "beauty_smollm2.yaml",
              train_dir: Path = CONFIGS / "train", warmstart_overrides: dict[str, Any] | None = None,
              train_overrides: dict[str, Any] | None = None, evaluate_overrides: dict[str, Any] | None = None,
              cache_dir: Path | None = ROOT / ".cache" / "embeddings") -> Plan:
    """Load the YAML configs with the run's paths as overrides (dotted keys, as ``--output-dir`` would).

    GRPO must start from a warm start trained on its own prompts: a variant whose ``prompt`` differs from the
    warm-start config's gets a warm start of its own (the same config with that prompt)."""
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; allowed: {list(VARIANTS)}")

    def warm_config(tag: str, prompt: PromptConfig | None = None) -> WarmStartRunConfig:
        over = {"dataset": str(dataset), "output_dir": str(work / f"warmstart{_suffix(tag)}"),
                "item_cache_dir": str(cache_dir) if cache_dir else None, **(warmstart_overrides or {})}
        # A variant's own warm-start YAML (e.g. beauty_smollm2_context.yaml: targets that copy the context section)
        # when there is one, else the main one; either way with the variant's prompt, so the two always agree.
        own = warmstart_config.with_name(f"{warmstart_config.stem}{_suffix(tag)}.yaml")
        if prompt is not None:  # a longer prompt (a context section) keeps its SFT pairs
            over["prompt"] = prompt.model_dump(mode="json")
            over["warmstart.max_prompt_tokens"] = max(prompt.max_prompt_tokens,
                                                      warmstarts[""].warmstart.max_prompt_tokens)
        return load_config(WarmStartRunConfig, own if own.exists() else warmstart_config, over)

    warmstarts = {"": warm_config("")}
    prompts = {"zero_shot": warmstarts[""].prompt, "warmstart": warmstarts[""].prompt}
    tags = {"zero_shot": "", "warmstart": ""}  # row → the tag of the warm start of its prompt
    train = {}
    for variant in variants:
        cfg = load_config(BlueTrainConfig, train_dir / VARIANTS[variant], {
            "dataset": str(dataset), "output_dir": str(work / "grpo" / variant),
            "item_cache_dir": str(cache_dir) if cache_dir else None, **(train_overrides or {})})
        # WARMSTART_OF first: two warm starts may share a prompt (newest_context_long is newest_context trained longer)
        tag = WARMSTART_OF.get(variant)
        if tag is None:
            tag = _prompt_tag(warmstarts, cfg.prompt)
            tag = variant if tag is None else tag
        if tag in warmstarts:
            if warmstarts[tag].prompt != cfg.prompt:  # a shared warm start of another prompt: GRPO would start off-prompt
                sharers = sorted({tag, *(v for v, t in WARMSTART_OF.items() if t == tag)})
                raise SystemExit(f"{train_dir / VARIANTS[variant]}: its prompt differs from that of the warm start "
                                 f"{tag!r}, which WARMSTART_OF shares between {sharers}")
        else:
            warmstarts[tag] = warm_config(tag, cfg.prompt)
            prompts[f"zero_shot_{tag}"] = prompts[f"warmstart_{tag}"] = cfg.prompt
            tags[f"zero_shot_{tag}"] = tags[f"warmstart_{tag}"] = tag
        if not cfg.eval.select_best:
            raise SystemExit(f"{train_dir / VARIANTS[variant]}: set eval.select_best: true (the test rows use best/)")
        train[variant] = cfg.model_copy(update={"profiler": cfg.profiler.model_copy(update={
            "model": str(work / f"warmstart{_suffix(tag)}" / "model")})})
        prompts[f"blue_{variant}"] = cfg.prompt
        tags[f"blue_{variant}"] = tag
    ws = warmstarts[""]
    ev = EvaluateConfig.model_validate({
        "dataset": str(dataset), "split": "test",
        "profiles": {name: str(work / "profiles" / f"{name}.test.jsonl") for name in prompts}, "max_users": max_users,
        "cache_dir": str(cache_dir) if cache_dir else None, "embedder": ws.embedder.model_dump(),
        "protocols": [{"protocol": "full"}, {"protocol": "sampled", "num_negatives": 99, "seed": 0}],
        "intervals": {"references": REFERENCES}, **(evaluate_overrides or {})})
    zero_shot = ws.profiler.model_copy(update={"lora": ws.profiler.lora.model_copy(update={"enabled": False})})
    return Plan(dataset=dataset, work=work, warmstarts=warmstarts, train=train, evaluate=ev, zero_shot=zero_shot,
                prompts=prompts, budgets={n: warmstarts[t].selection.max_new_tokens for n, t in tags.items()},
                warmstart_of={v: tags[f"blue_{v}"] for v in train},
                dtypes={**{n: warmstarts[t].profiler.dtype for n, t in tags.items() if not n.startswith("blue_")},
                        **{f"blue_{v}": c.profiler.dtype for v, c in train.items()}},
                generation_batch_size=ws.selection.batch_size)


# (config section, dotted for a nested one; key; the value every run before the key existed had in effect)
ADDED_LATER = [("grpo", "multi_objective_aggregation", "sum_then_normalize"),
               ("rewards.infonce", "history_negatives", 0), ("rewards.infonce", "history_negatives_skip_newest", 0)]


def train_digest(cfg: BlueTrainConfig) -> str:
    """What a GRPO row depends on, as a short hash: the training config less its machine-specific paths and thread
    count, so that stored profiles are reused only for the config that made them."""
    import hashlib
    import json

    data = cfg.model_dump(mode="json", exclude={"dataset", "output_dir", "item_cache_dir", "num_threads",
                                                 "show_progress"})
    data["profiler"].pop("model", None)  # the warm start's folder, which differs per work folder
    # Settings added after rows were stored: at the value that reproduces those runs they leave the digest as it was.
    for section, key, earlier in ADDED_LATER:
        node = data
        for part in section.split("."):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict) and key in node and node[key] == earlier:
            del node[key]
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def warmstart_digest(cfg: WarmStartRunConfig) -> str:
    """What a warm-start row depends on, as a short hash: the warm-start config less its machine-specific paths and
    its target choice (``choose_target``, ``warmstart.target``: a choice made on validation users and recorded as
    ``chosen``), so that stored warm-start profiles are reused only for the settings that made them."""
    import hashlib
    import json

    data = cfg.model_dump(mode="json", exclude={"dataset", "output_dir", "item_cache_dir", "num_threads",
                                                 "overwrite", "choose_target"})
    data["warmstart"].pop("target", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


# Every row of every run before budgets were recorded per row was generated with this one budget.
LEGACY_MAX_NEW_TOKENS = 48


def stale_rows(plan: Plan, stored: dict[str, Path], prior: dict[str, Any]) -> dict[str, str]:
    """The stored rows that ``plan`` must make again, each with the reason: profiles of another generation budget,
    warm-start rows of another warm-start config (and the BLUE rows trained from that warm start), BLUE rows of
    another training config. ``prior`` is the stored ``provenance.json``."""
    stale: dict[str, str] = {}
    for name in stored:
        made_at = prior.get("profiles", {}).get(name, {}).get("max_new_tokens", LEGACY_MAX_NEW_TOKENS)
        if made_at != plan.budgets[name]:
            stale[name] = f"were generated with {made_at} new tokens, this run's budget is {plan.budgets[name]}"
    remade_warm = set()
    for tag, ws in plan.warmstarts.items():
        name = f"warmstart{_suffix(tag)}"
        made_with = prior.get("warmstart", {}).get(tag, {}).get("config_digest")
        if name in stored and made_with != warmstart_digest(ws):
            stale.setdefault(name, f"came from another warm-start config ({made_with or 'not recorded'} ≠ "
                                   f"{warmstart_digest(ws)})")
        if name in stale or name not in stored:
            remade_warm.add(tag)
    for variant, cfg in plan.train.items():
        name = f"blue_{variant}"
        if name not in stored:
            continue
        made_with = prior.get("grpo", {}).get(variant, {}).get("config_digest")
        if made_with != train_digest(cfg):
            stale.setdefault(name, f"came from another training config ({made_with or 'not recorded'} ≠ "
                                   f"{train_digest(cfg)})")
        elif plan.warmstart_of[variant] in remade_warm:
            stale.setdefault(name, "were trained from a warm start that this run makes again")
    return stale


def _fingerprint(folder: Path) -> str:
    """Which model this is: its folder and the weights' modification time (a retrained model differs)."""
    weights = folder / "model.safetensors"
    return f"{folder}:{weights.stat().st_mtime_ns if weights.exists() else 0}"


def fresh_profiles(path: Path, profiler: Path | str, max_new_tokens: int | None = None,
                   dtype: str = "float32") -> Path:
    """``path``, emptied when its profiles came from another model, another generation budget or another dtype
    (resume only what this model wrote with this budget in this precision)."""
    source = path.with_name(path.name + ".source")
    mark = _fingerprint(Path(profiler)) if Path(profiler).exists() else str(profiler)
    if max_new_tokens is not None:
        mark += f"|max_new_tokens={max_new_tokens}"
    if dtype != "float32":  # float32 rows keep the marks they were written with
        mark += f"|dtype={dtype}"
    if path.exists() and (not source.exists() or source.read_text() != mark):
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(mark)
    return path


def stored_profiles(folder: Path | None, names: list[str], users: list[str]) -> dict[str, Path]:
    """The profile files of ``folder`` (``<name>.test.jsonl.gz``, as :func:`export_profiles` writes them) that hold
    a profile for every user of ``users``: those methods need neither generation nor the training behind them."""
    import gzip
    import json

    found: dict[str, Path] = {}
    for name in names:
        path = folder / f"{name}.test.jsonl.gz" if folder is not None else None
        if path is None or not path.exists():
            continue
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            have = {str(json.loads(line)["user_id"]) for line in fh if line.strip()}
        if set(users) <= have:
            found[name] = path
    return found


def export_profiles(plan: Plan, folder: Path, record: dict[str, Any]) -> None:
    """Keep every profile method's test profiles (gzipped JSONL) and what made them (``provenance.json``: warm
    starts, GRPO runs), so that a later invocation — another ablation, on a machine that no longer has the models —
    evaluates them beside its own rows with ``--reuse-profiles`` instead of training and generating them again."""
    import gzip
    import shutil

    from bluerec.io import atomic_path, write_json_atomic

    for name, src in plan.evaluate.profiles.items():
        # mtime 0 and no file name in the header (it would be the random temp name): the same bytes every run
        with atomic_path(folder / f"{name}.test.jsonl.gz") as tmp, open(src, "rb") as fin, open(tmp, "wb") as raw, \
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as fout:
            shutil.copyfileobj(fin, fout)
    previous = _read_json(folder / "provenance.json")
    # other top-level keys (e.g. ``earlier_runs``: the records of rows a later run replaced) are kept as they are
    merged = {**previous, **{key: {**previous.get(key, {}), **record.get(key, {})}
                             for key in ("warmstart", "grpo", "profiles")}}
    write_json_atomic(folder / "provenance.json", merged)


def _read_json(path: Path) -> dict[str, Any]:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def without_variants(plan: Plan, variants: list[str]) -> Plan:
    """``plan`` less the GRPO runs of ``variants`` and their ``blue_<variant>`` rows (their warm starts and zero-shot
    rows stay): the warm-start stages of a run whose RL is left for later."""
    return _less_rows(plan, {f"blue_{v}" for v in variants},
                      train={v: c for v, c in plan.train.items() if v not in variants})


def _less_rows(plan: Plan, names: Collection[str], **changes: Any) -> Plan:
    """``plan`` without the profile rows ``names`` (prompts and evaluated profiles), with ``changes`` applied."""
    import dataclasses

    ev = plan.evaluate.model_copy(update={"profiles": {n: p for n, p in plan.evaluate.profiles.items()
                                                       if n not in names}})
    return dataclasses.replace(plan, prompts={n: p for n, p in plan.prompts.items() if n not in names}, evaluate=ev,
                               **changes)


def without_rows(plan: Plan, rows: list[str]) -> Plan:
    """``plan`` less the profile ``rows`` named (not generated, not evaluated): e.g. a variant's zero-shot row, an
    untrained model at that variant's prompt, ~20 min for 2,000 users at a 64-token budget. ``blue_`` rows cannot be
    left out this way (use fewer ``--variants``)."""
    unknown = [r for r in rows if r not in plan.prompts]
    if unknown:
        raise SystemExit(f"--skip-rows: unknown row(s) {unknown}; this plan's rows: {list(plan.prompts)}")
    trained = [r for r in rows if r.startswith("blue_")]
    if trained:
        raise SystemExit(f"--skip-rows: {trained} are GRPO rows; leave their variant out of --variants instead")
    return _less_rows(plan, set(rows))


def run_plan(plan: Plan, say: Say = print, embedder: Any = None, reuse: Path | None = None,
             export: Path | None = None, grpo_runs: bool = True) -> dict[str, Any]:
    """The three stages of the module docstring; returns what goes into the results JSON.

    ``reuse``: a folder of :func:`export_profiles`; a method whose stored profiles cover the test users is not
    generated again, and the warm start or GRPO run only it needed is skipped (its record comes from the folder's
    ``provenance.json``). ``export``: where to keep this run's profiles and records for such reuse.
    ``grpo_runs=False``: no GRPO; a variant whose BLUE profiles are not stored loses its ``blue_`` row
    (:func:`without_variants`), its warm start and zero-shot rows are made and evaluated.
    ``warmstart`` in the result maps each warm start's prompt tag (``""`` for the config's own prompt) to its record."""
    import gzip
    import shutil

    from bluerec.data.dataset import PreparedDataset
    from bluerec.eval.run import EvaluationRun, select_examples
    from bluerec.pipeline import StageTimer, example_users, generate_profile_file, train_printer
    from bluerec.train.select import read_best
    from bluerec.train.trainer import train_blue
    from bluerec.workflow import run_warmstart

    lap = StageTimer(lambda stage, s: say(f"{stage} done in {s:.0f}s"))
    timings = lap.timings
    ev = plan.evaluate
    ds = PreparedDataset(plan.dataset)
    users = [ex.user_id for ex in select_examples(ds, "test", ev.max_users, ev.seed)]
    stored = stored_profiles(reuse, list(plan.prompts), users)
    prior = _read_json(reuse / "provenance.json") if reuse is not None else {}
    for name, why in stale_rows(plan, stored, prior).items():
        say(f"stored {name} profiles {why}: making them again")
        del stored[name]
    if stored:
        say(f"reusing stored test profiles of {', '.join(stored)} ({reuse})")
    to_train = [v for v in plan.train if f"blue_{v}" not in stored]
    if not grpo_runs and to_train:
        say(f"no GRPO this run: leaving out {', '.join(f'blue_{v}' for v in to_train)}")
        plan, to_train = without_variants(plan, to_train), []
        ev = plan.evaluate
    warm_needed = {plan.warmstart_of[v] for v in to_train} | {
        t for t in plan.warmstarts if f"warmstart{_suffix(t)}" not in stored}

    warm: dict[str, Any] = {}
    for tag, ws in plan.warmstarts.items():
        if tag not in warm_needed:
            warm[tag] = prior.get("warmstart", {}).get(tag, {"model": str(Path(ws.output_dir) / "model")})
            continue
        say(f"1/3 warm start{' (' + tag + ' prompt)' if tag else ''} (bluerec warmstart): candidate targets, "
            "chosen on validation users")
        warm[tag] = {**run_warmstart(ws, say=lambda m: say("    " + m)), "config_digest": warmstart_digest(ws)}
    lap("warm start")

    grpo: dict[str, Any] = {}
    for i, (variant, cfg) in enumerate(plan.train.items(), 1):
        out = Path(cfg.output_dir)
        if variant not in to_train:
            say(f"2/3 GRPO {variant} ({i}/{len(plan.train)}): its test profiles are stored, no training")
            grpo[variant] = prior.get("grpo", {}).get(variant, {})
            continue
        best = read_best(out)
        if best is not None and (out / "final" / "config.json").exists():
            say(f"2/3 GRPO {variant} ({i}/{len(plan.train)}): done earlier, best step {best['step']}")
        else:
            say(f"2/3 GRPO {variant} ({i}/{len(plan.train)}): bluerec train --resume")
            result = train_blue(cfg.model_copy(update={"show_progress": False}), resume=True, embedder=embedder,
                                progress=train_printer(lambda m, v=variant: say(f"    [{v}] {m}"), every=10))
            best = result.best
        if best is None:
            raise SystemExit(f"{out}: no validation after a GRPO step chose a best/ checkpoint")
        # each validation row names its primary metric (the validation evaluator's; eval/ndcg@10 by default)
        curve = [{"step": r["step"], **{k.removeprefix("eval/"): v for k, v in r.items()
                                        if k == r.get("primary_metric")}}
                 for r in _read_rows(out / "metrics.jsonl") if r.get("kind") == "eval"]
        grpo[variant] = {"best": best, "validation": curve, "profiler": str(out / best["path"]),
                         "config_digest": train_digest(cfg)}
    lap("grpo")

    say("3/3 evaluate (bluerec evaluate): every method on the same seeded test users")
    models: dict[str, Path | str] = {}
    for tag, w in warm.items():
        models[f"zero_shot{_suffix(tag)}"] = plan.zero_shot.model
        models[f"warmstart{_suffix(tag)}"] = Path(w["model"])
    models.update({f"blue_{v}": Path(g["profiler"]) for v, g in grpo.items() if "profiler" in g})
    run = EvaluationRun(ev, embedder=embedder, say=lambda m: say("    " + m))
    assert [ex.user_id for ex in run.examples] == users  # the sample the stored profiles were checked against
    made: dict[str, Any] = {}
    for name in plan.prompts:
        path = Path(ev.profiles[name])
        if name in stored:
            path.parent.mkdir(parents=True, exist_ok=True)
            with gzip.open(stored[name], "rb") as fin, open(path, "wb") as fout:
                shutil.copyfileobj(fin, fout)
            path.with_name(path.name + ".source").write_text(f"stored:{stored[name]}")
            made[name] = prior.get("profiles", {}).get(name, {"stored": str(stored[name])})
            continue
        model = models[name]
        t = time.perf_counter()
        profiler = plan.zero_shot.model_copy(update={"model": str(model),
                                                     "dtype": plan.dtypes.get(name, plan.zero_shot.dtype)})
        generate_profile_file(profiler, ds, "test", fresh_profiles(path, model, plan.budgets[name], profiler.dtype),
                              plan.prompts[name], plan.budgets[name], user_ids=users,
                              batch_size=plan.generation_batch_size)
        made[name] = {"model": str(model), "users": len(users), "max_new_tokens": plan.budgets[name],
                      **({"dtype": profiler.dtype} if profiler.dtype != "float32" else {}),
                      "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        say(f"    profiles {name}: {len(users)} users in {time.perf_counter() - t:.0f}s")
    summary = run.run_all(plan.work / "eval")
    examples = example_users(run, list(plan.prompts), n=3, seed=ev.seed)  # profiles before and after BLUE
    lap("evaluate")
    if export is not None:
        export_profiles(plan, export, {"warmstart": warm, "grpo": grpo, "profiles": made})
    return {"summary": summary, "examples": examples, "reused": sorted(stored),
            "warmstart": warm, "grpo": grpo, "timings_s": timings}


def _read_rows(path: Path) -> list[dict[str, Any]]:
    from bluerec.io import read_jsonl

    return read_jsonl(path) if path.exists() else []


# --- smoke mode: the same composition on a small synthetic dataset with a micro profiler ----------------------

def smoke_setup(work: Path, say: Say = print) -> tuple[Path, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A small synthetic prepared dataset and an untrained micro profiler; the overrides that shrink every stage."""
    from bluerec.data.config import PrepareConfig
    from bluerec.data.dataset import PreparedDataset
    from bluerec.data.prepare import prepare_dataset
    from bluerec.data.synth import SynthConfig, write_synth
    from bluerec.profiler.backends.micro import MicroModelConfig, build_micro_profiler, corpus_for

    data = work / "data"
    if not (data / "manifest.json").exists():
        say("smoke: synthesising and preparing a small dataset")
        synth = write_synth(SynthConfig(n_users=120, n_items=80, n_interests=8, mean_interactions=8,
                                        max_interactions=16, seed=0), work / "raw")
        prepare_dataset(PrepareConfig(source=synth.source("amazon"), k_core=3, max_history=50), data,
                        progress=lambda m: None)
    model = work / "micro-init"
    if not (model / "config.json").exists():
        ws = load_config(WarmStartRunConfig, CONFIGS / "warmstart" / "beauty_smollm2.yaml")
        build_micro_profiler(corpus_for(PreparedDataset(data)), model, vocab_size=1024,
                             model_config=MicroModelConfig(hidden_size=64, intermediate_size=192),
                             prompt_config=ws.prompt)
    profiler = {"profiler": {"backend": "micro", "model": str(model), "dtype": "float32", "device": "cpu"}}
    ws_over = {**profiler, "warmstart.max_steps": 4, "warmstart.max_examples": 64, "warmstart.batch_size": 8,
               "warmstart.learning_rate": 3e-3, "selection.num_users": 16, "selection.max_new_tokens": 16,
               "num_threads": 1}
    train_over = {"profiler.backend": "micro", "profiler.lora.enabled": False, "profiler.device": "cpu",
                  "grpo.max_steps": 2, "grpo.save_steps": 1, "grpo.max_completion_length": 16,
                  "eval.every_steps": 1, "eval.num_users": 8, "max_train_examples": 32, "num_threads": 1}
    ev_over = {"max_users": 40, "intervals": {"references": REFERENCES, "n_resamples": 200},
               "protocols": [{"protocol": "full"}, {"protocol": "sampled", "num_negatives": 20, "seed": 0}]}
    return data, ws_over, train_over, ev_over


def markdown(payload: dict[str, Any]) -> str:
    from bluerec.eval.run import intervals_markdown, markdown_table

    s = payload["summary"]
    reused = payload.get("reused_profiles") or []
    note = (f"\n\nRows {', '.join(reused)}: test profiles stored by an earlier run ({payload['profiles_dir']}), "
            "evaluated here on the same users.\n" if reused else "\n")
    return (f"**{payload['subset']}**, {s['n_users']:,} test users, {s['n_items']:,} items — `{payload['command']}` "
            f"({payload['seconds'] / 60:.0f} min)\n\n" + markdown_table(s["results"]) + note
            + intervals_markdown(s) + examples_markdown(payload.get("examples") or []))


def examples_markdown(examples: list[dict[str, Any]]) -> str:
    """Three seeded test users: history, the true next item, and each profile method's profile with the rank it
    gives the next item (full ranking)."""
    lines = ["", "**Example users** (seeded; history oldest first, last 8)", ""] if examples else []
    for user in examples:
        lines += [f"*user {user['user_id']}* — history: " + "; ".join(user["history"]), "",
                  f"next item: **{user['next_item']}**", ""]
        lines += [f"- {m} (rank {info['rank'] + 1}): {info['profile']}" for m, info in user["methods"].items()]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--max-users", type=int, default=2000, help="seeded sample of test users (0 = all)")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), help=f"ablations to run, of {list(VARIANTS)}")
    p.add_argument("--warmstart-config", type=Path, default=CONFIGS / "warmstart" / "beauty_smollm2.yaml")
    p.add_argument("--train-dir", type=Path, default=CONFIGS / "train", help="folder of the beauty_smollm2*.yaml")
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "bench_blue_beauty")
    p.add_argument("--data-root", type=Path, default=ROOT / "data" / "prepared")
    p.add_argument("--cache-dir", type=Path, default=ROOT / ".cache" / "embeddings")
    p.add_argument("--num-threads", type=int, default=None,
                   help="torch threads of every stage (default: the configs' num_threads); 1 on a busy machine, where "
                        "two threads competing with other processes make each step several times slower")
    p.add_argument("--warmstart-target", default=None,
                   help="warm-start this one target instead of the config's choose_target candidates (a choice made "
                        "on validation users by an earlier run, to save its ~15 min per extra candidate)")
    p.add_argument("--profiles-dir", type=Path, default=RESULTS / "blue_beauty_profiles",
                   help="where every profile method's test profiles are kept after a run (gzipped JSONL + "
                        "provenance.json), for --reuse-profiles")
    p.add_argument("--reuse-profiles", action="store_true",
                   help="methods whose profiles --profiles-dir already holds for the test users are not generated "
                        "again, nor trained (e.g. add one ablation to an earlier run's rows on another machine)")
    p.add_argument("--warmstarts-only", action="store_true",
                   help="stop before GRPO: the variants' warm starts and their zero-shot and warm-start rows, beside "
                        "the stored rows (a long run split across sessions; add the BLUE rows later with "
                        "--reuse-profiles)")
    p.add_argument("--skip-rows", nargs="+", default=[],
                   help="profile rows not to generate or evaluate this run, e.g. zero_shot_newest_context (an "
                        "untrained model at a variant's prompt; ~20 min for 2,000 users)")
    p.add_argument("--smoke", action="store_true", help="a small synthetic dataset, a micro profiler, a few steps")
    p.add_argument("--out", type=Path, default=RESULTS / "blue_beauty.json")
    args = p.parse_args(argv)
    start = time.perf_counter()
    say: Say = lambda m: console.print(m, highlight=False, markup=False)  # noqa: E731
    if args.smoke:
        args.work = args.work.with_name(args.work.name + "_smoke")
        if args.profiles_dir == RESULTS / "blue_beauty_profiles":
            args.profiles_dir = args.work / "stored_profiles"
        dataset, ws_over, train_over, ev_over = smoke_setup(args.work, say)
        subset = "synthetic (smoke)"
    else:
        if not SHARED.is_dir():
            console.print(f"[yellow]skipped: {SHARED} is absent (the shared real data sits beside the repository)[/]")
            return 0
        from baselines import prepared  # bench/baselines.py: the same prepared dataset and protocol

        dataset, ws_over, train_over, ev_over = prepared(SUBSET, args.data_root).root, {}, {}, {}
        subset = SUBSET
    if args.max_users and not args.smoke:
        ev_over["max_users"] = args.max_users
    if args.warmstart_target:
        ws_over.update({"choose_target": [], "warmstart.target": args.warmstart_target})
    if args.num_threads:
        ws_over["num_threads"] = train_over["num_threads"] = args.num_threads
    plan = make_plan(dataset, args.work, variants=args.variants, max_users=args.max_users or None,
                     warmstart_config=args.warmstart_config, train_dir=args.train_dir, warmstart_overrides=ws_over,
                     train_overrides=train_over, evaluate_overrides=ev_over, cache_dir=args.cache_dir)
    if args.skip_rows:
        plan = without_rows(plan, args.skip_rows)
    if args.num_threads:
        import torch

        torch.set_num_threads(args.num_threads)  # the evaluation stage's generation
    out = run_plan(plan, say, reuse=args.profiles_dir if args.reuse_profiles else None, export=args.profiles_dir,
                   grpo_runs=not args.warmstarts_only)
    from bluerec.eval.evaluator import print_summary
    from bluerec.io import write_text_atomic

    summary = out["summary"]
    print_summary({m: {f"{p} {k}": v for p, metrics in r.items() for k, v in metrics.items()
                       if k in ("ndcg@10", "recall@10")} for m, r in summary["results"].items()},
                  title=f"{subset}: test users", console=console)
    payload = {
        "benchmark": "blue_beauty", "command": "python bench/blue_beauty.py " + " ".join(argv or sys.argv[1:]),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seconds": round(time.perf_counter() - start, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "subset": subset, "configs": {"warmstart": str(args.warmstart_config),
                                      "train": {v: str(args.train_dir / VARIANTS[v]) for v in args.variants}},
        "summary": summary, "warmstart": out["warmstart"], "grpo": out["grpo"], "timings_s": out["timings_s"],
        "reused_profiles": out["reused"], "profiles_dir": str(args.profiles_dir), "examples": out["examples"],
    }
    write_json_atomic(args.out, payload)
    write_text_atomic(args.out.with_suffix(".md"), markdown(payload))
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
