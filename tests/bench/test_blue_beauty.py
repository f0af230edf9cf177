"""bench/blue_beauty.py is a thin composition of the library's workflow: the YAML configs pointed at one dataset and
one work folder, then warm start → GRPO with the best validation checkpoint → evaluation on the same test users."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(ROOT / "bench"))
    return _load("blue_beauty_bench", ROOT / "bench" / "blue_beauty.py")


@pytest.fixture(scope="module")
def fixtures():
    return _load("_train_fixtures_bench", ROOT / "tests" / "train" / "conftest.py")


def test_plan_points_every_stage_at_one_dataset_and_work_folder(bench, tmp_path):
    data, work = tmp_path / "data", tmp_path / "work"
    plan = bench.make_plan(data, work, variants=list(bench.VARIANTS), max_users=2000)
    assert plan.warmstart.dataset == data and plan.warmstart.output_dir == work / "warmstart"
    assert plan.warmstart.profiler.model == "smollm2-135m-instruct" and len(plan.warmstart.targets) >= 2
    for variant, cfg in plan.train.items():
        assert cfg.dataset == data and cfg.output_dir == work / "grpo" / variant
        tag = bench.WARMSTART_OF.get(variant, variant if variant in ("context", "newest", "newest_context") else "")
        own = plan.warmstarts[tag]  # GRPO starts from the chosen warm start of its own prompt
        assert cfg.profiler.model == str(own.output_dir / "model") and cfg.prompt == own.prompt
        assert cfg.eval.select_best and plan.prompts[f"blue_{variant}"] == cfg.prompt
    # The context variant's warm start comes from its own YAML: a target that copies the section too.
    assert plan.warmstarts["context"].targets == ["recent_pair+successor"]
    assert plan.warmstarts[""].targets == ["recent_items", "template"]
    # The newest variant: its prompt shows longer titles, so it gets its own warm start (its YAML: newest_item).
    assert plan.warmstarts["newest"].targets == ["newest_item"] and plan.warmstarts["newest"].prompt.max_item_chars == 100
    assert plan.budgets["warmstart_newest"] == plan.budgets["blue_newest"] == 32
    assert plan.train["newest"].grpo.max_completion_length == 32  # validation during GRPO at the test budget
    assert plan.train["newest"].rewards.infonce.negatives == "hard"
    # newest_context: the newest title and its top successor, from successors of the newest item only
    nc = plan.warmstarts["newest_context"]
    assert nc.targets == ["newest_item+successor"] and nc.prompt.collaborative.enabled
    assert nc.prompt.collaborative.from_recent == 1 and nc.prompt.collaborative.max_item_chars == 100
    assert plan.budgets["warmstart_newest_context"] == plan.budgets["blue_newest_context"] == 64
    assert plan.train["newest_context"].grpo.max_completion_length == 64
    # newest_context_wide: the same warm start and prompt, 16 users × 2 profiles a step instead of 4 × 8
    wide, narrow = plan.train["newest_context_wide"].grpo, plan.train["newest_context"].grpo
    assert (wide.num_generations, narrow.num_generations) == (2, 8) and wide.scale_rewards == "batch"
    assert wide.batch_size * wide.gradient_accumulation_steps == narrow.batch_size * narrow.gradient_accumulation_steps
    assert plan.budgets["blue_newest_context_wide"] == 64 and "warmstart_newest_context_wide" not in plan.prompts
    # newest_context_wide_lr3e-4: the wide run at 3× the learning rate, nothing else changed
    fast = plan.train["newest_context_wide_lr3e-4"]
    assert (fast.grpo.learning_rate, plan.train["newest_context_wide"].grpo.learning_rate) == (3e-4, 1e-4)
    assert fast.grpo.model_copy(update={"learning_rate": 1e-4}) == wide
    assert fast.profiler == plan.train["newest_context_wide"].profiler
    assert fast.prompt == plan.train["newest_context"].prompt and fast.rewards == plan.train["newest_context"].rewards
    # newest_context_wide_popneg: that run with popularity-drawn InfoNCE negatives instead of the nearest items
    pop = plan.train["newest_context_wide_popneg"]
    assert (pop.rewards.infonce.negatives, fast.rewards.infonce.negatives) == ("popularity", "hard")
    assert pop.rewards.model_copy(update={"infonce": fast.rewards.infonce}) == fast.rewards and pop.grpo == fast.grpo
    # newest_context_wide_popneg_mrr: that run plus the catalogue-rank MRR reward (weight 2), nothing else changed
    mrr = plan.train["newest_context_wide_popneg_mrr"]
    assert mrr.rewards.enabled == [*pop.rewards.enabled, "langptune"] and mrr.rewards.langptune.metric == "mrr"
    assert mrr.rewards.weights.get("langptune") == 2.0
    assert mrr.rewards.weights.model_copy(update={"langptune": pop.rewards.weights.get("langptune")}) == pop.rewards.weights
    assert mrr.rewards.infonce == pop.rewards.infonce and mrr.grpo == pop.grpo and mrr.prompt == pop.prompt
    assert mrr.profiler == pop.profiler and plan.budgets["blue_newest_context_wide_popneg_mrr"] == 64
    # newest_context_wide_popneg_gdpo: that run with per-reward group normalisation (multiple choice at weight 0.25)
    # and the same 32 completions a step split 8 × 4 instead of 16 × 2 for memory
    gdpo = plan.train["newest_context_wide_popneg_gdpo"]
    assert (gdpo.grpo.multi_objective_aggregation, mrr.grpo.multi_objective_aggregation) == (
        "normalize_then_sum", "sum_then_normalize")
    assert (gdpo.grpo.batch_size, gdpo.grpo.gradient_accumulation_steps) == (8, 4)
    assert gdpo.grpo.model_copy(update={"multi_objective_aggregation": "sum_then_normalize", "batch_size": 16,
                                        "gradient_accumulation_steps": 2}) == mrr.grpo
    assert gdpo.rewards.weights.get("multiple_choice") == 0.25
    assert gdpo.rewards.model_copy(update={"weights": mrr.rewards.weights}) == mrr.rewards
    assert gdpo.prompt == mrr.prompt and gdpo.profiler == mrr.profiler
    # newest_context_wide_popneg_t07: the popneg run sampled at temperature 0.7, 8 users × 4 profiles a step (the same
    # 32 completions, split 8 × 4 for memory), 12 steps; rewards, prompt and profiler unchanged
    t07 = plan.train["newest_context_wide_popneg_t07"]
    assert (t07.grpo.temperature, t07.grpo.num_generations, t07.grpo.max_steps) == (0.7, 4, 12)
    assert t07.grpo.batch_size * t07.grpo.gradient_accumulation_steps == pop.grpo.batch_size * pop.grpo.gradient_accumulation_steps
    assert t07.grpo.model_copy(update={"temperature": pop.grpo.temperature, "num_generations": 2, "max_steps": 8,
                                       "batch_size": 16, "gradient_accumulation_steps": 2}) == pop.grpo
    assert t07.rewards == pop.rewards and t07.prompt == pop.prompt and t07.profiler == pop.profiler
    assert plan.budgets["blue_newest_context_wide_popneg_t07"] == 64
    # newest_context_t07_dcg: the t07 run, 8 steps, with full-list DCG (× 2) in place of InfoNCE and the reader × 0.5
    dcg = plan.train["newest_context_t07_dcg"]
    assert dcg.rewards.enabled == ["langptune", "multiple_choice", "length_penalty"]
    assert (dcg.rewards.langptune.metric, dcg.rewards.langptune.exclude_history) == ("dcg", True)
    assert (dcg.rewards.weights.langptune, dcg.rewards.weights.multiple_choice, dcg.rewards.weights.length_penalty) == (
        2.0, 0.5, 0.5)
    assert dcg.rewards.multiple_choice == t07.rewards.multiple_choice
    assert dcg.grpo.model_copy(update={"max_steps": 12}) == t07.grpo
    assert dcg.prompt == t07.prompt and dcg.profiler == t07.profiler
    # newest_context_t07_ndcg50: the dcg run with the rank reward cut at 50 (NDCG@50), nothing else changed
    ndcg50 = plan.train["newest_context_t07_ndcg50"]
    assert (ndcg50.rewards.langptune.metric, ndcg50.rewards.langptune.k) == ("ndcg", 50)
    assert ndcg50.rewards.model_copy(update={"langptune": dcg.rewards.langptune}) == dcg.rewards
    assert ndcg50.grpo == dcg.grpo and ndcg50.prompt == dcg.prompt and ndcg50.profiler == dcg.profiler
    # newest_context_t07_ndcg50_only: that run with the rank reward alone and one validation (step 8)
    alone = plan.train["newest_context_t07_ndcg50_only"]
    assert alone.rewards.enabled == ["langptune"] and alone.rewards.langptune == ndcg50.rewards.langptune
    assert not alone.needs_reader() and alone.eval.every_steps == 8 and alone.grpo == ndcg50.grpo
    # newest_context_t07_histneg: the t07 run, 8 steps, with the two older prompt items among the InfoNCE negatives
    hist = plan.train["newest_context_t07_histneg"]
    assert (hist.rewards.infonce.history_negatives, hist.rewards.infonce.history_negatives_skip_newest) == (2, 1)
    assert hist.rewards.model_copy(update={"infonce": t07.rewards.infonce}) == t07.rewards
    assert hist.rewards.infonce.model_copy(update={"history_negatives": 0, "history_negatives_skip_newest": 0}) == (
        t07.rewards.infonce)
    assert hist.grpo == dcg.grpo and hist.prompt == t07.prompt and hist.profiler == t07.profiler
    from bluerec.config import load_config
    from bluerec.workflow import WarmStartRunConfig

    by_hand = load_config(WarmStartRunConfig, ROOT / "configs" / "warmstart" / "beauty_smollm2_context.yaml")
    assert by_hand.prompt == plan.train["context"].prompt  # `bluerec warmstart -c` by hand trains the same prompt
    # --warmstarts-only: a variant without GRPO keeps its warm start and zero-shot rows, loses its BLUE row.
    short = bench.without_variants(plan, ["context", "text"])
    assert set(short.train) == set(plan.train) - {"context", "text"} and set(short.warmstarts) == set(plan.warmstarts)
    assert set(short.prompts) == set(short.evaluate.profiles) == set(plan.prompts) - {"blue_context", "blue_text"}
    assert "warmstart_context" in short.prompts and "blue_context" in plan.prompts  # the plan itself is unchanged
    r = {v: c.rewards for v, c in plan.train.items()}
    assert r["both"].enabled == ["infonce", "multiple_choice", "length_penalty"]
    assert r["embedding"].enabled == ["infonce", "length_penalty"] and r["embedding"].infonce.weight_item_to_profile > 0
    assert r["text"].enabled == ["multiple_choice", "length_penalty"]
    assert r["one_way"].enabled == ["infonce", "length_penalty"] and r["one_way"].infonce.weight_item_to_profile == 0
    assert r["context"] == r["both"]  # the context variant changes the prompt only
    assert r["newest"].enabled == r["both"].enabled
    ev = plan.evaluate
    assert ev.split == "test" and ev.max_users == 2000 and ev.intervals.references == bench.REFERENCES
    assert set(ev.profiles) == {"zero_shot", "warmstart", "zero_shot_context", "warmstart_context",
                                "zero_shot_newest", "warmstart_newest", "zero_shot_newest_context",
                                "warmstart_newest_context", "zero_shot_newest_context_long",
                                "warmstart_newest_context_long", *(f"blue_{v}" for v in bench.VARIANTS)}
    # --skip-rows: a row left out is neither generated nor evaluated; GRPO rows and unknown names are refused
    lean = bench.without_rows(plan, ["zero_shot_newest_context"])
    assert set(lean.prompts) == set(lean.evaluate.profiles) == set(plan.prompts) - {"zero_shot_newest_context"}
    assert set(lean.warmstarts) == set(plan.warmstarts) and set(lean.train) == set(plan.train)
    with pytest.raises(SystemExit, match="GRPO rows"):
        bench.without_rows(plan, ["blue_newest"])
    with pytest.raises(SystemExit, match="unknown row"):
        bench.without_rows(plan, ["nope"])
    assert not plan.zero_shot.lora.enabled and plan.zero_shot.model == "smollm2-135m-instruct"
    with pytest.raises(SystemExit, match="unknown variant"):
        bench.make_plan(data, work, variants=["nope"], max_users=None)


def test_a_variant_with_its_own_prompt_gets_its_own_warm_start(bench, tmp_path):
    plan = bench.make_plan(tmp_path, tmp_path, variants=["both", "context"], max_users=None)
    base, context = plan.warmstarts[""], plan.warmstarts["context"]
    assert set(plan.warmstarts) == {"", "context"} and context.output_dir == tmp_path / "warmstart_context"
    assert not base.prompt.collaborative.enabled and context.prompt.collaborative.enabled
    assert context.prompt == plan.train["context"].prompt and context.warmstart.max_prompt_tokens == 256
    # its own YAML (configs/warmstart/beauty_smollm2_context.yaml): the same budget, a target that copies the section
    assert context.choose_target == [] != base.choose_target and context.targets == ["recent_pair+successor"]
    assert context.warmstart.max_steps == base.warmstart.max_steps
    assert plan.prompts["zero_shot_context"] == context.prompt and plan.prompts["zero_shot"] == base.prompt
    # variants that share a prompt share one warm start
    plan = bench.make_plan(tmp_path, tmp_path, variants=["both", "text"], max_users=None)
    assert list(plan.warmstarts) == [""] and set(plan.evaluate.profiles) == {"zero_shot", "warmstart", "blue_both",
                                                                              "blue_text"}


def test_profiles_of_another_model_are_not_resumed(bench, tmp_path):
    model_a, model_b = tmp_path / "a", tmp_path / "b"
    for m in (model_a, model_b):
        m.mkdir()
        (m / "model.safetensors").write_bytes(b"weights")
    path = bench.fresh_profiles(tmp_path / "p" / "x.test.jsonl", model_a)
    path.write_text('{"user_id": "u1", "profile": "from a"}\n')
    assert bench.fresh_profiles(path, model_a).exists()  # same model: resume
    assert not bench.fresh_profiles(path, model_b).exists()  # another model: start over
    path.write_text('{"user_id": "u1", "profile": "from b"}\n')
    assert bench.fresh_profiles(path, model_b, 48).exists() is False  # the budget was not recorded: start over
    path.write_text('{"user_id": "u1", "profile": "from b at 48"}\n')
    assert bench.fresh_profiles(path, model_b, 48).exists()
    assert not bench.fresh_profiles(path, model_b, 80).exists()  # another budget: start over


def test_each_row_is_generated_at_the_budget_its_warm_start_was_chosen_at(bench, tmp_path):
    plan = bench.make_plan(tmp_path, tmp_path, variants=["both", "context"], max_users=None)
    base, context = plan.warmstarts[""].selection.max_new_tokens, plan.warmstarts["context"].selection.max_new_tokens
    assert plan.budgets == {"zero_shot": base, "warmstart": base, "blue_both": base, "zero_shot_context": context,
                            "warmstart_context": context, "blue_context": context}
    # the context target (two titles and a successor) needs more room than the history-only one, and the GRPO
    # completions and the warm start's target cut get it too
    assert context > base
    assert plan.train["context"].grpo.max_completion_length >= context
    assert plan.warmstarts["context"].warmstart.max_target_tokens > context


def test_stored_rows_are_made_again_when_budget_or_config_differ(bench, tmp_path):
    plan = bench.make_plan(tmp_path, tmp_path, variants=["both", "context"], max_users=None)
    names = list(plan.prompts)
    stored = {n: tmp_path / f"{n}.test.jsonl.gz" for n in names}
    digests = {"warmstart": {t: {"config_digest": bench.warmstart_digest(ws)} for t, ws in plan.warmstarts.items()},
               "grpo": {v: {"config_digest": bench.train_digest(c)} for v, c in plan.train.items()},
               "profiles": {n: {"max_new_tokens": plan.budgets[n]} for n in names}}
    assert bench.stale_rows(plan, stored, digests) == {}
    # a record without a budget was made at the legacy 48: fine for a 48-token row, stale for the others
    legacy = {**digests, "profiles": {}}
    assert set(bench.stale_rows(plan, stored, legacy)) == {n for n in names if plan.budgets[n] != 48}
    # another warm-start config (the cut of its targets): its warm-start row and the BLUE row trained from it
    other = plan.warmstarts["context"].model_copy(update={"warmstart": plan.warmstarts["context"].warmstart.model_copy(
        update={"max_target_tokens": 32})})
    assert bench.warmstart_digest(other) != bench.warmstart_digest(plan.warmstarts["context"])
    changed = {**digests, "warmstart": {**digests["warmstart"], "context": {"config_digest": "0ld"}}}
    why = bench.stale_rows(plan, stored, changed)
    assert set(why) == {"warmstart_context", "blue_context"} and "0ld" in why["warmstart_context"]
    # the target choice is recorded as "chosen", not part of the digest; a missing warm-start row forces its BLUE row
    pinned = plan.warmstarts[""].model_copy(update={"choose_target": []})
    assert bench.warmstart_digest(pinned) == bench.warmstart_digest(plan.warmstarts[""])
    assert set(bench.stale_rows(plan, {n: p for n, p in stored.items() if n != "warmstart"}, digests)) == {"blue_both"}


def test_a_setting_added_later_keeps_stored_digests_at_its_old_behaviour(bench, tmp_path):
    plan = bench.make_plan(tmp_path, tmp_path, variants=["both"], max_users=None)
    both = plan.train["both"]
    # the stored BLUE row was trained before the setting existed, with the behaviour of its default
    record = json.loads((ROOT / "bench" / "results" / "blue_beauty_profiles" / "provenance.json").read_text())
    assert bench.train_digest(both) == record["grpo"]["both"]["config_digest"]
    gdpo = both.model_copy(update={"grpo": both.grpo.model_copy(update={"multi_objective_aggregation":
                                                                          "normalize_then_sum"})})
    assert bench.train_digest(gdpo) != bench.train_digest(both)


def test_exporting_profiles_merges_records_and_keeps_earlier_runs(bench, tmp_path):
    import gzip

    profiles = tmp_path / "work" / "zero_shot.test.jsonl"
    profiles.parent.mkdir()
    profiles.write_text('{"user_id": "u1", "profile": "likes masks"}\n')
    plan = bench.make_plan(tmp_path / "data", tmp_path / "work", variants=["both"], max_users=10, cache_dir=None)
    plan.evaluate = plan.evaluate.model_copy(update={"profiles": {"zero_shot": str(profiles)}})
    stored = tmp_path / "stored"
    stored.mkdir()
    (stored / "provenance.json").write_text(json.dumps({
        "grpo": {"both": {"best": {"step": 20}}, "text": {"best": {"step": 40}}},
        "earlier_runs": {"run1": {"grpo": {"both": {"best": {"step": 20}}}}}}))
    bench.export_profiles(plan, stored, {"grpo": {"both": {"best": {"step": 40}}}})
    record = json.loads((stored / "provenance.json").read_text())
    assert record["grpo"] == {"both": {"best": {"step": 40}}, "text": {"best": {"step": 40}}}  # replaced, kept
    assert record["earlier_runs"] == {"run1": {"grpo": {"both": {"best": {"step": 20}}}}}
    with gzip.open(stored / "zero_shot.test.jsonl.gz", "rt") as fh:
        assert json.loads(fh.read()) == {"user_id": "u1", "profile": "likes masks"}
    # exported again unchanged: the same bytes (no temp file name or time in the gzip header), so git sees no change
    first = (stored / "zero_shot.test.jsonl.gz").read_bytes()
    bench.export_profiles(plan, stored, {})
    assert (stored / "zero_shot.test.jsonl.gz").read_bytes() == first


def test_the_composition_runs_end_to_end_and_resumes(bench, fixtures, tmp_path):
    from bluerec.config import load_config
    from bluerec.workflow import WarmStartRunConfig

    data = fixtures.write_word_dataset(tmp_path / "data")
    model = fixtures.save_tiny_qwen2(tmp_path / "qwen2")
    tiny = ROOT / "configs" / "warmstart" / "tiny.yaml"
    prompt = {f"prompt.{k}": v for k, v in load_config(WarmStartRunConfig, tiny).prompt.model_dump(
        mode="json", exclude={"collaborative"}).items()}  # field by field: "context" keeps its section

    def make(work: Path, variants: list[str]):
        # "context" keeps its collaborative section over the tiny prompt: a second warm start with that prompt.
        plan = bench.make_plan(
            data, work, variants=variants, max_users=None, warmstart_config=tiny,
            warmstart_overrides={"profiler": {"model": str(model), "device": "cpu"}}, cache_dir=None,
            train_overrides={**prompt, "profiler.lora.enabled": False, "profiler.device": "cpu",
                             "num_threads": 1, "grpo.max_steps": 2, "grpo.save_steps": 1,
                             "grpo.max_completion_length": 8, "grpo.batch_size": 8, "eval.every_steps": 1,
                             "eval.num_users": 4, "eval.batch_size": 4, "max_train_examples": 8,
                             "reader": {"model": "same_as_profiler", "max_length": 128}},
            evaluate_overrides={"intervals": {"references": bench.REFERENCES, "n_resamples": 50},
                                "protocols": [{"protocol": "full"}]})
        plan.budgets = dict.fromkeys(plan.budgets, 8)
        return plan

    plan = make(tmp_path / "work", ["both", "context"])
    stored = tmp_path / "stored"
    out = bench.run_plan(plan, say=lambda m: None, embedder=None, export=stored)
    summary = out["summary"]
    methods = set(summary["results"])
    assert {"zero_shot", "warmstart", "zero_shot_context", "warmstart_context", "blue_both", "blue_context",
            "last_item", "template", "successor_text"} <= methods
    assert summary["n_users"] == 12  # every method on the same users
    assert Path(out["warmstart"]["context"]["model"]) == tmp_path / "work" / "warmstart_context" / "model"
    assert plan.train["context"].profiler.model == out["warmstart"]["context"]["model"]
    header = "Often bought next"  # the context rows' prompts carry the section, the others' do not
    context_prompts = [ex for ex in plan.prompts.values() if ex.collaborative.enabled]
    assert len(context_prompts) == 3 and header in context_prompts[0].collaborative.header
    for variant in ("both", "context"):
        best = out["grpo"][variant]["best"]
        assert best["step"] >= 1 and Path(out["grpo"][variant]["profiler"]).name == "best"
        steps = [c["step"] for c in out["grpo"][variant]["validation"]]
        assert best["step"] in steps
    assert "blue_both" in summary["intervals"]  # paired intervals against the references
    assert len(out["examples"]) == 3 and set(out["examples"][0]["methods"]) == set(plan.prompts)
    md = bench.markdown({"subset": "s", "command": "c", "seconds": 60, "summary": summary, "reused_profiles": [],
                         "profiles_dir": "d", "examples": out["examples"]})
    assert "| blue_context |" in md and "− last_item" in md and md.count("next item: **") == 3
    profiles = tmp_path / "work" / "profiles" / "blue_both.test.jsonl"
    assert len(profiles.read_text().splitlines()) == 12

    # A rerun reuses every stage: no training (the weights are untouched) and the same table.
    weights = tmp_path / "work" / "grpo" / "both" / "best" / "model.safetensors"
    mtime = weights.stat().st_mtime_ns
    again = bench.run_plan(plan, say=lambda m: None, embedder=None)
    assert weights.stat().st_mtime_ns == mtime
    assert json.dumps(again["summary"]["results"], sort_keys=True) == json.dumps(summary["results"], sort_keys=True)

    # Another machine (a fresh work folder, no models) with the stored profiles: no warm start, no GRPO, same rows.
    assert {p.name for p in stored.iterdir()} == {f"{n}.test.jsonl.gz" for n in plan.prompts} | {"provenance.json"}
    elsewhere = make(tmp_path / "work2", ["both", "context"])
    third = bench.run_plan(elsewhere, say=lambda m: None, embedder=None, reuse=stored)
    assert third["reused"] == sorted(plan.prompts)
    assert not (tmp_path / "work2" / "grpo").exists() and not (tmp_path / "work2" / "warmstart").exists()
    assert json.dumps(third["summary"]["results"], sort_keys=True) == json.dumps(summary["results"], sort_keys=True)
    assert third["grpo"]["both"]["best"] == out["grpo"]["both"]["best"]  # the record travels with the profiles
    # The GRPO record names its training config by a digest that ignores the work folder but not the settings:
    # stored BLUE profiles from another config are trained and made again.
    assert third["grpo"]["both"]["config_digest"] == bench.train_digest(elsewhere.train["both"])
    hotter = elsewhere.train["both"].model_copy(update={"grpo": elsewhere.train["both"].grpo.model_copy(
        update={"temperature": 1.3})})
    assert bench.train_digest(hotter) != bench.train_digest(elsewhere.train["both"])
    # Stored profiles that miss an evaluated user are not reused: that method is made again.
    assert bench.stored_profiles(stored, ["blue_both"], ["not-a-user"]) == {}


def test_a_variant_can_train_from_another_variants_warm_start(bench, tmp_path):
    # Run alone, newest_context_wide still starts from newest_context's warm start (its YAML: the newest title and
    # its top successor), not from the main warm-start config with its prompt.
    alone = bench.make_plan(tmp_path, tmp_path, variants=["newest_context_wide"], max_users=None)
    assert set(alone.warmstarts) == {"", "newest_context"}
    ws = alone.warmstarts["newest_context"]
    assert ws.targets == ["newest_item+successor"] and ws.output_dir == tmp_path / "warmstart_newest_context"
    assert alone.train["newest_context_wide"].profiler.model == str(tmp_path / "warmstart_newest_context" / "model")
    assert {"zero_shot_newest_context", "warmstart_newest_context", "blue_newest_context_wide"} <= set(alone.prompts)
    both = bench.make_plan(tmp_path, tmp_path, variants=["newest_context", "newest_context_wide"], max_users=None)
    assert set(both.warmstarts) == {"", "newest_context"}
    assert both.train["newest_context"].profiler.model == both.train["newest_context_wide"].profiler.model


def test_a_shared_warm_start_of_another_prompt_is_refused(bench, tmp_path, monkeypatch):
    # newest's prompt shows longer titles than context's: sharing context's warm start would train it off-prompt.
    monkeypatch.setitem(bench.WARMSTART_OF, "newest", "context")
    for order in (["context", "newest"], ["newest", "context"]):  # whichever variant plans the warm start first
        with pytest.raises(SystemExit, match=r"prompt differs .* shares between \['context', 'newest'\]"):
            bench.make_plan(tmp_path, tmp_path, variants=order, max_users=None)


def test_two_warm_starts_of_one_prompt_stay_apart(bench, tmp_path):
    # newest_context_long is newest_context's warm start trained longer, with the same prompt: WARMSTART_OF, not the
    # prompt, says which one a variant starts from, whichever variant is planned first.
    for order in (["newest_context_t07_histneg", "newest_context_long_t07_histneg"],
                  ["newest_context_long_t07_histneg", "newest_context_t07_histneg"]):
        plan = bench.make_plan(tmp_path, tmp_path, variants=order, max_users=None)
        assert set(plan.warmstarts) == {"", "newest_context", "newest_context_long"}
        short, long = plan.warmstarts["newest_context"], plan.warmstarts["newest_context_long"]
        assert short.prompt == long.prompt and short.warmstart.max_steps < long.warmstart.max_steps
        assert plan.warmstart_of == {"newest_context_t07_histneg": "newest_context",
                                     "newest_context_long_t07_histneg": "newest_context_long"}
        assert plan.train["newest_context_long_t07_histneg"].profiler.model == str(
            tmp_path / "warmstart_newest_context_long" / "model")
        assert plan.train["newest_context_t07_histneg"].profiler.model == str(
            tmp_path / "warmstart_newest_context" / "model")


def test_each_row_generates_in_the_dtype_of_its_own_config(bench, tmp_path):
    plan = bench.make_plan(tmp_path, tmp_path, variants=["newest_context_t07_histneg",
                                                         "newest_context_long_t07_histneg"], max_users=None)
    assert plan.dtypes == {"zero_shot": "float32", "warmstart": "float32",
                           "zero_shot_newest_context": "float32", "warmstart_newest_context": "float32",
                           "blue_newest_context_t07_histneg": "float32",
                           "zero_shot_newest_context_long": "bfloat16", "warmstart_newest_context_long": "bfloat16",
                           "blue_newest_context_long_t07_histneg": "bfloat16"}
    model = tmp_path / "m"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights")
    path = bench.fresh_profiles(tmp_path / "p" / "x.test.jsonl", model, 64)
    path.write_text('{"user_id": "u1", "profile": "float32"}\n')
    assert bench.fresh_profiles(path, model, 64, "float32").exists()  # the mark float32 rows always had
    assert not bench.fresh_profiles(path, model, 64, "bfloat16").exists()  # another precision: start over
    path.write_text('{"user_id": "u1", "profile": "bfloat16"}\n')
    assert bench.fresh_profiles(path, model, 64, "bfloat16").exists()
