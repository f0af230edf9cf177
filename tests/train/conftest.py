"""Fixtures for the GRPO tests: a word-level synthetic prepared dataset, a tiny tokenizer that reloads identically
through ``AutoTokenizer``, tiny random Qwen2 / Gemma3 models saved to disk, and a bag-of-words retriever.

The synthetic task has a known answer: every user's latest train row has the same next item, ``tea``, and the
retriever scores a profile by its share of the target's word, so a profiler that learns to write "tea" earns a
higher InfoNCE reward.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from support.prepared import write_interactions_and_splits

ITEM_WORDS = ["red", "blue", "green", "tea", "mug", "lamp", "shoe", "hat", "sock", "pen"]
EXTRA_WORDS = ["the", "user", "write", "profile", "likes", "history"]
TARGET_WORD = "tea"
SPECIAL = ["<|endoftext|>", "<|bos|>", "<|im_start|>", "<|im_end|>"]
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def write_word_dataset(root: Path, n_users: int = 12, seed: int = 0) -> Path:
    """A prepared dataset whose items are single words. Each user's sequence is ``[a, b, tea, c, d]``: the latest
    train row (history ``[a, b]``) has target ``tea``; valid and test targets are ``c`` and ``d``."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    ids = [f"i{k}" for k in range(len(ITEM_WORDS))]
    pq.write_table(pa.table({
        "item_id": ids, "text": ITEM_WORDS, "title": ITEM_WORDS, "popularity": [1] * len(ids),
    }), root / "items.parquet")
    tea = ids[ITEM_WORDS.index(TARGET_WORD)]
    others = [i for i in ids if i != tea]
    inter: dict[str, list[Any]] = {k: [] for k in ("user_id", "item_id", "timestamp", "rating", "seq", "split")}
    split_cols = ("user_id", "item_id", "timestamp", "rating", "seq", "history", "history_len")
    splits: dict[str, dict[str, list[Any]]] = {s: {k: [] for k in split_cols} for s in ("train", "valid", "test")}
    for u in range(n_users):
        a, b, c, d = rng.choice(others, size=4, replace=False).tolist()
        seq = [a, b, tea, c, d]
        n = len(seq)
        for pos, item in enumerate(seq):
            split = "test" if pos == n - 1 else "valid" if pos == n - 2 else "train"
            ts = 1_600_000_000 + pos * 86_400
            for k, v in zip(inter, (f"u{u}", item, ts, None, pos, split)):
                inter[k].append(v)
            if pos == 0:
                continue
            for k, v in zip(split_cols, (f"u{u}", item, ts, None, pos, seq[:pos], pos)):
                splits[split][k].append(v)
    interactions = pa.table(inter, schema=pa.schema([
        ("user_id", pa.string()), ("item_id", pa.string()), ("timestamp", pa.int64()), ("rating", pa.float64()),
        ("seq", pa.int64()), ("split", pa.string())]))
    return write_interactions_and_splits(root, interactions, splits)


def word_tokenizer() -> Any:
    """A byte-level BPE over a tiny alphabet (Qwen2 pre-tokenisation, so ``AutoTokenizer`` reloads it identically
    even as a ``Qwen2Tokenizer``), wrapped in ``PreTrainedTokenizerFast`` with a ChatML chat template. Characters
    outside the alphabet are dropped; every word of the task is one token."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from bluerec.profiler.backends.micro import PRETOKENIZE_REGEX

    corpus = [" ".join(ITEM_WORDS + EXTRA_WORDS)] * 4 + ["\n", "1. 2. 3. 4. 5. 6. 7. 8. 9."]
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    alphabet = sorted({c for t in corpus for piece, _ in byte_level.pre_tokenize_str(t) for c in piece} | set("ĠĊ"))
    bpe = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False), byte_level]
    )
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=200, min_frequency=1, special_tokens=SPECIAL, initial_alphabet=alphabet,
        limit_alphabet=len(alphabet), show_progress=False))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<|endoftext|>", unk_token="<|endoftext|>",
                                  bos_token="<|bos|>", eos_token="<|im_end|>", additional_special_tokens=["<|im_start|>"])
    tok.chat_template = CHATML
    return tok


def _save_tiny(model_cls: Any, cfg: Any, tok: Any, eos: int, out: Path, seed: int) -> Path:
    """Initialise ``model_cls(cfg)`` with ``seed`` (global RNG untouched) and save it with ``tok`` to ``out``."""
    from transformers import GenerationConfig

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_cls(cfg)
    model.generation_config = GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=eos,
                                               pad_token_id=tok.pad_token_id)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def save_tiny_qwen2(out: Path, seed: int = 0, hidden: int = 32) -> Path:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok = word_tokenizer()
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
                      tie_word_embeddings=True, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                      eos_token_id=eos)
    return _save_tiny(Qwen2ForCausalLM, cfg, tok, eos, out, seed)


def save_tiny_gemma3(out: Path, seed: int = 0) -> Path:
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    tok = word_tokenizer()
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    cfg = Gemma3TextConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=256,
                           sliding_window=16, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                           eos_token_id=eos)
    return _save_tiny(Gemma3ForCausalLM, cfg, tok, eos, out, seed)


class BagOfWordsEmbedder:
    """A retriever whose dimensions are the item words (+1 for everything else): a text's vector counts its words,
    L2-normalised. An item's vector is one-hot, so a profile's cosine with the target grows with its share of the
    target's word."""

    def __init__(self) -> None:
        self.dims = {w: i for i, w in enumerate(ITEM_WORDS)}
        self.calls = 0

    def _encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), len(self.dims) + 1), dtype=np.float32)
        for r, text in enumerate(texts):
            toks = re.findall(r"\w+", text.lower())
            for t in toks:
                out[r, self.dims.get(t, len(self.dims))] += 1.0
            if not toks:
                out[r, -1] = 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        return self._encode(list(texts))

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        return self._encode(list(texts))


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def word_dataset(tmp_path_factory) -> Path:
    return write_word_dataset(tmp_path_factory.mktemp("word_ds"))


@pytest.fixture(scope="session")
def qwen2_dir(tmp_path_factory) -> Path:
    return save_tiny_qwen2(tmp_path_factory.mktemp("qwen2") / "model")


@pytest.fixture
def make_config(word_dataset, qwen2_dir, tmp_path):
    """``make_config(**overrides)`` → a :class:`BlueTrainConfig` for the synthetic task (dotted keys allowed)."""
    from bluerec.config import parse_config, set_dotted
    from bluerec.train import BlueTrainConfig

    def make(**overrides: Any) -> BlueTrainConfig:
        data: dict[str, Any] = {
            "dataset": str(word_dataset),
            "profiler": str(qwen2_dir),
            "output_dir": str(tmp_path / "run"),
            "device": "cpu",
            "item_cache_dir": None,
            "show_progress": False,
            "prompt": {"system_prompt": "write the user profile", "instruction": "write the profile",
                       "include_ratings": False, "review_snippet_chars": 0, "max_prompt_tokens": 96},
            "rewards": {"enabled": ["infonce"],
                        "infonce": {"temperature": 0.1, "num_negatives": 4, "floor": "chance"}},
            "grpo": {"num_generations": 4, "batch_size": 16, "max_completion_length": 8, "learning_rate": 2e-2,
                     "max_steps": 2, "save_steps": 0, "logging_steps": 1, "seed": 0},
            "eval": {"every_steps": 0, "at_start": False, "at_end": False, "num_users": 4, "batch_size": 4},
        }
        for key, value in overrides.items():
            set_dotted(data, key.replace("__", "."), value)
        return parse_config(BlueTrainConfig, data, "test")

    return make


@pytest.fixture
def bow() -> BagOfWordsEmbedder:
    return BagOfWordsEmbedder()


@pytest.fixture(scope="session")
def gemma3_dir(tmp_path_factory) -> Path:
    return save_tiny_gemma3(tmp_path_factory.mktemp("gemma3") / "model")


@pytest.fixture(scope="session")
def target_word() -> str:
    return TARGET_WORD
