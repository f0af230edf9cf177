"""Security guarantees: no pickle from data, remote code off by default, API keys never reach run folders."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import pytest

from bluerec.data.config import SourceConfig
from bluerec.data.errors import DataError, SkipReport
from bluerec.embed import EmbedderConfig
from bluerec.train.config import BlueTrainConfig

PACKAGE = Path(__file__).resolve().parents[1] / "bluerec"
# Anything that would deserialise a pickle: the modules themselves, numpy/torch loaders with pickling allowed.
PICKLE_LOADS = re.compile(r"\bpickle\.loads?\(|\bimport pickle\b|allow_pickle\s*=\s*True|weights_only\s*=\s*False|pd\.read_pickle|joblib\.load")


def test_no_code_path_loads_a_pickle():
    offenders = [f"{p.relative_to(PACKAGE)}:{i}" for p in PACKAGE.rglob("*.py")
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if PICKLE_LOADS.search(line)]
    assert offenders == []


def test_a_pickle_given_as_data_is_rejected_not_loaded(tmp_path: Path):
    import duckdb

    from bluerec.data.readers import stage_source

    marker = tmp_path / "executed"

    class Evil:
        def __reduce__(self):
            return (marker.write_text, ("pwned",))

    sequences = tmp_path / "user2item.jsonl"
    sequences.write_bytes(pickle.dumps(Evil()))
    titles = tmp_path / "item2title.jsonl"
    titles.write_text('{"item_id": 1, "title": "x"}\n')
    source = SourceConfig(format="seqrec", sequences=[sequences], titles=[titles])
    with pytest.raises(DataError) as err:
        stage_source(duckdb.connect(), source, "raise", SkipReport())
    assert "user2item.jsonl" in str(err.value)
    assert not marker.exists()


def test_remote_code_is_off_unless_turned_on():
    assert EmbedderConfig().trust_remote_code is False
    from bluerec.profiler.config import ProfilerConfig

    assert ProfilerConfig.model_fields["trust_remote_code"].default is False
    assert BlueTrainConfig.model_validate({"dataset": "d", "profiler": "p", "output_dir": "o"}).profiler.trust_remote_code is False
    import inspect

    from bluerec.profiler.backends.hf import HFProfiler

    assert inspect.signature(HFProfiler.from_pretrained).parameters["trust_remote_code"].default is False


def test_api_key_never_reaches_profile_files_or_logs(tmp_path: Path, monkeypatch, caplog):
    """Profiles written through the OpenAI-compatible back-end record the model and URL, never the key."""
    from bluerec.profiler.backends.base import GenerationConfig
    from bluerec.profiler.backends.openai_compat import OpenAICompatProfiler
    from bluerec.profiler.profile import generate_profiles

    from support.openai_server import FakeServer

    secret = "sk-live-DO-NOT-LEAK-42"
    monkeypatch.setenv("BLUEREC_TEST_KEY", secret)
    dataset = _tiny_dataset(tmp_path)
    out = tmp_path / "run" / "profiles.jsonl"
    with FakeServer(fail=1) as server, caplog.at_level("DEBUG"):
        backend = OpenAICompatProfiler(server.url, "remote-model", api_key_env="BLUEREC_TEST_KEY", backoff=0.01)
        generate_profiles(backend, dataset, "test", None, GenerationConfig(max_new_tokens=16), out)
        assert all(r["auth"] == f"Bearer {secret}" for r in server.requests)  # it was really sent
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(encoding="utf-8", errors="replace")
    assert secret not in caplog.text and secret not in repr(backend)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and rows[0]["generation"]["model"] == "remote-model"


def _tiny_dataset(tmp_path: Path):
    from bluerec.data.config import PrepareConfig
    from bluerec.data.dataset import PreparedDataset
    from bluerec.data.prepare import prepare_dataset
    from bluerec.data.synth import SynthConfig, write_synth

    res = write_synth(SynthConfig(n_users=40, n_items=60, n_interests=6, mean_interactions=6, max_interactions=10), tmp_path / "raw")
    prepare_dataset(PrepareConfig(source=res.source("amazon"), k_core=2), tmp_path / "data")
    return PreparedDataset(tmp_path / "data")
