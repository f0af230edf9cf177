"""Shared-prefill generation: one prefill per distinct prompt, its KV cache shared by the G completions, gives what
transformers' ``generate`` gives for the repeated prompts (greedy: the same tokens; partition-invariant sampling: the
same draws), in TRL's row order, for left-padded prompts of different lengths; and a GRPO run through ``train_blue``
with ``grpo.shared_prefill`` trains exactly like one without it."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

import bluerec.train.shared_prefill as sp
from bluerec.config import parse_config
from bluerec.train import train_blue
from bluerec.train.config import GRPOSettings
from bluerec.train.sampling import PartitionInvariantSampler
from bluerec.train.shared_prefill import SharedPrefill, distinct_rows

PROMPTS = ["red blue green tea mug lamp", "mug", "lamp shoe hat"]  # three lengths: left padding differs per row
G = 3


def _load(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    return AutoModelForCausalLM.from_pretrained(path).eval(), tok


def _generate(model, tok, shared: bool, sampler: PartitionInvariantSampler | None = None, **kw):
    rows = [p for p in PROMPTS for _ in range(G)]  # TRL's layout: G consecutive copies of each prompt
    batch = tok(rows, return_tensors="pt", padding=True)
    assert len(set(batch["attention_mask"].sum(1).tolist())) == 3  # really different lengths
    counter = SharedPrefill()
    with torch.no_grad():
        if sampler is not None:
            sampler.start(step=2)
            kw["logits_processor"] = [sampler]
        if shared:
            with counter.bound_to(model):
                out = model.generate(**batch, max_new_tokens=10, pad_token_id=tok.pad_token_id,
                                     eos_token_id=tok.eos_token_id, **kw)
            assert "generate" not in model.__dict__  # the override is removed on exit
            assert (counter.prefills, counter.rows) == (len(PROMPTS), len(rows))
        else:
            out = model.generate(**batch, max_new_tokens=10, pad_token_id=tok.pad_token_id,
                                 eos_token_id=tok.eos_token_id, **kw)
    if isinstance(out, torch.Tensor):
        return out[:, batch["input_ids"].shape[1]:]
    return out.sequences[:, batch["input_ids"].shape[1]:], torch.stack(out.scores, dim=1)


@pytest.mark.parametrize("which", ["qwen2_dir", "gemma3_dir"])
def test_greedy_completions_equal_generate(which, request):
    model, tok = _load(request.getfixturevalue(which))
    kw = {"do_sample": False, "output_scores": True, "return_dict_in_generate": True}
    plain, plain_scores = _generate(model, tok, shared=False, **kw)
    shared, shared_scores = _generate(model, tok, shared=True, **kw)
    assert torch.equal(plain, shared), (plain, shared)
    # the logits too, tightly: a tiny random model's greedy tokens survive small errors (e.g. wrong positions in the
    # prefill of left-padded rows shift these scores by ~1e-3 while keeping every argmax)
    torch.testing.assert_close(shared_scores, plain_scores, rtol=0, atol=1e-5)
    assert plain.shape[1] > 1
    # the three prompts do not all decode alike, so a cache given to the wrong row would show
    assert len({tuple(r) for r in plain.tolist()}) > 1


def test_sampled_completions_keep_trl_order_with_partition_invariant_sampling(qwen2_dir):
    model, tok = _load(qwen2_dir)

    def sampler():
        return PartitionInvariantSampler(seed=0, num_generations=G, pad_token_id=tok.pad_token_id, temperature=1.0)

    torch.manual_seed(0)
    plain = _generate(model, tok, shared=False, sampler=sampler(), do_sample=True, top_k=0)
    torch.manual_seed(1)  # the global RNG plays no part
    shared = _generate(model, tok, shared=True, sampler=sampler(), do_sample=True, top_k=0)
    assert torch.equal(plain, shared)
    groups = [plain[i * G:(i + 1) * G].tolist() for i in range(len(PROMPTS))]
    assert any(len({tuple(r) for r in g}) > 1 for g in groups)  # copies of one prompt are sampled apart


def test_sampling_without_seeds_draws_distinct_copies(qwen2_dir):
    model, tok = _load(qwen2_dir)
    torch.manual_seed(0)
    out = _generate(model, tok, shared=True, do_sample=True, top_k=0, temperature=1.0)
    assert any(len({tuple(r) for r in out[i * G:(i + 1) * G].tolist()}) > 1 for i in range(len(PROMPTS)))


def test_distinct_rows_follow_first_appearance():
    ids = torch.tensor([[9, 1, 2], [0, 3, 4], [9, 1, 2], [0, 3, 4], [0, 3, 4]])
    mask = torch.tensor([[1, 1, 1], [0, 1, 1], [1, 1, 1], [0, 1, 1], [1, 1, 1]])  # last row: same ids, other mask
    first, inverse = distinct_rows(ids, mask)
    assert first.tolist() == [0, 1, 4] and inverse.tolist() == [0, 1, 0, 1, 2]


def test_switch_is_typed_and_on_by_default():
    assert parse_config(GRPOSettings, {}, "grpo").shared_prefill is True
    assert parse_config(GRPOSettings, {"shared_prefill": False}, "grpo").shared_prefill is False


def test_grpo_run_with_shared_prefill_trains_like_without(make_config, bow, tmp_path, monkeypatch):
    calls = []
    real = sp.shared_prefill_generate

    def counting(generate, model, input_ids, *args, **kwargs):
        calls.append(int(input_ids.shape[0]))
        return real(generate, model, input_ids, *args, **kwargs)

    monkeypatch.setattr(sp, "shared_prefill_generate", counting)
    common = {"grpo__max_steps": 2, "grpo__partition_invariant_sampling": True}
    on = train_blue(make_config(**common, grpo__shared_prefill=True, output_dir=str(tmp_path / "on")), embedder=bow)
    assert calls == [16, 16]  # every step's generation went through the shared prefill (batch 16 = 4 prompts × 4)
    off = train_blue(make_config(**common, grpo__shared_prefill=False, output_dir=str(tmp_path / "off")),
                     embedder=bow)
    assert calls == [16, 16]  # the switch really turns it off
    assert on.global_step == off.global_step == 2
    a, b = load_file(str(on.final_dir / "model.safetensors")), load_file(str(off.final_dir / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:  # same completions → same rewards → same update, up to float rounding of the cached prefill
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)
