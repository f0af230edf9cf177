"""Contrastive fine-tuning of the embedder on (profile, next item) pairs of **train** users.

BLUE's trainable-embedder setting: the retriever is adapted to the profiles it reads. Each pair is one train user's
profile (the query: a profiles JSONL of the ``train`` split, or the built-in ``history_text`` / ``template`` texts
of the user's latest train row) and the text of that row's target (the positive document). The loss is
sentence-transformers' ``MultipleNegativesRankingLoss`` (InfoNCE with cosine × ``scale``) over the other pairs'
positives in the batch **plus mined hard negatives**, trained by ``SentenceTransformerTrainer``.

Hard negatives (documented choice): for each pair, the items nearest to the *target* in the frozen (starting)
embedder's item space, taken from ranks ``hard_negative_ranks = [lo, hi)`` of that neighbour list, skipping the
target itself, every item of the user's history and any item whose text equals the target's; ``num_hard_negatives``
are drawn from that window with a seeded generator. Skipping the very nearest ranks (``lo`` > 0) keeps near-duplicates
of the target — likely false negatives on Amazon catalogues (same product, other size) — out of the negatives.

The result is a plain sentence-transformers folder, written atomically (temp folder + rename) with
``finetune.json`` (config, pairs, loss before/after, log history) beside the weights; it loads anywhere an embedder
model is taken (``EmbedderConfig(model="<folder>")``, ``embedder.model`` in every YAML, ``--embedder``).

Example::

    >>> from bluerec.embed.finetune import FinetuneConfig, finetune_embedder
    >>> cfg = FinetuneConfig(dataset="runs/quickstart/data", profiles="template", output_dir="runs/emb-template")
    >>> result = finetune_embedder(cfg)                                                   # doctest: +SKIP
    >>> result.loss_before, result.loss_after                                             # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field, field_validator

from bluerec.config import StrictModel
from bluerec.data.errors import DataError
from bluerec.embed.embedder import Embedder, EmbedderConfig
from bluerec.io import make_temp_dir, read_jsonl, remove_tree, write_json_atomic

if TYPE_CHECKING:
    from bluerec.data.dataset import Example, PreparedDataset

logger = logging.getLogger(__name__)

BUILTIN_PROFILES = ("history_text", "template")
RESULT_FILE = "finetune.json"


class FinetuneSettings(StrictModel):
    """How the embedder is trained (shared by :class:`FinetuneConfig` and the alternating loop's embedder phases).

    Parameters:
        history_items: N most recent items used by the built-in profile texts (default 20).
        max_pairs: seeded sample of this many train users (default all).
        num_hard_negatives: mined hard negatives per pair (0: in-batch negatives only). Default 1.
        hard_negative_ranks: ``[lo, hi)`` window of the target's item neighbours they are drawn from. Default [3, 30].
        epochs, max_steps (overrides epochs when > 0), batch_size, learning_rate, warmup_ratio, weight_decay: the
            optimiser schedule. scale: MNRL's inverse temperature (default 20).
        seed: pair sample, negatives, batch order and dropout. show_progress: the trainer's progress bar.
    """

    history_items: int = Field(20, ge=1)
    max_pairs: int | None = Field(None, ge=2)
    num_hard_negatives: int = Field(1, ge=0)
    hard_negative_ranks: tuple[int, int] = (3, 30)
    epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(-1, ge=-1)
    batch_size: int = Field(32, ge=2)
    learning_rate: float = Field(2e-5, gt=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    weight_decay: float = Field(0.01, ge=0)
    scale: float = Field(20.0, gt=0)
    seed: int = 0
    show_progress: bool = True

    @field_validator("hard_negative_ranks")
    @classmethod
    def _window(cls, value: tuple[int, int]) -> tuple[int, int]:
        lo, hi = value
        if not 0 <= lo < hi:
            raise ValueError(f"hard_negative_ranks must be [lo, hi) with 0 <= lo < hi, got {list(value)}")
        return value


class FinetuneConfig(FinetuneSettings):
    """One fine-tuning run (``configs/embed/*.yaml``; ``bluerec embedder finetune -c``): the training settings of
    :class:`FinetuneSettings` plus what is trained on and where it goes.

    Parameters:
        dataset: prepared dataset folder; only its ``train`` split is read.
        profiles: ``"history_text"``, ``"template"`` or a profiles JSONL (``user_id``, ``profile``) generated on the
            ``train`` split (each user's latest train row, as ``bluerec profile --split train`` writes it).
        embedder: the starting embedder (default MiniLM); its query/document prompts are applied to the pairs.
        output_dir: where the fine-tuned sentence-transformers folder is written (atomically).
        overwrite: replace an existing ``output_dir``.
    """

    dataset: Path
    profiles: str = "template"
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig)
    output_dir: Path
    overwrite: bool = False

    def profile_method(self) -> str:
        """``history_text``, ``template`` or ``file``."""
        return self.profiles if self.profiles in BUILTIN_PROFILES else "file"


@dataclass
class Pairs:
    """Training triples: ``anchors[i]`` (profile), ``positives[i]`` (target text), ``negatives[i]`` (hard negatives'
    texts), with the users and target rows they came from."""

    user_ids: list[str]
    anchors: list[str]
    positives: list[str]
    negatives: list[list[str]]
    targets: np.ndarray
    skipped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.anchors)


@dataclass
class FinetuneResult:
    output_dir: Path
    pairs: int
    loss_before: float
    loss_after: float
    seconds: float
    log_history: list[dict[str, Any]]


def latest_train_rows(dataset: PreparedDataset, max_pairs: int | None, seed: int) -> list[Example]:
    """Each user's latest train row with a non-empty history (the row a ``train``-split profile describes)."""
    from bluerec.profiler.profile import latest_per_user

    rows = [ex for ex in latest_per_user(dataset.split("train")) if ex.history]
    if max_pairs is not None and max_pairs < len(rows):
        pick = np.sort(np.random.default_rng(seed).choice(len(rows), size=max_pairs, replace=False))
        rows = [rows[i] for i in pick]
    return rows


def profile_texts(config: FinetuneConfig, dataset: PreparedDataset, rows: Sequence[Example]) -> tuple[list[str], int]:
    """The query text of each row and how many rows a profiles file lacks (they are dropped, counted)."""
    from bluerec.eval.baselines import history_texts, template_texts

    method = config.profile_method()
    if method == "history_text":
        return history_texts(dataset, rows, config.history_items), 0
    if method == "template":
        return template_texts(dataset, rows, config.history_items), 0
    path = Path(config.profiles)
    if not path.is_file():
        raise DataError(path, None, "profiles", "not a file; give history_text, template or a profiles JSONL")
    by_user: dict[str, str] = {}
    for line, row in enumerate(read_jsonl(path), start=1):
        if "user_id" not in row or not isinstance(row.get("profile"), str):
            raise DataError(path, line, "profile" if "user_id" in row else "user_id", "missing or not a string")
        by_user[str(row["user_id"])] = row["profile"]
    texts = [by_user.get(ex.user_id) for ex in rows]
    missing = sum(t is None for t in texts)
    if missing == len(rows):
        raise DataError(path, None, "user_id", "no train user of the dataset has a profile in this file "
                        "(generate it with --split train)")
    return [t if t is not None else "" for t in texts], missing


def mine_hard_negatives(item_emb: np.ndarray, targets: np.ndarray, histories: Sequence[np.ndarray],
                        item_texts: Sequence[str], num: int, ranks: tuple[int, int],
                        seed: int) -> tuple[np.ndarray, int]:
    """``(n, num)`` item rows near each target (see the module docstring), and how many pairs had too few
    candidates in the window (those get what there is, topped up from beyond the window)."""
    import torch

    lo, hi = ranks
    n_items = len(item_emb)
    want = min(hi + 1 + max((len(h) for h in histories), default=0), n_items)
    emb = torch.from_numpy(np.ascontiguousarray(item_emb, dtype=np.float32))
    out = np.zeros((len(targets), num), dtype=np.int64)
    short = 0
    rng = np.random.default_rng([seed, 31])
    for start in range(0, len(targets), 1024):
        t = torch.from_numpy(targets[start:start + 1024])
        neighbours = torch.topk(emb[t] @ emb.T, k=want, dim=1).indices.numpy()
        for r, row in enumerate(neighbours):
            i = start + r
            target = int(targets[i])
            banned = set(histories[i].tolist()) | {target}
            text = item_texts[target]
            ranked = [int(j) for j in row if int(j) not in banned and item_texts[int(j)] != text]
            window = ranked[lo:hi]
            if len(window) < num:
                short += 1
                window = ranked[:max(num, len(ranked))]
            if len(window) < num:  # tiny catalogue: any other eligible item
                pool = [j for j in range(n_items) if j not in banned and item_texts[j] != text]
                window = (window + pool)[:max(num, 1)]
            out[i] = rng.choice(window, size=num, replace=len(window) < num)
    return out, short


def build_pairs(config: FinetuneConfig, dataset: PreparedDataset, embedder: Embedder,
                item_emb: np.ndarray) -> Pairs:
    """The training triples of ``config`` (profiles, target texts, hard negatives; prompts applied)."""
    rows = latest_train_rows(dataset, config.max_pairs, config.seed)
    texts, missing = profile_texts(config, dataset, rows)
    keep = [k for k, t in enumerate(texts) if t.strip()]
    empty = len(rows) - len(keep) - missing
    if missing or empty:
        logger.warning("embedder fine-tuning: %d train users without a profile and %d with an empty one are left out",
                       missing, empty)
    rows, texts = [rows[k] for k in keep], [texts[k] for k in keep]
    if len(rows) < 2:
        raise DataError(config.dataset, None, "train", f"{len(rows)} usable (profile, next item) pairs; need >= 2")
    items = dataset.items
    index = items.index
    targets = np.asarray([index[ex.item_id] for ex in rows], dtype=np.int64)
    histories = [np.asarray([index[i] for i in dataset.full_history(ex) if i in index], dtype=np.int64) for ex in rows]
    qp, dp = embedder.query_prompt_text, embedder.document_prompt_text
    docs = [dp + t for t in items.texts]
    negatives: list[list[str]] = [[] for _ in rows]
    short = 0
    if config.num_hard_negatives:
        neg, short = mine_hard_negatives(item_emb, targets, histories, items.texts, config.num_hard_negatives,
                                         config.hard_negative_ranks, config.seed)
        negatives = [[docs[j] for j in r] for r in neg]
    return Pairs([ex.user_id for ex in rows], [qp + t for t in texts], [docs[t] for t in targets], negatives,
                 targets, {"missing_profile": missing, "empty_profile": empty, "short_negative_window": short})


def mnrl_loss(model: Any, pairs: Pairs, batch_size: int, scale: float) -> float:
    """MultipleNegativesRankingLoss of ``model`` on ``pairs`` in fixed consecutive batches (no dropout, no grad):
    the quantity training lowers, measured the same way before and after."""
    import torch

    kw = {"batch_size": 64, "convert_to_tensor": True, "normalize_embeddings": True, "show_progress_bar": False}
    a = model.encode(pairs.anchors, **kw)
    p = model.encode(pairs.positives, **kw)
    n_neg = len(pairs.negatives[0]) if pairs.negatives and pairs.negatives[0] else 0
    negs = model.encode([t for r in pairs.negatives for t in r], **kw).reshape(len(pairs), n_neg, -1) if n_neg else None
    total, count = 0.0, 0
    for s in range(0, len(pairs), batch_size):
        qa, qp = a[s:s + batch_size], p[s:s + batch_size]
        docs = qp if negs is None else torch.cat([qp, negs[s:s + batch_size].reshape(-1, qp.shape[1])])
        scores = scale * qa @ docs.T
        total += float(torch.nn.functional.cross_entropy(scores, torch.arange(len(qa)), reduction="sum"))
        count += len(qa)
    return total / count


def finetune_embedder(config: FinetuneConfig, progress: Callable[[str], None] | None = None,
                      embedder: Embedder | None = None) -> FinetuneResult:
    """Fine-tune ``config.embedder`` (or the given ``embedder``'s model) and write it to ``config.output_dir``."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers

    from bluerec.data.dataset import PreparedDataset
    from bluerec.embed.cache import embed_items

    say = progress or logger.info
    out = Path(config.output_dir)
    if out.exists() and not config.overwrite:
        raise FileExistsError(f"{out} exists; set overwrite: true (or --overwrite) to replace it")
    if config.profile_method() == "file" and not Path(config.profiles).is_file():  # before any heavy work
        raise DataError(config.profiles, None, "profiles", "not a file; give history_text, template or a profiles JSONL")
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    dataset = PreparedDataset(config.dataset)
    embedder = embedder or Embedder(config.embedder)
    say(f"embedding {len(dataset.items):,} items with {embedder.model_id} to mine hard negatives")
    item_emb = embed_items(embedder, dataset.items.ids, dataset.items.texts, cache_dir=config.embedder.cache_dir)
    pairs = build_pairs(config, dataset, embedder, item_emb)
    model = embedder.model
    say(f"{len(pairs):,} (profile, next item) pairs from train users ({config.profile_method()} profiles), "
        f"{config.num_hard_negatives} hard negative(s) each; skipped: {pairs.skipped}")
    loss_before = mnrl_loss(model, pairs, config.batch_size, config.scale)
    columns: dict[str, list[str]] = {"anchor": pairs.anchors, "positive": pairs.positives}
    for k in range(config.num_hard_negatives):
        columns[f"negative_{k + 1}"] = [r[k] for r in pairs.negatives]
    tmp = make_temp_dir(f".{out.name}.", out.parent)
    try:
        args = SentenceTransformerTrainingArguments(
            output_dir=str(tmp / "trainer"), num_train_epochs=config.epochs, max_steps=config.max_steps,
            per_device_train_batch_size=config.batch_size, learning_rate=config.learning_rate,
            warmup_steps=config.warmup_ratio, weight_decay=config.weight_decay, seed=config.seed,
            data_seed=config.seed, batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="no", report_to="none",
            logging_steps=max(1, len(pairs) // config.batch_size // 10), disable_tqdm=not config.show_progress,
            use_cpu=embedder.device == "cpu", dataloader_drop_last=False)
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=Dataset.from_dict(columns),
                                             loss=MultipleNegativesRankingLoss(model, scale=config.scale))
        trainer.train()
        model.eval()
        loss_after = mnrl_loss(model, pairs, config.batch_size, config.scale)
        remove_tree(tmp / "trainer")
        model.save(str(tmp))
        seconds = time.perf_counter() - start
        result = FinetuneResult(out, len(pairs), loss_before, loss_after, seconds,
                                [dict(r) for r in trainer.state.log_history])
        write_json_atomic(tmp / RESULT_FILE, {
            "config": json.loads(config.model_dump_json()), "base_model": embedder.model_id, "pairs": len(pairs),
            "skipped": pairs.skipped, "loss_before": round(loss_before, 6), "loss_after": round(loss_after, 6),
            "steps": int(trainer.state.global_step), "seconds": round(seconds, 1),
            "log_history": result.log_history})
        if out.exists():
            remove_tree(out)
        os.replace(tmp, out)
    except BaseException:
        remove_tree(tmp)
        raise
    say(f"fine-tuned embedder written to {out}: MNRL loss on its pairs {loss_before:.4f} -> {loss_after:.4f} "
        f"({seconds:.0f}s)")
    return result


def read_finetune_record(folder: str | Path) -> dict[str, Any]:
    """The ``finetune.json`` of a fine-tuned embedder folder."""
    return json.loads((Path(folder) / RESULT_FILE).read_text(encoding="utf-8"))
