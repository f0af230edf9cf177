"""Supervised warm start (SFT) of a profiler before GRPO.

An untrained micro model writes noise, and GRPO cannot learn from rewards that never differ, so the
profiler is first taught the *form* of a profile by supervised fine-tuning on (prompt → target) pairs,
with the loss on the target tokens only (TRL ``SFTTrainer`` on a prompt-completion dataset).

Targets (``WarmStartConfig.target``):

- ``template``: the :func:`~bluerec.profiler.template.template_profile` of the history;
- ``next_item``: ``"Recent interests: <top keywords>. Likely next: <text of the row's target item>"``,
  learned from train rows (history → the item that followed), so the profile already points at what
  comes next;
- ``template+next_item``: the template profile followed by ``" Likely next: <next item text>"``;
- ``recent_items``: ``"Recently: <newest item>; <the one before>; <the one before that>."`` — the items as the
  prompt shows them, newest first. Pure copying from the prompt, the easiest form for a small model to learn,
  and the part of a profile that an embedding model ranks next items by;
- ``newest_item``: ``"Recently: <newest item>."`` — the newest item alone, as the prompt shows it. On the 300
  validation users of amazon2014-beauty the newest title alone ranks the next item better than the three newest
  (NDCG@10 0.0466 vs 0.0264, bench/results/profile_cut.json), so it is the shortest profile worth starting RL from;
- ``recent_items+context``: ``recent_items`` followed by ``" Often bought next: <first successor>; <second>."``,
  copied from the prompt's collaborative section (what other shoppers bought after the user's newest items;
  :class:`~bluerec.profiler.prompts.CollaborativeContext`). Without that section it equals ``recent_items``;
- ``recent_pair+successor``: ``"Recently: <newest>; <the one before>. Often bought next: <first successor>."`` —
  shorter, and as deterministic text it ranks better than ``recent_items+context`` (bench/results/
  context_targets.json: the two newest titles and one successor are as good a query as the last item's embedding).
- ``newest_item+successor``: ``"Recently: <newest>. Often bought next: <first successor>."`` — the newest item and
  the section's first item. With successors of the newest item only (``collaborative.from_recent: 1``) and texts of
  up to 100 characters, as deterministic text on 3,000 validation users of amazon2014-beauty: NDCG@10 0.0452 vs
  0.0355 for ``newest_item`` (bench/results/context_targets.json); on the 2,000 test users the gap nearly closes
  (0.0402 vs 0.0389).

Example::

    examples = make_warmstart_examples(ds, "train", target="template+next_item", max_examples=2000,
                                       count_tokens=token_counter(tokenizer))
    result = warm_start(model, tokenizer, examples, WarmStartConfig(max_steps=300), "runs/micro/sft")
"""

from __future__ import annotations

import logging
import math
import random
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import Field

from bluerec.config import StrictModel
from bluerec.profiler.checkpoint import save_pretrained_atomic
from bluerec.profiler.prompts import (
    PromptConfig,
    build_prompt,
    clip,
    context_for,
    fit_prompt,
    history_items_for,
    messages_text,
    prompt_renderer,
    token_counter,
)
from bluerec.profiler.template import summarize, template_items_for, template_profile

if TYPE_CHECKING:
    from bluerec.data.dataset import PreparedDataset

log = logging.getLogger(__name__)

WarmStartTarget = Literal["template", "next_item", "template+next_item", "recent_items", "newest_item",
                         "recent_items+context", "recent_pair+successor", "newest_item+successor"]
WARMSTART_TARGETS: tuple[str, ...] = get_args(WarmStartTarget)
# Targets copied from the prompt alone (no held-out item), so allowed on any split.
COPY_TARGETS: tuple[str, ...] = ("recent_items", "newest_item", "recent_items+context", "recent_pair+successor",
                                  "newest_item+successor")
Example = tuple[list[dict] | str, str]  # (chat messages or a plain-text prompt, target text)


class WarmStartConfig(StrictModel):
    """Supervised warm start of a profiler.

    Parameters that control the data:
        target: what the profiler learns to write (see the module docstring).
        max_examples: at most this many (prompt, target) pairs, sampled with ``seed``.
        max_prompt_tokens: pairs whose prompt is longer are left out (fit prompts when building them).
        max_target_tokens: targets are cut to this many tokens.
        next_item_chars: the next item's text is cut to this many characters in the target.

    Parameters that control the training:
        epochs: passes over the data (ignored when ``max_steps`` > 0).
        max_steps: optimizer steps; -1 = use ``epochs``.
        learning_rate, batch_size, gradient_accumulation_steps, warmup_ratio, weight_decay: as usual;
            the default learning rate suits the micro model (use ~1e-5 for a 1B model).
        logging_steps: how often the loss is logged and ``progress`` called.
        fused_lm_head: TRL's chunked LM-head loss (it never builds the full logits: the memory saver for a
            large vocabulary on a GPU). ``None`` = on except on CPU, where its tiled kernel makes a micro
            model's step about 2× slower than the plain cross-entropy of the model's own forward.
        seed: data order and sampling.
    """

    target: WarmStartTarget = "template+next_item"
    max_examples: int | None = Field(2000, ge=1)
    max_prompt_tokens: int = Field(512, ge=16)
    max_target_tokens: int = Field(128, ge=4)
    next_item_chars: int = Field(160, ge=16)
    epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(-1, ge=-1)
    learning_rate: float = Field(1e-3, gt=0)
    batch_size: int = Field(8, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    logging_steps: int = Field(10, ge=1)
    fused_lm_head: bool | None = None
    seed: int = 0


@dataclass
class WarmStartResult:
    """What a warm start did: where it saved, its loss curve and its speed."""

    out_dir: Path
    steps: int
    n_examples: int
    n_dropped: int
    seconds: float
    examples_per_s: float
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, logged loss)
    n_truncated: int = 0  # targets cut to max_target_tokens
    target_tokens: dict[str, int] = field(default_factory=dict)  # {p50, p90, max} of the targets before cutting

    @property
    def first_loss(self) -> float | None:
        return self.losses[0][1] if self.losses else None

    @property
    def last_loss(self) -> float | None:
        return self.losses[-1][1] if self.losses else None


# --- targets and examples -------------------------------------------------------------------------------

def next_item_target(template_items: Sequence[Any], next_item_text: str, next_item_chars: int = 160) -> str:
    """``"Recent interests: a, b, c. Likely next: <next item text>"``."""
    keywords = summarize(template_items).keywords if template_items else []
    head = f"Recent interests: {', '.join(keywords)}. " if keywords else ""
    return f"{head}Likely next: {clip(next_item_text, next_item_chars)}"


def recent_items_target(history_texts: Sequence[str], n: int = 3) -> str:
    """``"Recently: <newest>; <older>; <older still>."`` from item texts (oldest first), blanks skipped."""
    recent = [t for t in (" ".join(text.split()) for text in reversed(history_texts)) if t][:n]
    return f"Recently: {'; '.join(recent)}." if recent else "No history yet."


def context_items_target(context_texts: Sequence[str], n: int = 2) -> str:
    """``" Often bought next: <a>; <b>."`` from the collaborative section's texts as shown (best first); ``""``
    when there are none."""
    shown = [t for t in (" ".join(text.split()) for text in context_texts) if t][:n]
    return f" Often bought next: {'; '.join(shown)}." if shown else ""


def make_target(
    target: WarmStartTarget, template_items: Sequence[Any], next_item_text: str | None, next_item_chars: int = 160,
    history_texts: Sequence[str] | None = None, context_texts: Sequence[str] = (),
) -> str:
    """The warm-start target text for one history (``next_item_text`` is needed by the next-item kinds;
    ``history_texts``, the item texts as the prompt shows them, by ``recent_items`` — else the titles;
    ``context_texts``, the prompt's collaborative section as shown, by ``recent_items+context``)."""
    if target == "template":
        return template_profile(template_items)
    if target in COPY_TARGETS:
        texts = history_texts if history_texts is not None else [t.title for t in template_items]
        if target == "recent_pair+successor":
            return recent_items_target(texts, 2) + context_items_target(context_texts, 1)
        if target == "newest_item":
            return recent_items_target(texts, 1)
        if target == "newest_item+successor":
            return recent_items_target(texts, 1) + context_items_target(context_texts, 1)
        recent = recent_items_target(texts)
        return recent + context_items_target(context_texts) if target == "recent_items+context" else recent
    if next_item_text is None:
        raise ValueError(f"target {target!r} needs the next item's text")
    if target == "next_item":
        return next_item_target(template_items, next_item_text, next_item_chars)
    if target == "template+next_item":
        return f"{template_profile(template_items)} Likely next: {clip(next_item_text, next_item_chars)}"
    raise ValueError(f"unknown target {target!r}; allowed: {list(WARMSTART_TARGETS)}")


def make_warmstart_examples(
    dataset: "PreparedDataset",
    split: str = "train",
    target: WarmStartTarget = "template+next_item",
    max_examples: int | None = 2000,
    seed: int = 0,
    prompt_config: PromptConfig | None = None,
    *,
    count_tokens: Callable[[str], int] | None = None,
    next_item_chars: int = 160,
) -> list[Example]:
    """(prompt messages, target) pairs from a split's rows: each row's history → its target.

    ``count_tokens`` (e.g. :func:`~bluerec.profiler.prompts.token_counter` of the model's tokenizer) fits
    each prompt to ``prompt_config.max_prompt_tokens``; without it only the item/character limits apply.
    Next-item targets are refused on valid/test, which would teach the held-out items.
    """
    if target not in ("template", *COPY_TARGETS) and split != "train":
        raise ValueError(f"target {target!r} on split {split!r} would train on held-out items; use split='train'")
    pc = prompt_config or PromptConfig()
    rows = dataset.split(split)
    indices = list(range(len(rows)))
    if max_examples is not None and len(indices) > max_examples:
        indices = sorted(random.Random(seed).sample(indices, max_examples))
    items = dataset.items
    texts = items.texts if pc.item_field == "text" else items.titles
    out: list[Example] = []
    for i in indices:
        ex = rows[i]
        history = history_items_for(dataset, ex, field=pc.item_field)
        context = context_for(dataset, ex, pc, split)
        prompt = fit_prompt(history, pc, count_tokens, context) if count_tokens else build_prompt(history, pc, context)
        t_items = template_items_for(dataset, ex)[-pc.max_history_items :]
        j = items.index.get(ex.item_id)
        next_text = (texts[j] or items.texts[j]) if j is not None else None
        out.append((prompt.messages, make_target(target, t_items, next_text, next_item_chars,
                                                  history_texts=prompt.item_texts,
                                                  context_texts=prompt.context_texts)))
    return out


# --- training -------------------------------------------------------------------------------------------

def target_length_summary(lengths: Sequence[int]) -> dict[str, int]:
    """``{p50, p90, max}`` of target lengths in tokens (nearest-rank percentiles; ``{}`` for none)."""
    if not lengths:
        return {}
    ordered = sorted(lengths)

    def rank(q: float) -> int:
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    return {"p50": rank(0.5), "p90": rank(0.9), "max": ordered[-1]}


def _prepare(tokenizer: Any, examples: Sequence[Example], config: WarmStartConfig
             ) -> tuple[list[dict], int, list[int]]:
    """The SFT rows, how many examples were left out (prompt over budget) and each kept target's length in tokens
    before it was cut to ``max_target_tokens`` (the cut ones are counted in a warning)."""
    count = token_counter(tokenizer)
    chat = prompt_renderer(tokenizer)  # the same chat-template fallback as inference and GRPO
    rows, dropped, lengths = [], 0, []
    for messages, target in examples:
        # A plain-text prompt (str) trains a plain continuation, e.g. a reader LM scored without a chat template.
        prompt_text = messages if isinstance(messages, str) else messages_text(messages)
        if count(prompt_text) > config.max_prompt_tokens:
            dropped += 1
            continue
        ids = tokenizer(target, add_special_tokens=False, verbose=False)["input_ids"]
        lengths.append(len(ids))
        if len(ids) > config.max_target_tokens:
            target = tokenizer.decode(ids[: config.max_target_tokens], skip_special_tokens=True)
        if isinstance(messages, str):
            rows.append({"prompt": messages, "completion": target})
        else:
            rows.append({"prompt": chat(messages),
                         "completion": [{"role": "assistant", "content": target}]})
    if dropped:
        warnings.warn(f"warm start: {dropped} of {len(examples)} examples have prompts over "
                      f"{config.max_prompt_tokens} tokens and were left out; fit prompts with count_tokens",
                      stacklevel=3)
    cut = sum(n > config.max_target_tokens for n in lengths)
    if cut:
        warnings.warn(f"warm start: {cut} of {len(lengths)} targets are longer than max_target_tokens "
                      f"({config.max_target_tokens}) and were cut (lengths {target_length_summary(lengths)}); the "
                      "profiler learns to stop mid-sentence there — raise max_target_tokens or shorten the target",
                      stacklevel=3)
    return rows, dropped, lengths


def _plain_loss_sft_trainer() -> type:
    """``SFTTrainer`` with the model's own cross-entropy on the collator's labels (prompt tokens are -100)
    instead of TRL's chunked LM head; it drops only the entropy / token-accuracy metrics."""
    from transformers import Trainer
    from trl import SFTTrainer

    class PlainLossSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs = {k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask", "labels",
                                                                "position_ids", "token_type_ids")}
            inputs["use_cache"] = False
            return Trainer.compute_loss(self, model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)

    return PlainLossSFTTrainer


def warm_start(
    model: Any,
    tokenizer: Any,
    examples: Sequence[Example],
    config: WarmStartConfig | None,
    out_dir: str | Path,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> WarmStartResult:
    """Fine-tune ``model`` on (prompt messages → target) with the loss on the target tokens only, then save
    model and tokenizer atomically to ``out_dir``. ``progress`` receives each log entry
    (``{"step", "max_steps", "loss", "learning_rate", "epoch"}``). The model is trained in place."""
    import datasets
    from datasets import Dataset
    from transformers import PrinterCallback, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    config = config or WarmStartConfig()
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("warm start needs a tokenizer with a chat_template (prompt-completion chats)")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    rows, dropped, target_lengths = _prepare(tokenizer, examples, config)
    if not rows:
        raise ValueError(f"warm start: no usable examples (got {len(examples)}, {dropped} over the prompt budget)")
    train_ds = Dataset.from_list(rows)

    device = next(model.parameters()).device
    per_step = config.batch_size * config.gradient_accumulation_steps
    total_steps = config.max_steps if config.max_steps > 0 else math.ceil(len(rows) / per_step * config.epochs)
    losses: list[tuple[int, float]] = []

    class _Progress(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                losses.append((state.global_step, float(logs["loss"])))
                if progress is not None:
                    progress({"step": state.global_step, "max_steps": state.max_steps, "loss": float(logs["loss"]),
                              "learning_rate": logs.get("learning_rate"), "epoch": logs.get("epoch")})

    with tempfile.TemporaryDirectory(prefix="bluerec-warmstart-") as scratch:
        args = SFTConfig(
            output_dir=scratch,
            per_device_train_batch_size=config.batch_size,
            gradient_accumulation_steps=config.gradient_accumulation_steps,
            learning_rate=config.learning_rate,
            num_train_epochs=config.epochs,
            max_steps=config.max_steps,
            warmup_steps=config.warmup_ratio,
            weight_decay=config.weight_decay,
            lr_scheduler_type="linear",
            logging_steps=config.logging_steps,
            logging_first_step=True,
            save_strategy="no",
            report_to=[],
            use_cpu=device.type == "cpu",
            bf16=False,
            fp16=False,
            activation_checkpointing=False,
            max_length=config.max_prompt_tokens + config.max_target_tokens + 16,
            completion_only_loss=True,
            packing=False,
            seed=config.seed,
            data_seed=config.seed,
            dataloader_num_workers=0,
            disable_tqdm=True,
        )
        bars_were_off = datasets.is_progress_bar_enabled() is False
        datasets.disable_progress_bars()
        fused = config.fused_lm_head if config.fused_lm_head is not None else device.type != "cpu"
        trainer_cls = SFTTrainer if fused else _plain_loss_sft_trainer()
        try:
            trainer = trainer_cls(model=model, args=args, train_dataset=train_ds, processing_class=tokenizer,
                                  callbacks=[_Progress()])
        finally:
            if not bars_were_off:
                datasets.enable_progress_bars()
        trainer.remove_callback(PrinterCallback)  # progress goes to ``progress``, not stdout
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        steps = trainer.state.global_step
    model.eval()
    if getattr(model.config, "use_cache", None) is False:
        model.config.use_cache = True
    saved = save_pretrained_atomic(model, tokenizer, out_dir)
    seen = min(steps, total_steps) * per_step
    return WarmStartResult(out_dir=saved, steps=steps, n_examples=len(rows), n_dropped=dropped, seconds=seconds,
                           examples_per_s=seen / seconds if seconds > 0 else float("nan"), losses=losses,
                           n_truncated=sum(n > config.max_target_tokens for n in target_lengths),
                           target_tokens=target_length_summary(target_lengths))
