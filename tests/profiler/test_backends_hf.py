"""The HF back-end on the micro model and on tiny randomly initialised real architectures (Gemma3, Qwen2)."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer

from bluerec.profiler.backends.base import GenerationConfig, ProfilerBackend, generate_with
from bluerec.profiler.backends.hf import HFProfiler
from bluerec.profiler.backends.micro import (
    CHAT_TEMPLATE,
    IM_END,
    MicroModelConfig,
    build_micro_model,
    count_parameters,
    save_micro_profiler,
    train_tokenizer,
)
from bluerec.profiler.prompts import HistoryItem, PromptConfig, build_messages, fit_to_budget, messages_text

TEXTS = ["Maybelline Matte Lipstick Red", "Curly Hair Shampoo, sulfate free", "Pink Glitter Nail Polish",
         "Argan Oil Hair Mask — 8.5 fl oz", "L'Oréal Infallible Foundation"] * 20


def chats(n: int) -> list[list[dict]]:
    return [build_messages([HistoryItem(TEXTS[i % 5], 4.0), HistoryItem(TEXTS[(i + 1) % 5])]) for i in range(n)]


def test_tokenizer_round_trips_and_reloads_identically(tmp_path):
    tok = train_tokenizer(TEXTS, vocab_size=500)
    assert tok.chat_template == CHAT_TEMPLATE and tok.eos_token == IM_END and tok.pad_token is not None
    text = "Matte lipstick (rated 4/5) — review: \"crème!\"\n2. ünïcode 😀"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    rendered = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert rendered == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert len(tok(IM_END, add_special_tokens=False)["input_ids"]) == 1
    # save with its model: AutoTokenizer picks the qwen2 tokenizer class and must tokenise identically
    model = build_micro_model(tok, MicroModelConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                                    num_key_value_heads=1, intermediate_size=64))
    save_micro_profiler(model, tok, tmp_path / "m")
    again = AutoTokenizer.from_pretrained(tmp_path / "m")
    assert len(again) == len(tok)
    for s in [*TEXTS[:5], text, rendered]:
        assert again(s, add_special_tokens=False)["input_ids"] == tok(s, add_special_tokens=False)["input_ids"]


def test_default_micro_model_size():
    tok = train_tokenizer(TEXTS, vocab_size=500)
    model = build_micro_model(tok)  # defaults: hidden 192, 4 layers, 4 heads, 2 kv heads, ffn 512
    n = count_parameters(model)
    assert 1_500_000 < n < 2_500_000  # ~1.7M with this toy 500-token vocabulary (+192 per extra token)
    assert model.config.model_type == "qwen2" and model.config.tie_word_embeddings
    with pytest.raises(ValueError, match="divisible"):
        build_micro_model(tok, MicroModelConfig(hidden_size=100, num_attention_heads=3))


def test_micro_profiler_generate_shapes_and_seeds(micro_dir):
    profiler = HFProfiler.from_pretrained(micro_dir, dtype="float32", device="cpu", batch_size=2)
    assert isinstance(profiler, ProfilerBackend)
    assert profiler.model.config.model_type == "qwen2" and profiler.tokenizer.chat_template
    prompts = chats(3)
    greedy = profiler.generate(prompts, num_samples=2, max_new_tokens=6, do_sample=False)
    assert len(greedy) == 3 and all(len(g) == 2 and g[0] == g[1] for g in greedy)
    assert profiler.generate(prompts, num_samples=2, max_new_tokens=6, do_sample=False) == greedy
    # greedy output of a prompt does not depend on its batch-mates (left padding works)
    assert profiler.generate(prompts[1:2], max_new_tokens=6, do_sample=False)[0][0] == greedy[1][0]

    state = torch.random.get_rng_state()
    a = profiler.generate(prompts, num_samples=4, max_new_tokens=8, temperature=1.0, seed=7)
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
    assert len(a) == 3 and all(len(s) == 4 and all(isinstance(x, str) for x in s) for s in a)
    assert profiler.generate(prompts, num_samples=4, max_new_tokens=8, temperature=1.0, seed=7) == a
    assert profiler.generate(prompts, num_samples=4, max_new_tokens=8, temperature=1.0, seed=8) != a
    assert len({x for s in a for x in s}) > 1  # sampling gives different texts

    cfg = GenerationConfig(num_samples=2, max_new_tokens=4, do_sample=False, batch_size=2)
    assert [len(x) for x in generate_with(profiler, prompts, cfg)] == [2, 2, 2]
    assert profiler.generate([], max_new_tokens=4) == []


def test_count_tokens_includes_chat_markup(micro_dir):
    profiler = HFProfiler.from_pretrained(micro_dir, device="cpu")
    msgs = fit_to_budget([HistoryItem(t) for t in TEXTS[:5]], PromptConfig(max_prompt_tokens=400),
                         profiler.count_tokens)
    rendered = profiler.render(msgs)
    exact = len(profiler.tokenizer(rendered, add_special_tokens=False)["input_ids"])
    assert abs(profiler.count_tokens(messages_text(msgs)) - exact) <= 4


def _gemma_tokenizer(path):
    """A Gemma-style BPE (▁ for spaces, <start_of_turn>/<end_of_turn>) with Gemma3's chat template."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>"]
    bpe = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    bpe.normalizer = normalizers.Replace(" ", "▁")
    bpe.pre_tokenizer = pre_tokenizers.Split(" ", behavior="merged_with_previous")
    bpe.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    alphabet = sorted(set("".join(TEXTS + [m["content"] for c in chats(2) for m in c])) | {"▁"})
    bpe.train_from_iterator(TEXTS + [m["content"] for c in chats(5) for m in c],
                            trainers.BpeTrainer(vocab_size=400, special_tokens=specials, initial_alphabet=alphabet,
                                                show_progress=False))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>",
                                  unk_token="<unk>", mask_token="<mask>",
                                  additional_special_tokens=["<start_of_turn>", "<end_of_turn>"])
    tok.chat_template = (
        "{{ bos_token }}{%- if messages[0]['role'] == 'system' -%}"
        "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}{%- set loop_messages = messages[1:] -%}"
        "{%- else -%}{%- set first_user_prefix = '' -%}{%- set loop_messages = messages -%}{%- endif -%}"
        "{%- for message in loop_messages -%}{%- if message['role'] == 'assistant' -%}{%- set role = 'model' -%}"
        "{%- else -%}{%- set role = message['role'] -%}{%- endif -%}"
        "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') + message['content'] | trim"
        " + '<end_of_turn>\n' }}{%- endfor -%}{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
    )
    tok.save_pretrained(path)
    return tok


@pytest.mark.parametrize("arch", ["gemma3", "qwen2"])
def test_same_code_path_takes_a_real_architecture(tmp_path, arch):
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, GenerationConfig as HFGen, Qwen2Config
    from transformers import Qwen2ForCausalLM

    path = tmp_path / arch
    if arch == "gemma3":
        tok = _gemma_tokenizer(path)
        eot = tok.convert_tokens_to_ids("<end_of_turn>")
        cfg = Gemma3TextConfig(vocab_size=len(tok) + 16, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                               num_attention_heads=2, num_key_value_heads=1, head_dim=32, max_position_embeddings=1024,
                               sliding_window=64, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                               eos_token_id=[tok.eos_token_id, eot])
        torch.manual_seed(0)
        model = Gemma3ForCausalLM(cfg)
        model.generation_config = HFGen(bos_token_id=tok.bos_token_id, pad_token_id=tok.pad_token_id,
                                        eos_token_id=[tok.eos_token_id, eot], do_sample=True, top_k=64,
                                        top_p=0.95)  # as google/gemma-3-1b-it ships it
    else:
        tok = train_tokenizer(TEXTS, vocab_size=400)
        cfg = Qwen2Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                          pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        torch.manual_seed(0)
        model = Qwen2ForCausalLM(cfg)
    model.save_pretrained(path)
    tok.save_pretrained(path)

    profiler = HFProfiler.from_pretrained(path, dtype="float32", device="cpu")
    assert profiler.model.config.model_type == ("gemma3_text" if arch == "gemma3" else "qwen2")
    rendered = profiler.render(chats(1)[0])
    if arch == "gemma3":
        assert rendered.startswith("<bos><start_of_turn>user\nYou are") and rendered.endswith("<start_of_turn>model\n")
        assert eot in profiler.stop_token_ids
    ids = profiler.tokenizer(rendered, add_special_tokens=False)["input_ids"]
    assert ids.count(profiler.tokenizer.bos_token_id or -1) <= 1  # no doubled BOS
    out = profiler.generate(chats(2), num_samples=3, max_new_tokens=5, seed=1)
    assert [len(o) for o in out] == [3, 3]
    assert out == profiler.generate(chats(2), num_samples=3, max_new_tokens=5, seed=1)
    greedy = profiler.generate(chats(2), max_new_tokens=5, do_sample=False)
    assert greedy == profiler.generate(chats(2), max_new_tokens=5, do_sample=False)


def test_vocab_mismatch_is_a_clear_error(micro_dir):
    profiler = HFProfiler.from_pretrained(micro_dir, device="cpu")
    big = AutoTokenizer.from_pretrained(micro_dir)
    big.add_tokens([f"<extra_{i}>" for i in range(10)])
    with pytest.raises(ValueError, match="does not belong to this model"):
        HFProfiler(profiler.model, big)


def test_lora_adapter_loads_merged_or_trainable(micro_dir, tmp_path):
    from peft import LoraConfig, PeftModel, get_peft_model

    base = HFProfiler.from_pretrained(micro_dir, device="cpu")
    peft_model = get_peft_model(base.model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                       init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")
    prompts = chats(2)
    expected = HFProfiler(peft_model, base.tokenizer).generate(prompts, max_new_tokens=6, do_sample=False)

    merged = HFProfiler.from_pretrained(micro_dir, device="cpu", lora_path=tmp_path / "adapter")
    assert not isinstance(merged.model, PeftModel) and merged.describe()["lora"] == str(tmp_path / "adapter")
    assert merged.generate(prompts, max_new_tokens=6, do_sample=False) == expected
    trainable = HFProfiler.from_pretrained(micro_dir, device="cpu", lora_path=tmp_path / "adapter", merge_lora=False)
    assert isinstance(trainable.model, PeftModel)
    assert any(p.requires_grad for p in trainable.model.parameters())
    assert trainable.generate(prompts, max_new_tokens=6, do_sample=False) == expected
