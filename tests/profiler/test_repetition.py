"""Repetition control acts on the completion only: loops are cut, copying the prompt stays free, and unset
controls change nothing (profile files written before them still resume)."""

from __future__ import annotations

import torch

from bluerec.profiler.backends.base import GenerationConfig
from bluerec.profiler.backends.hf import CompletionRepetitionControl, HFProfiler
from bluerec.profiler.prompts import HistoryItem, build_messages


def test_no_repeat_ngram_bans_only_repeats_within_the_completion():
    proc = CompletionRepetitionControl(prompt_length=3, no_repeat_ngram_size=2)
    # prompt "7 8 7", completion "7 8 7": the completion's "7 8" is banned after its last 7, nothing else
    scores = proc(torch.tensor([[7, 8, 7, 7, 8, 7]]), torch.zeros(1, 10))
    assert torch.isinf(scores[0, 8]) and torch.isfinite(scores[0, [0, 1, 2, 3, 4, 5, 6, 7, 9]]).all()
    # the same tokens in the prompt only: no ban (copying from the prompt is free)
    scores = proc(torch.tensor([[7, 8, 7, 7]]), torch.zeros(1, 10))
    assert torch.isfinite(scores).all()


def test_repetition_penalty_on_completion_tokens_only():
    proc = CompletionRepetitionControl(prompt_length=2, repetition_penalty=2.0)
    scores = torch.tensor([[4.0, -4.0, 4.0, -4.0]])
    out = proc(torch.tensor([[2, 3, 0, 1]]), scores.clone())  # prompt tokens 2, 3; completion 0, 1
    assert out.tolist() == [[2.0, -8.0, 4.0, -4.0]]


def test_unset_controls_are_left_out_of_kwargs_and_profile_files():
    cfg = GenerationConfig()
    assert "no_repeat_ngram_size" not in cfg.sampling_kwargs() and "no_repeat_ngram_size" not in cfg.describe()
    on = GenerationConfig(no_repeat_ngram_size=3, repetition_penalty=1.1)
    assert on.sampling_kwargs()["no_repeat_ngram_size"] == 3 and on.describe()["repetition_penalty"] == 1.1


def test_generation_stops_looping_and_defaults_come_from_the_profiler(micro_dir):
    prof = HFProfiler.from_pretrained(micro_dir, dtype="float32", device="cpu")
    chat = [build_messages([HistoryItem("Argan Oil Hair Mask"), HistoryItem("Curly Hair Shampoo")])]
    new_ids: list[list[int]] = []
    generate = prof.model.generate

    def recording(*args, **kwargs):
        out = generate(*args, **kwargs)
        new_ids.append(out[0, kwargs["input_ids"].shape[1]:].tolist())
        return out

    prof.model.generate = recording

    def repeated_pairs(ids: list[int]) -> int:
        pairs = [tuple(ids[i : i + 2]) for i in range(len(ids) - 1)]
        return len(pairs) - len(set(pairs))

    free = prof.generate(chat, max_new_tokens=40, do_sample=False)[0][0]
    assert repeated_pairs(new_ids[-1]) > 0  # the untrained micro model loops
    controlled = prof.generate(chat, max_new_tokens=40, do_sample=False, no_repeat_ngram_size=2)[0][0]
    assert repeated_pairs(new_ids[-1]) == 0 and controlled != free
    assert "generation_defaults" not in prof.describe()
    prof.generation_defaults = {"no_repeat_ngram_size": 2}
    assert prof.describe()["generation_defaults"] == {"no_repeat_ngram_size": 2}  # recorded in profile files
    assert prof.generate(chat, max_new_tokens=40, do_sample=False)[0][0] == controlled
    assert prof.generate(chat, max_new_tokens=40, do_sample=False, no_repeat_ngram_size=0)[0][0] == free
