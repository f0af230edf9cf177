from __future__ import annotations

import pytest
import torch

from bluerec.config import ConfigError, parse_config
from bluerec.profiler.backends.hf import HFProfiler
from bluerec.profiler.backends.micro import MicroModelConfig, build_micro_model, train_tokenizer
from bluerec.profiler.prompts import HistoryItem, PromptConfig, build_messages, token_counter
from bluerec.profiler.warmstart import (
    WarmStartConfig,
    make_target,
    make_warmstart_examples,
    target_length_summary,
    warm_start,
)
from bluerec.profiler.template import TemplateItem

TOY = [
    ("Matte lipstick red velvet", "Loves red matte lipstick."),
    ("Shampoo for curly hair", "Needs curly hair care."),
    ("Nail polish pink glitter", "Likes glitter nails."),
]


def test_micro_model_memorises_targets(tmp_path):
    texts = [t for pair in TOY for t in pair] * 20
    tok = train_tokenizer(texts, vocab_size=600)
    model = build_micro_model(tok, MicroModelConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                                    num_key_value_heads=1, intermediate_size=128,
                                                    max_position_embeddings=512))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    examples = [(build_messages([HistoryItem(h, 5.0)]), target) for h, target in TOY]
    logs = []
    cfg = WarmStartConfig(max_steps=60, batch_size=3, learning_rate=5e-3, warmup_ratio=0.0, logging_steps=10)
    result = warm_start(model, tok, examples, cfg, tmp_path / "sft", progress=logs.append)

    assert result.steps == 60 and result.n_examples == 3 and result.n_dropped == 0
    assert result.last_loss < 0.5 * result.first_loss
    assert logs and logs[-1]["step"] == 60 and "loss" in logs[-1]
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert (tmp_path / "sft" / "config.json").exists() and (tmp_path / "sft" / "tokenizer.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left behind

    profiler = HFProfiler.from_pretrained(tmp_path / "sft", device="cpu")
    outs = profiler.generate([e[0] for e in examples], max_new_tokens=16, do_sample=False)
    assert [o[0] for o in outs] == [t for _, t in TOY]


def test_plain_loss_equals_trls_fused_lm_head(tmp_path):
    """On CPU the warm start skips TRL's chunked LM head; the loss it trains on must be the same one
    (target tokens only, the prompt masked), step for step."""
    texts = [t for pair in TOY for t in pair] * 20
    tok = train_tokenizer(texts, vocab_size=600)
    examples = [(build_messages([HistoryItem(h, 5.0)]), target) for h, target in TOY]
    cfg = WarmStartConfig(max_steps=12, batch_size=2, learning_rate=5e-3, warmup_ratio=0.0, logging_steps=1)
    losses = {}
    for fused in (True, False):
        torch.manual_seed(0)
        model = build_micro_model(tok, MicroModelConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                                        num_key_value_heads=1, intermediate_size=64,
                                                        max_position_embeddings=512))
        result = warm_start(model, tok, examples, cfg.model_copy(update={"fused_lm_head": fused}),
                            tmp_path / f"fused-{fused}")
        losses[fused] = [loss for _, loss in result.losses]
    assert len(losses[True]) == 12 and losses[True][0] > losses[True][-1]
    assert losses[False] == pytest.approx(losses[True], rel=1e-4)


def test_long_prompts_are_left_out(tmp_path, micro_dir):
    profiler = HFProfiler.from_pretrained(micro_dir, device="cpu")
    long_chat = build_messages([HistoryItem("word " * 100)] * 10, PromptConfig(max_item_chars=400))
    short_chat = build_messages([HistoryItem("lipstick")])
    cfg = WarmStartConfig(max_steps=2, batch_size=1, max_prompt_tokens=200, logging_steps=1)
    with pytest.warns(UserWarning, match="1 of 2 examples"):
        result = warm_start(profiler.model, profiler.tokenizer, [(long_chat, "x"), (short_chat, "y")], cfg,
                            tmp_path / "out")
    assert result.n_examples == 1 and result.n_dropped == 1 and result.examples_per_s > 0


def test_long_targets_are_cut_counted_and_summarised(tmp_path, micro_dir):
    profiler = HFProfiler.from_pretrained(micro_dir, device="cpu")
    chat = build_messages([HistoryItem("lipstick")])
    cfg = WarmStartConfig(max_steps=1, batch_size=2, max_target_tokens=8, logging_steps=1)
    long_target = "lipstick shampoo nail polish " * 10
    with pytest.warns(UserWarning, match=r"1 of 2 targets are longer than max_target_tokens \(8\) and were cut"):
        result = warm_start(profiler.model, profiler.tokenizer, [(chat, long_target), (chat, "lipstick")], cfg,
                            tmp_path / "out")
    lengths = sorted(len(profiler.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in (long_target,
                                                                                               "lipstick"))
    assert result.n_truncated == 1 and lengths[1] > 8
    assert result.target_tokens == {"p50": lengths[0], "p90": lengths[1], "max": lengths[1]}


def test_target_length_summary_uses_nearest_rank_percentiles():
    assert target_length_summary([]) == {}
    assert target_length_summary([5]) == {"p50": 5, "p90": 5, "max": 5}
    assert target_length_summary(list(range(1, 11))) == {"p50": 5, "p90": 9, "max": 10}
    assert target_length_summary([60] * 9 + [20]) == {"p50": 60, "p90": 60, "max": 60}


def test_targets():
    items = [TemplateItem("Red Matte Lipstick", ["Beauty"], "Maybelline")]
    assert make_target("template", items, None).startswith("Interests: lipstick, matte, red.")  # ties: alphabetical
    assert make_target("next_item", items, "Gloss | Beauty") == "Recent interests: lipstick, matte, red. Likely next: Gloss | Beauty"
    both = make_target("template+next_item", items, "Gloss")
    assert both.startswith("Interests: ") and both.endswith(" Likely next: Gloss")
    with pytest.raises(ValueError, match="next item"):
        make_target("next_item", items, None)
    assert make_target("recent_items", items, None) == "Recently: Red Matte Lipstick."
    shown = ["Oldest", "", "Older  Mascara", "Gloss", "Newest Balm"]  # as the prompt shows them, oldest first
    assert make_target("recent_items", items, None, history_texts=shown) == "Recently: Newest Balm; Gloss; Older Mascara."
    assert make_target("recent_items", [], None, history_texts=[]) == "No history yet."
    assert make_target("newest_item", items, None, history_texts=shown) == "Recently: Newest Balm."
    assert make_target("newest_item", items, None, history_texts=["Gloss", " "]) == "Recently: Gloss."  # blank skipped
    with pytest.raises(ValueError, match="recent_items"):
        make_target("nope", items, "Gloss")  # type: ignore[arg-type]
    # recent_items+context: the newest titles, then the first two items of the prompt's "often bought next" section
    both = make_target("recent_items+context", items, None, history_texts=shown,
                       context_texts=["Lip  Liner", "", "Toner", "Serum"])
    assert both == "Recently: Newest Balm; Gloss; Older Mascara. Often bought next: Lip Liner; Toner."
    assert make_target("recent_items+context", items, None, history_texts=shown) == make_target(
        "recent_items", items, None, history_texts=shown)  # no section, no clause
    # recent_pair+successor: the two newest titles and the section's first item only
    pair = make_target("recent_pair+successor", items, None, history_texts=shown, context_texts=["Lip  Liner", "Toner"])
    assert pair == "Recently: Newest Balm; Gloss. Often bought next: Lip Liner."
    # newest_item+successor: the newest title and the section's first item; without a section, the newest alone
    assert make_target("newest_item+successor", items, None, history_texts=shown,
                       context_texts=["", "Lip  Liner", "Toner"]) == "Recently: Newest Balm. Often bought next: Lip Liner."
    assert make_target("newest_item+successor", items, None, history_texts=shown) == "Recently: Newest Balm."


@pytest.mark.parametrize("budget", [None, 150])  # 150 tokens: fit_to_budget trims the item texts
def test_recent_items_copy_the_prompt(tiny_dataset, micro_dir, budget):
    from transformers import AutoTokenizer

    pc = PromptConfig(max_item_chars=40, min_item_chars=12, max_prompt_tokens=budget or 768)
    count = token_counter(AutoTokenizer.from_pretrained(micro_dir)) if budget else None
    examples = make_warmstart_examples(tiny_dataset, "valid", target="recent_items", prompt_config=pc,
                                       count_tokens=count)
    assert examples
    for msgs, target in examples:
        lines = [line.split(". ", 1)[1].split(" (rated")[0] for line in msgs[1]["content"].splitlines()
                 if line[:1].isdigit()]
        expected = "Recently: " + "; ".join(reversed(lines[-3:])) + "." if lines else "No history yet."
        assert target == expected  # newest first, exactly as shown
    assert (budget is not None) == any("Maybelline…" in target for _, target in examples)  # trimmed as shown


def test_make_warmstart_examples(tiny_dataset, micro_dir):
    ex = make_warmstart_examples(tiny_dataset, "train", target="template+next_item", max_examples=None)
    assert len(ex) == len(tiny_dataset.split("train"))
    msgs, target = ex[0]  # u1 row 1: history [i1] -> target i2
    assert "1. Maybelline Matte Lipstick Red" in msgs[1]["content"] and "(rated 5/5)" in msgs[1]["content"]
    assert target.endswith("Likely next: L'Oreal Infallible Foundation Matte | Beauty > Makeup > Face | by L'Oreal")
    assert "Favourite brands: Maybelline." in target
    sampled = make_warmstart_examples(tiny_dataset, max_examples=3, seed=1)
    assert len(sampled) == 3 and sampled == make_warmstart_examples(tiny_dataset, max_examples=3, seed=1)
    with pytest.raises(ValueError, match="held-out"):
        make_warmstart_examples(tiny_dataset, "test", target="next_item")
    assert make_warmstart_examples(tiny_dataset, "valid", target="template")

    from transformers import AutoTokenizer

    count = token_counter(AutoTokenizer.from_pretrained(micro_dir))
    fitted = make_warmstart_examples(tiny_dataset, prompt_config=PromptConfig(max_prompt_tokens=150), count_tokens=count)
    assert all(count("\n\n".join(m["content"] for m in msgs)) <= 150 for msgs, _ in fitted)


def test_config_is_strict():
    with pytest.raises(ConfigError, match="allowed values"):
        parse_config(WarmStartConfig, {"target": "nope"})


def test_recent_items_with_context_copy_the_section(tiny_dataset):
    from bluerec.profiler.prompts import CollaborativeContext

    pc = PromptConfig(collaborative=CollaborativeContext(enabled=True, max_items=3, from_recent=2))
    examples = make_warmstart_examples(tiny_dataset, "valid", target="recent_items+context", prompt_config=pc)
    with_context = [(msgs, target) for msgs, target in examples if "Often bought next:" in target]
    assert with_context  # tiny_dataset's u3 (i4 i1 | i2): u1's train sequence went i1 → i2 and i1 → i5
    for msgs, target in with_context:
        shown = [line[2:] for line in msgs[1]["content"].splitlines() if line.startswith("- ")]
        assert target.endswith("Often bought next: " + "; ".join(shown[:2]) + ".")  # copied as the prompt shows it
