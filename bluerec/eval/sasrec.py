"""SASRec (Kang & McAuley, ICDM 2018), the ID-based sequential baseline, scored with the project's own evaluator.

The network is ``torch_rechub.models.matching.sasrec.SASRec`` (a port of the original: causal self-attention over
the left-padded last ``maxlen`` items, binary cross-entropy with one sampled negative per position). This module
only adds what the library leaves to its user, following the original code (``kang205/SASRec``):

- **data**: a prepared dataset's leave-last-out splits → per-user training sequences that end *before* the user's
  validation target (training never sees valid/test targets); validation input = that sequence, target = the
  valid item; test input = the full history before the test item (train + valid), target = the test item;
- **training**: an epoch is one pass over the users in a seeded random order; per position the input is
  ``seq[:-1]``, the positive ``seq[1:]`` and one uniform negative outside the user's training items; Adam
  (betas 0.9/0.98); every ``eval_every`` epochs the validation NDCG@10 (full ranking, history excluded) is measured
  and the best weights are kept; training stops after ``patience`` evaluations without improvement, at
  ``max_epochs`` or at the time budget ``max_seconds``;
- **scoring**: user vector = the last position's output on the (left-padded) history; item vectors = the rows of
  the model's item embedding table; score = dot product, exactly SASRec's logits. Ranks, metrics and the sampled
  protocol's negatives come from :class:`~bluerec.eval.evaluator.RetrievalEvaluator`, so the protocol is the one
  every other baseline is scored under.

Example::

    >>> from bluerec.data.dataset import PreparedDataset
    >>> from bluerec.eval.sasrec import SASRecConfig, sasrec_data, train_sasrec, evaluate_sasrec
    >>> data = sasrec_data(PreparedDataset("data/prepared/beauty2014"))                  # doctest: +SKIP
    >>> fit = train_sasrec(data, SASRecConfig(max_epochs=20))                              # doctest: +SKIP
    >>> evaluate_sasrec(fit.model, data)["full"]["ndcg@10"]                                # doctest: +SKIP
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from pydantic import Field

from bluerec.config import StrictModel
from bluerec.eval.evaluator import EvalConfig, EvalResult, RetrievalEvaluator

if TYPE_CHECKING:
    from bluerec.data.dataset import PreparedDataset

logger = logging.getLogger(__name__)


class SASRecConfig(StrictModel):
    """SASRec's hyper-parameters (defaults: the paper's setting for the sparse Amazon data) and the training budget.

    Network: hidden (d = 64), blocks (2), heads (1), dropout (0.5 for sparse data), maxlen (n = 50).
    Optimiser: lr (1e-3, Adam betas 0.9/0.98), batch_size (128 users), l2_emb (0: the original's default).
    Schedule: max_epochs (200), eval_every (validation NDCG@10 every 5 epochs), patience (stop after 5 evaluations
    without improvement), max_seconds (wall-clock budget of the training loop; None = unbounded).
    seed: weights, user order and negatives. threads: torch CPU threads while training (None = leave as is).
    """

    hidden: int = Field(64, ge=1)
    blocks: int = Field(2, ge=1)
    heads: int = Field(1, ge=1)
    dropout: float = Field(0.5, ge=0.0, lt=1.0)
    maxlen: int = Field(50, ge=2)
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(128, ge=2)
    l2_emb: float = Field(0.0, ge=0)
    max_epochs: int = Field(200, ge=1)
    eval_every: int = Field(5, ge=1)
    patience: int = Field(5, ge=1)
    max_seconds: float | None = Field(None, gt=0)
    seed: int = 0
    threads: int | None = Field(None, ge=1)


@dataclass
class SASRecData:
    """Item-index sequences (1-based; 0 is padding) of one prepared dataset.

    ``train[u]``: user u's items before the validation target; ``valid_history/valid_target`` and
    ``test_history/test_target``: the inputs and targets of the two held-out rows (``*_target`` are 0-based dataset
    item rows, as the evaluator wants them, histories are 1-based like ``train``).
    """

    item_ids: list[str]
    users: list[str]
    train: list[np.ndarray]
    valid_history: list[np.ndarray]
    valid_target: np.ndarray
    test_history: list[np.ndarray]
    test_target: np.ndarray

    @property
    def n_items(self) -> int:
        return len(self.item_ids)


def sasrec_data(dataset: PreparedDataset) -> SASRecData:
    """Sequences of every user with a test row (leave-last-out as prepared). A user without a validation row
    (too short) trains on everything before the test target and is left out of validation."""
    index = dataset.items.index
    valid = {ex.user_id: ex for ex in dataset.split("valid")}
    users, train, vh, vt, th, tt = [], [], [], [], [], []

    def rows(ids: Sequence[str]) -> np.ndarray:
        return np.fromiter((index[i] + 1 for i in ids), dtype=np.int64, count=len(ids))

    for ex in dataset.split("test"):
        users.append(ex.user_id)
        test_hist = rows(dataset.full_history(ex))
        th.append(test_hist)
        tt.append(index[ex.item_id])
        v = valid.get(ex.user_id)
        if v is not None:
            seq = rows(dataset.full_history(v))
            vh.append(seq)
            vt.append(index[v.item_id])
        else:
            seq = test_hist
        train.append(seq)
    return SASRecData(list(dataset.items.ids), users, train, vh, np.asarray(vt, dtype=np.int64), th,
                      np.asarray(tt, dtype=np.int64))


def build_sasrec(n_items: int, config: SASRecConfig) -> torch.nn.Module:
    """torch-rechub's SASRec over ``n_items`` items (+ padding row 0), seeded, with Xavier-normal weights as in the
    reference PyTorch port (pmixer/SASRec.pytorch); the library's default embedding init (N(0, 1e-4)) barely
    trains in 200 epochs."""
    from torch_rechub.basic.features import SequenceFeature
    from torch_rechub.models.matching.sasrec import SASRec

    torch.manual_seed(config.seed)
    feats = [SequenceFeature("seq", vocab_size=n_items + 1, embed_dim=config.hidden, pooling="concat", padding_idx=0),
             SequenceFeature("pos", vocab_size=n_items + 1, embed_dim=config.hidden, pooling="concat",
                             shared_with="seq", padding_idx=0),
             SequenceFeature("neg", vocab_size=n_items + 1, embed_dim=config.hidden, pooling="concat",
                             shared_with="seq", padding_idx=0)]
    model = SASRec(feats, max_len=config.maxlen, dropout_rate=config.dropout, num_blocks=config.blocks,
                   num_heads=config.heads)
    for _, param in model.named_parameters():
        if param.dim() > 1:
            torch.nn.init.xavier_normal_(param.data)
    with torch.no_grad():
        item_table(model).weight[0].zero_()
    return model


def item_table(model: torch.nn.Module) -> torch.nn.Embedding:
    """The model's item embedding table (row 0 = padding)."""
    return model.item_emb.embed_dict["seq"]


def left_pad(seqs: Sequence[np.ndarray], maxlen: int) -> np.ndarray:
    """The last ``maxlen`` items of each sequence, right-aligned, zeros in front (the original's layout)."""
    out = np.zeros((len(seqs), maxlen), dtype=np.int64)
    for r, s in enumerate(seqs):
        tail = s[-maxlen:]
        if len(tail):
            out[r, maxlen - len(tail):] = tail
    return out


def training_batch(seqs: Sequence[np.ndarray], n_items: int, maxlen: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(seq, pos, neg)``, each ``(B, maxlen)``: inputs ``s[:-1]``, next items ``s[1:]``, and one uniform negative
    (1..n_items, outside the user's own sequence) wherever ``pos`` is not padding."""
    inputs = left_pad([s[:-1] for s in seqs], maxlen)
    pos = left_pad([s[1:] for s in seqs], maxlen)
    neg = np.zeros_like(pos)
    for r, s in enumerate(seqs):
        mask = pos[r] != 0
        own = np.unique(s)
        draw = rng.integers(1, n_items + 1, size=int(mask.sum()))
        bad = np.isin(draw, own)
        tries = 0
        while bad.any() and tries < 100 and len(own) < n_items:
            draw[bad] = rng.integers(1, n_items + 1, size=int(bad.sum()))
            bad = np.isin(draw, own)
            tries += 1
        neg[r, mask] = draw
    return inputs, pos, neg


def _as_batch(arrays: dict[str, np.ndarray]) -> tuple[dict[str, torch.Tensor], int]:
    # The library squeezes the batch axis away for a batch of one: feed such a batch twice.
    n = len(next(iter(arrays.values())))
    if n == 1:
        arrays = {k: np.concatenate([v, v]) for k, v in arrays.items()}
    return {k: torch.from_numpy(v) for k, v in arrays.items()}, n


def user_vectors(model: torch.nn.Module, histories: Sequence[np.ndarray], maxlen: int,
                 batch_size: int = 512) -> np.ndarray:
    """``(n_users, d)``: the last position's output of the left-padded history (eval mode, no grad)."""
    was = model.training
    model.eval()
    out = []
    try:
        with torch.no_grad():
            for start in range(0, len(histories), batch_size):
                seq = left_pad(histories[start:start + batch_size], maxlen)
                x, n = _as_batch({"seq": seq})
                emb = model.item_emb(x, model.features[:1])[:, 0]
                out.append(model.seq_forward(x, emb)[:n, -1].numpy())
    finally:
        model.train(was)
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, model.embed_dim), np.float32)


def item_vectors(model: torch.nn.Module) -> np.ndarray:
    """``(n_items, d)`` item matrix in dataset row order (the padding row dropped)."""
    return item_table(model).weight.detach()[1:].numpy().astype(np.float32)


def bce_loss(pos_logits: torch.Tensor, neg_logits: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """The original's loss: BCE of positives against 1 and negatives against 0, on non-padding positions."""
    mask = pos != 0
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    return (bce(pos_logits[mask], torch.ones_like(pos_logits[mask]))
            + bce(neg_logits[mask], torch.zeros_like(neg_logits[mask])))


@dataclass
class SASRecFit:
    """A trained model and its training record (per-epoch mean loss, validation NDCG@10 by epoch)."""

    model: torch.nn.Module
    losses: list[float] = field(default_factory=list)
    valid_ndcg: dict[int, float] = field(default_factory=dict)
    best_epoch: int = 0
    epochs: int = 0
    seconds: float = 0.0
    stopped: str = "max_epochs"

    def record(self) -> dict[str, Any]:
        return {"losses": [round(x, 5) for x in self.losses], "valid_ndcg@10": self.valid_ndcg,
                "best_epoch": self.best_epoch, "epochs": self.epochs, "seconds": round(self.seconds, 1),
                "stopped": self.stopped}


def valid_evaluator(data: SASRecData) -> RetrievalEvaluator | None:
    """Full-ranking NDCG@10 on the validation rows (their histories excluded), or None without any."""
    if not data.valid_history:
        return None
    exclude = [h - 1 for h in data.valid_history]
    return RetrievalEvaluator(np.zeros((data.n_items, 1), np.float32), data.valid_target, exclude,
                              EvalConfig(protocol="full", ks=[10], ties="average", top_n=0))


class EpochTracker:
    """The epoch bookkeeping SASRec and BERT4Rec share: the mean loss per epoch, validation NDCG@10 every
    ``eval_every`` epochs (and at the last epoch or the time budget), the best weights, early stopping after
    ``patience`` evaluations without improvement, and the wall-time budget ``max_seconds``."""

    def __init__(self, model: torch.nn.Module, config: Any, evaluator: RetrievalEvaluator | None,
                 say: Callable[[str], None]) -> None:
        self.model, self.config, self.evaluator, self.say = model, config, evaluator, say
        self.fit = SASRecFit(model=model)
        self.best, self.best_state, self.bad = -math.inf, None, 0
        self.start = time.perf_counter()

    def end_epoch(self, epoch: int, mean_loss: float,
                  valid_vectors: Callable[[], tuple[np.ndarray, np.ndarray]]) -> bool:
        """Record one finished epoch; ``valid_vectors`` gives the (validation user, item) vectors when an evaluation
        is due. Returns ``True`` when training should stop."""
        config, fit = self.config, self.fit
        fit.losses.append(mean_loss)
        fit.epochs = epoch
        elapsed = time.perf_counter() - self.start
        over_time = config.max_seconds is not None and elapsed >= config.max_seconds
        if self.evaluator is not None and (epoch % config.eval_every == 0 or epoch == config.max_epochs
                                           or over_time):
            ndcg = self.evaluator.evaluate(*valid_vectors()).metrics["ndcg@10"]
            fit.valid_ndcg[epoch] = round(float(ndcg), 5)
            self.say(f"epoch {epoch}: loss {mean_loss:.4f}, valid ndcg@10 {ndcg:.4f} ({elapsed:.0f}s)")
            if ndcg > self.best:
                self.best, self.best_state, self.bad = ndcg, copy.deepcopy(self.model.state_dict()), 0
                fit.best_epoch = epoch
            else:
                self.bad += 1
                if self.bad >= config.patience:
                    fit.stopped = "early_stopping"
                    return True
        else:
            self.say(f"epoch {epoch}: loss {mean_loss:.4f} ({elapsed:.0f}s)")
        if over_time:
            fit.stopped = "time_budget"
            return True
        return False

    def finish(self) -> SASRecFit:
        """Load the best weights (the last ones when nothing was evaluated), eval mode, the wall time."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        else:
            self.fit.best_epoch = self.fit.epochs
        self.model.eval()
        self.fit.seconds = time.perf_counter() - self.start
        return self.fit


def train_sasrec(data: SASRecData, config: SASRecConfig | None = None,
                 progress: Callable[[str], None] | None = None) -> SASRecFit:
    """Train SASRec on ``data.train`` with early stopping on validation NDCG@10; returns the best weights."""
    config = config or SASRecConfig()
    say = progress or logger.info
    old_threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        return _train(data, config, say)
    finally:
        torch.set_num_threads(old_threads)


def _train(data: SASRecData, config: SASRecConfig, say: Callable[[str], None]) -> SASRecFit:
    model = build_sasrec(data.n_items, config)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(0.9, 0.98))
    rng = np.random.default_rng([config.seed, 17])
    trainable = [i for i, s in enumerate(data.train) if len(s) >= 2]
    if not trainable:
        raise ValueError("no user has two training items: nothing to learn from")
    evaluator = valid_evaluator(data)
    tracker = EpochTracker(model, config, evaluator, say)
    for epoch in range(1, config.max_epochs + 1):
        order = rng.permutation(trainable)
        total, batches = 0.0, 0
        for b in range(0, len(order), config.batch_size):
            seqs = [data.train[i] for i in order[b:b + config.batch_size]]
            seq, pos, neg = training_batch(seqs, data.n_items, config.maxlen, rng)
            x, _ = _as_batch({"seq": seq, "pos": pos, "neg": neg})
            pos_logits, neg_logits = model(x)
            loss = bce_loss(pos_logits, neg_logits, x["pos"])
            if config.l2_emb:
                loss = loss + config.l2_emb * item_table(model).weight.pow(2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach())
            batches += 1
        if tracker.end_epoch(epoch, total / max(batches, 1),
                             lambda: (user_vectors(model, data.valid_history, config.maxlen), item_vectors(model))):
            break
    return tracker.finish()


def sasrec_evaluators(data: SASRecData, protocols: Sequence[EvalConfig] | None = None,
                      item_popularity: np.ndarray | None = None) -> dict[str, RetrievalEvaluator]:
    """One :class:`RetrievalEvaluator` per protocol on the test rows (history excluded), keyed by protocol name.
    Default: full ranking and 100 sampled candidates (99 uniform seeded negatives), as in ``bench/baselines.py``."""
    protocols = protocols or [EvalConfig(protocol="full", ties="average"),
                              EvalConfig(protocol="sampled", num_negatives=99, seed=0, ties="average")]
    exclude = [h - 1 for h in data.test_history]
    placeholder = np.zeros((data.n_items, 1), np.float32)  # the item matrix comes with every call
    return {p.protocol: RetrievalEvaluator(placeholder, data.test_target, exclude, p, item_ids=data.item_ids,
                                           user_ids=data.users, item_popularity=item_popularity)
            for p in protocols}


def score_sasrec(model: torch.nn.Module, data: SASRecData,
                 evaluators: dict[str, RetrievalEvaluator] | None = None) -> dict[str, EvalResult]:
    """Per-user test results of a trained model under each protocol: ranks and per-user metrics, for paired
    intervals against other methods scored on the same users (:func:`evaluate_sasrec` keeps only the means)."""
    evaluators = evaluators or sasrec_evaluators(data)
    users, items = user_vectors(model, data.test_history, model.max_len), item_vectors(model)
    return {name: ev.evaluate(users, items) for name, ev in evaluators.items()}


def evaluate_sasrec(model: torch.nn.Module, data: SASRecData,
                    evaluators: dict[str, RetrievalEvaluator] | None = None) -> dict[str, dict[str, float]]:
    """Test metrics of a trained model under each protocol (``{"full": {...}, "sampled": {...}}``)."""
    return {name: result.metrics for name, result in score_sasrec(model, data, evaluators).items()}
