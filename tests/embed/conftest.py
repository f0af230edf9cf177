"""Fixtures for the embedding tests: the bundled MiniLM (loaded once) and a tiny random BERT on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from bluerec.embed import Embedder, EmbedderConfig

WORDS = (
    "the a of and to in for with red blue green black shoe hat scarf cable phone charger skillet pan "
    "cook stew book novel game music song movie toy kitchen garden"
).split()


def build_tiny_model(folder: Path, seed: int = 0, hidden: int = 32) -> Path:
    """Save a randomly initialised 2-layer BERT with a small WordPiece vocabulary as a sentence-transformers
    model (Transformer + mean pooling, no Normalize module) and return its folder."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *letters, *("##" + c for c in letters)]
    raw = folder / "hf"
    raw.mkdir(parents=True, exist_ok=True)
    (raw / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(raw / "vocab.txt"), do_lower_case=True)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=128,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(raw)
    tokenizer.save_pretrained(raw)
    out = folder / "st"
    SentenceTransformer(str(raw), device="cpu").save(str(out))
    return out


@pytest.fixture(scope="session")
def minilm() -> Embedder:
    return Embedder()


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture
def tiny(tiny_model_path: Path) -> Embedder:
    return Embedder(EmbedderConfig(model=str(tiny_model_path), batch_size=8))
