from __future__ import annotations

import json

import pytest

from bluerec.io import read_jsonl
from bluerec.profiler.backends.base import GenerationConfig
from bluerec.profiler.backends.hf import HFProfiler
from bluerec.profiler.profile import generate_profiles, latest_per_user, load_profiles
from bluerec.profiler.prompts import PromptConfig


class RecordingBackend:
    """A deterministic back-end that records which prompts it was asked for."""

    def __init__(self):
        self.calls: list[list[str]] = []

    def generate(self, prompts_messages, *, num_samples=1, max_new_tokens=128, temperature=1.0, top_p=1.0,
                 do_sample=True, seed=0):
        firsts = [m[1]["content"].splitlines()[1] for m in prompts_messages]
        self.calls.append(firsts)
        return [[f"profile of {f} #{k}" for k in range(num_samples)] for f in firsts]

    def count_tokens(self, text):
        return len(text.split())

    def describe(self):
        return {"backend": "recording", "model": "none"}


def test_resume_generates_only_missing_users(tiny_dataset, tmp_path):
    out = tmp_path / "profiles.jsonl"
    backend = RecordingBackend()
    gen = GenerationConfig(batch_size=2, num_samples=1)
    first = generate_profiles(backend, tiny_dataset, "test", PromptConfig(), gen, out, max_users=2)
    assert first.n_generated == 2 and [r["user_id"] for r in read_jsonl(out)] == ["u1", "u2"]

    backend.calls.clear()
    progress = []
    second = generate_profiles(backend, tiny_dataset, "test", PromptConfig(), gen, out, progress=lambda d, t: progress.append((d, t)))
    assert second.n_existing == 2 and second.n_generated == 1 and second.n_users == 3
    assert sum(len(c) for c in backend.calls) == 1  # only u3 was generated
    rows = read_jsonl(out)
    assert [r["user_id"] for r in rows] == ["u1", "u2", "u3"] and progress == [(3, 3)]
    assert rows[0]["generation"]["backend"] == "recording" and rows[0]["generation"]["split"] == "test"
    assert set(rows[0]) == {"user_id", "profile", "generation"}

    backend.calls.clear()
    third = generate_profiles(backend, tiny_dataset, "test", PromptConfig(), gen, out)
    assert third.n_generated == 0 and backend.calls == []

    with pytest.raises(ValueError, match="other settings"):
        generate_profiles(backend, tiny_dataset, "test", PromptConfig(), GenerationConfig(seed=99), out)
    fresh = generate_profiles(backend, tiny_dataset, "test", PromptConfig(), GenerationConfig(seed=99, num_samples=2),
                              out, resume=False)
    assert fresh.n_generated == 3
    rows = read_jsonl(out)
    assert rows[0]["samples"] == [rows[0]["profile"], rows[0]["profile"][:-1] + "1"]
    assert list(load_profiles(out)) == ["u1", "u2", "u3"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_user_ids_select_an_evaluation_sample(tiny_dataset, tmp_path):
    out = tmp_path / "profiles.jsonl"
    backend = RecordingBackend()
    gen = GenerationConfig(batch_size=2, num_samples=1)
    result = generate_profiles(backend, tiny_dataset, "test", PromptConfig(), gen, out, user_ids=["u3", "u1"])
    assert result.n_users == 2 and [r["user_id"] for r in read_jsonl(out)] == ["u1", "u3"]
    with pytest.raises(ValueError, match="not in split 'test'.*'nobody'"):
        generate_profiles(backend, tiny_dataset, "test", PromptConfig(), gen, out, user_ids=["u1", "nobody"])


def test_interrupted_run_keeps_what_was_done(tiny_dataset, tmp_path):
    out = tmp_path / "p.jsonl"

    class Flaky(RecordingBackend):
        def generate(self, prompts_messages, **kw):
            if self.calls:
                raise KeyboardInterrupt
            return super().generate(prompts_messages, **kw)

    with pytest.raises(KeyboardInterrupt):
        generate_profiles(Flaky(), tiny_dataset, "test", None, GenerationConfig(batch_size=1), out)
    assert [r["user_id"] for r in read_jsonl(out)] == ["u1"]
    backend = RecordingBackend()
    generate_profiles(backend, tiny_dataset, "test", None, GenerationConfig(batch_size=1), out)
    assert [len(c) for c in backend.calls] == [1, 1] and len(read_jsonl(out)) == 3


def test_latest_row_per_user_on_train(tiny_dataset):
    rows = latest_per_user(tiny_dataset.split("train"))
    assert [(r.user_id, r.seq) for r in rows] == [("u1", 2), ("u2", 1), ("u3", 1)]


def test_micro_profiler_end_to_end(tiny_dataset, micro_dir, tmp_path):
    backend = HFProfiler.from_pretrained(micro_dir, device="cpu")
    out = tmp_path / "micro.jsonl"
    gen = GenerationConfig(max_new_tokens=8, do_sample=False, batch_size=2)
    res = generate_profiles(backend, tiny_dataset, "valid", PromptConfig(max_prompt_tokens=300), gen, out)
    rows = read_jsonl(out)
    assert res.n_generated == 3 and len(rows) == 3 and all(isinstance(r["profile"], str) for r in rows)
    assert rows[0]["generation"]["backend"] == "hf" and rows[0]["generation"]["do_sample"] is False
    json.dumps(rows)  # plain JSON
