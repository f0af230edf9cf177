"""``bluerec profile --engine ray``: the same resumable file as the local engine, from Ray Data actors."""

from __future__ import annotations

import pytest

from bluerec.io import read_jsonl, write_jsonl_atomic
from bluerec.profiler.backends.base import GenerationConfig
from bluerec.profiler.config import ProfilerConfig
from bluerec.profiler.loader import load_profiler
from bluerec.profiler.profile import generate_profiles, generation_settings
from bluerec.profiler.prompts import PromptConfig

ray = pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'bluerec[ray]')")

from bluerec.profiler.ray_engine import RayEngineConfig, generate_profiles_ray, settings_of  # noqa: E402

PROMPT = PromptConfig(max_prompt_tokens=256)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_settings_without_the_model_equal_the_loaded_backend(micro_dir, monkeypatch):
    cfg = ProfilerConfig(model=str(micro_dir), device="cpu")
    gen = GenerationConfig(do_sample=False, max_new_tokens=8)
    assert settings_of(cfg, "test", PROMPT, gen) == generation_settings(load_profiler(cfg), "test", PROMPT, gen)
    # A known model applies (and records) its registry's repetition defaults: the driver must record them too.
    from bluerec.models.registry import REGISTRY

    entry = next(iter(REGISTRY.values())).model_copy(update={"generation": {"no_repeat_ngram_size": 3}})
    monkeypatch.setitem(REGISTRY, str(micro_dir), entry)
    loaded = generation_settings(load_profiler(cfg), "test", PROMPT, gen)
    assert loaded["generation_defaults"] == {"no_repeat_ngram_size": 3}
    assert settings_of(cfg, "test", PROMPT, gen) == loaded
    remote = ProfilerConfig(backend="openai", model="m", base_url="http://127.0.0.1:9/v1/")
    assert settings_of(remote, "test", PROMPT, gen) == generation_settings(load_profiler(remote), "test", PROMPT, gen)


def test_ray_matches_local_and_resumes(local_ray, micro_dir, tiny_dataset, tmp_path):
    cfg = ProfilerConfig(model=str(micro_dir), device="cpu")
    gen = GenerationConfig(do_sample=True, temperature=1.0, max_new_tokens=8, batch_size=1, seed=7)
    engine = RayEngineConfig(num_workers=2, num_cpus_per_worker=0.5)
    local, out = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    generate_profiles(load_profiler(cfg), tiny_dataset, "test", PROMPT, gen, local)
    run = generate_profiles_ray(cfg, tiny_dataset.root, "test", PROMPT, gen, out, engine=engine)
    # Sampled with the same per-batch seeds as the local engine, in the same order: the same file.
    assert run.n_generated == 3 and out.read_bytes() == local.read_bytes()

    # Resume: users already written are kept as they are; only the missing ones are generated.
    resumed = tmp_path / "resumed.jsonl"
    generate_profiles_ray(cfg, tiny_dataset.root, "test", PROMPT, gen, resumed, engine=engine, max_users=2)
    rows = read_jsonl(resumed)
    rows[0]["profile"] = "KEPT"
    write_jsonl_atomic(resumed, rows)
    second = generate_profiles_ray(cfg, tiny_dataset.root, "test", PROMPT, gen, resumed, engine=engine)
    assert (second.n_existing, second.n_generated) == (2, 1)
    got = read_jsonl(resumed)
    assert [r["user_id"] for r in got] == [r["user_id"] for r in read_jsonl(local)]
    assert got[0]["profile"] == "KEPT" and got[1] == rows[1]


def test_other_settings_are_refused(local_ray, micro_dir, tiny_dataset, tmp_path):
    cfg = ProfilerConfig(model=str(micro_dir), device="cpu")
    out = tmp_path / "p.jsonl"
    engine = RayEngineConfig(num_workers=1, num_cpus_per_worker=0.5)
    generate_profiles_ray(cfg, tiny_dataset.root, "test", PROMPT, GenerationConfig(do_sample=False, max_new_tokens=4),
                          out, engine=engine, max_users=1)
    with pytest.raises(ValueError, match="other settings"):
        generate_profiles_ray(cfg, tiny_dataset.root, "test", PROMPT,
                              GenerationConfig(do_sample=False, max_new_tokens=5), out, engine=engine)


def test_cli_engine_ray_writes_the_local_file(local_ray, micro_dir, tiny_dataset, tmp_path):
    from typer.testing import CliRunner

    from bluerec.cli.main import app

    def run(engine: str, out) -> None:
        res = CliRunner().invoke(app, ["profile", "--profiler", str(micro_dir), "-d", str(tiny_dataset.root),
                                       "--out", str(out), "--max-new-tokens", "6", "--device", "cpu",
                                       "--engine", engine, "--workers", "1", "--cpus-per-worker", "0.5"])
        assert res.exit_code == 0, res.output

    run("local", tmp_path / "local.jsonl")
    run("ray", tmp_path / "ray.jsonl")
    assert (tmp_path / "ray.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()
