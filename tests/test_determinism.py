"""Same config and seed → the same bytes and numbers, end to end:

- ``prepare_dataset`` twice on the same ``write_synth`` output → byte-identical parquet files and manifest
  (apart from nothing: the manifest holds no timestamps or paths of the scratch folders);
- ``build_micro_profiler`` twice → identical weights and tokenizer; loaded twice with ``HFProfiler.from_pretrained``,
  greedy ``generate`` twice (and seeded sampling twice) → identical profiles;
- ``EvaluationRun`` twice (a tiny random sentence-transformers model loaded afresh each time, no embedding cache) with ``max_users`` and the sampled protocol
  → identical summary dicts.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from bluerec.config import parse_config
from bluerec.data.config import PrepareConfig
from bluerec.data.dataset import PreparedDataset
from bluerec.data.prepare import prepare_dataset
from bluerec.data.synth import SynthConfig, write_synth

SYNTH = {"domain": "amazon", "n_users": 120, "n_items": 150, "n_interests": 8, "seed": 3}


def file_hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("determinism")
    synth = write_synth(parse_config(SynthConfig, SYNTH), root / "raw")
    config = PrepareConfig(source=synth.source("amazon"), threads=2)
    # the second run writes to another folder, so paths and scratch folders differ but the content may not
    prepare_dataset(config, root / "a")
    prepare_dataset(config, root / "b")
    return {"a": root / "a", "b": root / "b", "root": root}


def test_prepare_is_byte_identical(prepared: dict[str, Path]) -> None:
    a, b = file_hashes(prepared["a"]), file_hashes(prepared["b"])
    assert set(a) == {"items.parquet", "interactions.parquet", "train.parquet", "valid.parquet", "test.parquet",
                      "manifest.json"}
    assert a == b
    manifest = json.loads((prepared["a"] / "manifest.json").read_text())
    assert manifest["counts"]["users"] > 50 and manifest["counts"]["test"] == manifest["counts"]["users"]
    # and again with more threads: the explicit ORDER BYs make the bytes independent of parallelism
    synth_source = PrepareConfig.model_validate(manifest["config"]).source
    prepare_dataset(PrepareConfig(source=synth_source, threads=4), prepared["root"] / "c")
    c = file_hashes(prepared["root"] / "c")
    assert {k: v for k, v in c.items() if k != "manifest.json"} == {k: v for k, v in a.items() if k != "manifest.json"}


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_micro_profiler_build_and_greedy_generation_are_deterministic(prepared, tmp_path, one_thread) -> None:
    from bluerec.profiler.backends.hf import HFProfiler
    from bluerec.profiler.backends.micro import MicroModelConfig, build_micro_profiler, corpus_for
    from bluerec.profiler.prompts import PromptConfig, fit_to_budget, history_items_for

    ds = PreparedDataset(prepared["a"])
    shape = MicroModelConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                             intermediate_size=64, max_position_embeddings=1024, seed=5)
    prompt = PromptConfig(max_history_items=5, max_prompt_tokens=400)
    dirs = [build_micro_profiler(list(corpus_for(ds)), tmp_path / f"m{k}", vocab_size=400, model_config=shape,
                                 prompt_config=prompt) for k in range(2)]
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (dirs[0] / name).read_bytes() == (dirs[1] / name).read_bytes(), name

    outs, samples, chats = [], [], None
    for d in (dirs[0], dirs[1], dirs[0]):
        profiler = HFProfiler.from_pretrained(d, device="cpu", dtype="float32", batch_size=4)
        these = [fit_to_budget(history_items_for(ds, ex), prompt, profiler.count_tokens) for ex in ds.split("test")[:6]]
        assert chats is None or these == chats
        chats = these
        outs.append(profiler.generate(chats, max_new_tokens=12, do_sample=False))
        outs.append(profiler.generate(chats, max_new_tokens=12, do_sample=False))
        sampled = [profiler.generate(chats[:3], num_samples=2, max_new_tokens=8, temperature=1.0, seed=11)
                   for _ in range(2)]
        assert sampled[0] == sampled[1]
        samples.append(sampled[0])
    assert all(o == outs[0] for o in outs)
    assert all(s == samples[0] for s in samples)
    assert len(outs[0]) == 6 and all(len(g) == 1 for g in outs[0])
    assert any(t for g in samples[0] for t in g)  # a random micro model still writes something when sampling


def tiny_sentence_transformer(folder: Path) -> Path:
    """A randomly initialised 1-layer BERT (small WordPiece vocabulary) saved as a sentence-transformers model."""
    from sentence_transformers import SentenceTransformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters, *("##" + c for c in letters)]
    raw = folder / "hf"
    raw.mkdir(parents=True)
    (raw / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        BertModel(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=64, max_position_embeddings=128)).save_pretrained(raw)
    BertTokenizerFast(vocab_file=str(raw / "vocab.txt"), do_lower_case=True).save_pretrained(raw)
    SentenceTransformer(str(raw), device="cpu").save(str(folder / "st"))
    return folder / "st"


def test_evaluation_run_is_deterministic(prepared, tmp_path, one_thread) -> None:
    from bluerec.embed import Embedder, EmbedderConfig
    from bluerec.eval.evaluator import EvalConfig
    from bluerec.eval.run import EvaluateConfig, EvaluationRun

    model = tiny_sentence_transformer(tmp_path / "tiny")
    config = EvaluateConfig(dataset=prepared["a"], max_users=50, seed=4, cache_dir=None,
                            embedder=EmbedderConfig(model=str(model), batch_size=32, max_seq_length=64),
                            protocols=[EvalConfig(protocol="full"), EvalConfig(protocol="sampled", num_negatives=30)])
    summaries = []
    for _ in range(2):
        run = EvaluationRun(config, embedder=Embedder(config.embedder))  # a freshly loaded model each time
        summaries.append(run.run_all())
    assert summaries[0] == summaries[1]
    assert summaries[0]["n_users"] == 50
    assert set(summaries[0]["results"]) == set(config.methods)
    assert set(summaries[0]["results"]["last_item"]) == {"full", "sampled"}
    # the identical dataset from the second prepare run gives the identical numbers too
    other_config = config.model_copy(update={"dataset": prepared["b"]})
    other = EvaluationRun(other_config, embedder=Embedder(config.embedder)).run_all()
    assert other["results"] == summaries[0]["results"]
