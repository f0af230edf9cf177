"""The micro profiler: a tokenizer and a tiny Qwen2 trained from scratch, for offline use.

There is no model hub offline, so the project builds its own small instruct-style model:

1. :func:`train_tokenizer` — a byte-level BPE (Qwen2 pre-tokenisation, so ``AutoTokenizer`` reloads it
   token for token) trained on the data's item texts plus the prompt vocabulary, with ChatML markers
   (``<|im_start|>``, ``<|im_end|>`` = EOS, ``<|endoftext|>`` = pad) and a Jinja ``chat_template``;
2. :func:`build_micro_model` — a randomly initialised ``Qwen2ForCausalLM`` (a real ``Qwen2Config``,
   about 2-4M parameters with the default :class:`MicroModelConfig`);
3. :func:`save_micro_profiler` — ``save_pretrained`` of both, so
   ``HFProfiler.from_pretrained(path)`` loads it exactly like a hub model.

It writes nothing useful until it is warm-started (:mod:`bluerec.profiler.warmstart`) and trained
with GRPO.

Example::

    tok = train_tokenizer(texts, vocab_size=4096)
    model = build_micro_model(tok, MicroModelConfig())
    save_micro_profiler(model, tok, "runs/micro/base")
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from pydantic import Field

from bluerec.config import StrictModel
from bluerec.profiler.checkpoint import save_pretrained_atomic
from bluerec.profiler.prompts import (
    DEFAULT_INSTRUCTION,
    DEFAULT_SYSTEM_PROMPT,
    HISTORY_HEADER,
    NO_HISTORY,
    PromptConfig,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast, Qwen2ForCausalLM

    from bluerec.data.dataset import PreparedDataset

PAD_TOKEN = "<|endoftext|>"
BOS_TOKEN = "<|bos|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = [PAD_TOKEN, BOS_TOKEN, IM_START, IM_END]
# ChatML, as Qwen2-Instruct: "<|im_start|>{role}\n{content}<|im_end|>\n" per message.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# Qwen2Tokenizer's pre-tokenisation; AutoTokenizer rebuilds a qwen2 tokenizer with exactly this.
PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)


class MicroModelConfig(StrictModel):
    """Shape of the micro profiler (a ``Qwen2Config``).

    Parameters:
        hidden_size, num_hidden_layers, num_attention_heads, num_key_value_heads, intermediate_size:
            the transformer; defaults give about 2.4M parameters with a 4k vocabulary.
        max_position_embeddings: longest prompt + profile in tokens.
        tie_word_embeddings: share input and output embeddings.
        seed: initialisation seed.
    """

    hidden_size: int = Field(192, ge=8)
    num_hidden_layers: int = Field(4, ge=1)
    num_attention_heads: int = Field(4, ge=1)
    num_key_value_heads: int = Field(2, ge=1)
    intermediate_size: int = Field(512, ge=8)
    max_position_embeddings: int = Field(1024, ge=64)
    tie_word_embeddings: bool = True
    rope_theta: float = 10000.0
    seed: int = 0


def prompt_vocabulary(prompt_config: PromptConfig | None = None) -> list[str]:
    """Texts that every prompt and profile contains, so the tokenizer learns them as few tokens."""
    cfg = prompt_config or PromptConfig()
    texts = [cfg.system_prompt, cfg.instruction, DEFAULT_SYSTEM_PROMPT, DEFAULT_INSTRUCTION, HISTORY_HEADER,
             NO_HISTORY, "system", "user", "assistant", "No history yet.", " — review: \"", "\"",
             "Interests: ", "Favourite brands: ", "Categories: ", "Recently: ", "Recent interests: ",
             "Likely next: ", "The user likes", "They are likely to want next"]
    texts += [f"{i}. " for i in range(1, cfg.max_history_items + 2)]
    texts += [f"(rated {r}/5)" for r in ("1", "2", "3", "4", "5", "1.5", "2.5", "3.5", "4.5")]
    texts += [str(i) for i in range(10)]
    return texts


def corpus_for(dataset: "PreparedDataset", max_reviews: int = 20000) -> Iterator[str]:
    """Tokenizer training texts of a prepared dataset: item texts and titles, then up to ``max_reviews``
    review texts (the prompts quote them)."""
    yield from dataset.items.texts
    yield from (t for t in dataset.items.titles if t)
    from bluerec.profiler.prompts import user_feedback

    for n, (_, review) in enumerate(user_feedback(dataset).values()):
        if n >= max_reviews:
            break
        if review:
            yield review


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 4096,
    out_dir: str | Path | None = None,
    *,
    prompt_config: PromptConfig | None = None,
    min_frequency: int = 2,
) -> "PreTrainedTokenizerFast":
    """Train a byte-level BPE on ``texts`` + :func:`prompt_vocabulary` and wrap it as a ``transformers``
    fast tokenizer with pad/bos/eos, ChatML markers and a chat template. Saved to ``out_dir`` if given.
    ``vocab_size`` is an upper bound: a small corpus yields fewer merges."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    vocab_texts = prompt_vocabulary(prompt_config)

    def corpus() -> Iterator[str]:
        for _ in range(max(min_frequency, 5)):
            yield from vocab_texts
        for t in texts:
            if t:
                yield t

    bpe.train_from_iterator(corpus(), trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        pad_token=PAD_TOKEN,
        unk_token=PAD_TOKEN,
        bos_token=BOS_TOKEN,
        eos_token=IM_END,
        additional_special_tokens=[IM_START],
        model_max_length=MicroModelConfig().max_position_embeddings,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    if out_dir is not None:
        tokenizer.save_pretrained(str(out_dir))
    return tokenizer


def build_micro_model(tokenizer: Any, config: MicroModelConfig | None = None) -> "Qwen2ForCausalLM":
    """A randomly initialised ``Qwen2ForCausalLM`` sized for ``tokenizer`` (seeded; global RNG untouched)."""
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    config = config or MicroModelConfig()
    if config.hidden_size % config.num_attention_heads:
        raise ValueError(f"hidden_size {config.hidden_size} must be divisible by num_attention_heads "
                         f"{config.num_attention_heads}")
    if config.num_attention_heads % config.num_key_value_heads:
        raise ValueError(f"num_attention_heads {config.num_attention_heads} must be divisible by "
                         f"num_key_value_heads {config.num_key_value_heads}")
    eos_id = tokenizer.convert_tokens_to_ids(IM_END) if IM_END in tokenizer.get_vocab() else tokenizer.eos_token_id
    qcfg = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=config.tie_word_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": config.rope_theta},
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=eos_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = Qwen2ForCausalLM(qcfg)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=eos_id, pad_token_id=tokenizer.pad_token_id
    )
    return model


def count_parameters(model: Any) -> int:
    """Unique parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def save_micro_profiler(model: Any, tokenizer: Any, out_dir: str | Path) -> Path:
    """Atomic ``save_pretrained`` of model and tokenizer; ``HFProfiler.from_pretrained(out_dir)`` loads it."""
    return save_pretrained_atomic(model, tokenizer, out_dir)


def build_micro_profiler(
    texts: Iterable[str],
    out_dir: str | Path,
    *,
    vocab_size: int = 4096,
    model_config: MicroModelConfig | None = None,
    prompt_config: PromptConfig | None = None,
) -> Path:
    """Tokenizer + untrained micro model in one step, saved to ``out_dir``."""
    tokenizer = train_tokenizer(texts, vocab_size, prompt_config=prompt_config)
    model = build_micro_model(tokenizer, model_config)
    return save_micro_profiler(model, tokenizer, out_dir)
