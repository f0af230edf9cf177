"""The ID-based BERT4Rec baseline (Sun et al., CIKM 2019): a bidirectional Transformer trained with the Cloze task.

No maintained library that installs here ships it: torch-rechub 0.9.0 has SASRec but no BERT4Rec (its
``models.matching`` lists comirec, dssm, gru4rec, mind, narm, sasrec, sine, stamp, youtube_dnn); replay-rec 0.22
fails to install (its ``lightfm`` dependency does not build); recbole 1.2.1 is stale against today's numpy. So this
is a compact, faithful implementation on PyTorch's own ``nn.TransformerEncoder``, sharing every piece of data
plumbing and scoring with :mod:`bluerec.eval.sasrec` (the same :class:`~bluerec.eval.sasrec.SASRecData`, the same
early stopping on validation NDCG@10, the same :class:`~bluerec.eval.evaluator.RetrievalEvaluator` protocols).

What follows the paper (Section 3 and 4 of Sun et al. 2019, and the authors' reference code):

- **network**: item + learnable position embeddings, L bidirectional Transformer blocks (GELU, dropout, post-norm),
  an output head ``GELU(W h + b)`` → LayerNorm → dot product with the *shared* item embedding table + an item bias;
- **training**: the Cloze task — each non-padding position of a user's training sequence is replaced by ``[MASK]``
  with probability ``mask_prob`` (at least one per sequence), and with probability ``last_item_prob`` a sequence
  instead masks only its last item (the paper's extra samples that match the prediction task); softmax cross
  entropy over the whole catalogue at the masked positions; Adam with linear warm-up then linear decay;
- **prediction**: ``[MASK]`` appended to the history, the catalogue scored at that position.

Scoring goes through :class:`RetrievalEvaluator`: user vector ``[head(h), 1]``, item vector ``[e_i, bias_i]``, so a
dot product is exactly the model's logit.

Example::

    >>> from bluerec.data.dataset import PreparedDataset
    >>> from bluerec.eval.sasrec import sasrec_data, sasrec_evaluators
    >>> from bluerec.eval.bert4rec import BERT4RecConfig, train_bert4rec, evaluate_bert4rec
    >>> data = sasrec_data(PreparedDataset("data/prepared/beauty2014"))                  # doctest: +SKIP
    >>> fit = train_bert4rec(data, BERT4RecConfig(max_seconds=600))                       # doctest: +SKIP
    >>> evaluate_bert4rec(fit.model, data)["full"]["ndcg@10"]                              # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from pydantic import Field
from torch import nn

from bluerec.config import StrictModel
from bluerec.eval.evaluator import EvalResult, RetrievalEvaluator
from bluerec.eval.sasrec import EpochTracker, SASRecData, SASRecFit, left_pad, sasrec_evaluators, valid_evaluator

logger = logging.getLogger(__name__)


class BERT4RecConfig(StrictModel):
    """BERT4Rec's hyper-parameters (defaults: the paper's Beauty setting, d = 64, L = 2, h = 2, N = 50, ρ = 0.6)
    and the training budget.

    Network: hidden, blocks, heads, dropout (0.1), maxlen. Cloze: mask_prob (ρ), last_item_prob (share of
    sequences that mask only their last item). Optimiser: lr (1e-3; the paper's 1e-4 needs ~10⁵ steps), warmup_steps,
    weight_decay (0.01), batch_size (256 users). Schedule: max_epochs, eval_every, patience, max_seconds (wall-clock
    budget; None = unbounded). seed: weights, order and masks. threads: torch CPU threads while training.
    """

    hidden: int = Field(64, ge=2)
    blocks: int = Field(2, ge=1)
    heads: int = Field(2, ge=1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    maxlen: int = Field(50, ge=2)
    mask_prob: float = Field(0.6, gt=0.0, le=1.0)
    last_item_prob: float = Field(0.1, ge=0.0, le=1.0)
    lr: float = Field(1e-3, gt=0)
    warmup_steps: int = Field(100, ge=0)
    weight_decay: float = Field(0.01, ge=0)
    batch_size: int = Field(256, ge=1)
    max_epochs: int = Field(200, ge=1)
    eval_every: int = Field(5, ge=1)
    patience: int = Field(5, ge=1)
    max_seconds: float | None = Field(None, gt=0)
    seed: int = 0
    threads: int | None = Field(None, ge=1)


class BERT4Rec(nn.Module):
    """Token ids: 0 = padding, 1..n_items = items (dataset row + 1), n_items + 1 = ``[MASK]``."""

    def __init__(self, n_items: int, config: BERT4RecConfig) -> None:
        super().__init__()
        d = config.hidden
        self.n_items, self.max_len, self.mask_token = n_items, config.maxlen, n_items + 1
        self.item_emb = nn.Embedding(n_items + 2, d, padding_idx=0)
        self.pos_emb = nn.Embedding(config.maxlen, d)
        self.norm = nn.LayerNorm(d)
        self.drop = nn.Dropout(config.dropout)
        layer = nn.TransformerEncoderLayer(d, config.heads, dim_feedforward=4 * d, dropout=config.dropout,
                                           activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, config.blocks, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.LayerNorm(d))
        self.out_bias = nn.Parameter(torch.zeros(n_items))
        for name, param in self.named_parameters():  # truncated normal (0.02) as in BERT; biases and norms as built
            if param.dim() > 1:
                nn.init.trunc_normal_(param, std=0.02, a=-0.04, b=0.04)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def hidden_states(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, T, d)`` head outputs for left-padded token ids ``(B, T)``; padding is masked out of attention."""
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.drop(self.norm(self.item_emb(tokens) + self.pos_emb(positions)[None]))
        x = self.encoder(x, src_key_padding_mask=tokens == 0)
        return self.head(x)

    def item_weights(self) -> torch.Tensor:
        """``(n_items, d)``: the shared item embeddings (padding and ``[MASK]`` rows dropped)."""
        return self.item_emb.weight[1:self.n_items + 1]

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return h @ self.item_weights().T + self.out_bias


def cloze_batch(seqs: Sequence[np.ndarray], n_items: int, maxlen: int, mask_prob: float, last_item_prob: float,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(tokens, labels)``, each ``(B, maxlen)``: the newest ``maxlen`` items left-padded, masked positions replaced
    by ``[MASK]`` (= n_items + 1) with their item in ``labels`` (0 elsewhere). Every sequence has at least one mask;
    with probability ``last_item_prob`` only its last item is masked."""
    tokens = left_pad(seqs, maxlen)
    labels = np.zeros_like(tokens)
    for r in range(len(tokens)):
        real = np.flatnonzero(tokens[r])
        if not len(real):
            continue
        if rng.random() < last_item_prob:
            chosen = real[-1:]
        else:
            chosen = real[rng.random(len(real)) < mask_prob]
            if not len(chosen):
                chosen = real[[int(rng.integers(len(real)))]]
        labels[r, chosen] = tokens[r, chosen]
        tokens[r, chosen] = n_items + 1
    return tokens, labels


def prediction_tokens(histories: Sequence[np.ndarray], n_items: int, maxlen: int) -> np.ndarray:
    """The newest ``maxlen - 1`` items of each history followed by ``[MASK]``, left-padded to ``maxlen``."""
    return left_pad([np.append(np.asarray(h[-(maxlen - 1):], dtype=np.int64), n_items + 1) for h in histories],
                    maxlen)


def user_vectors(model: BERT4Rec, histories: Sequence[np.ndarray], batch_size: int = 512) -> np.ndarray:
    """``(n_users, d + 1)``: the head output at the appended ``[MASK]``, with a 1 for the item bias."""
    was = model.training
    model.eval()
    out = []
    try:
        with torch.no_grad():
            for start in range(0, len(histories), batch_size):
                tokens = torch.from_numpy(prediction_tokens(histories[start:start + batch_size], model.n_items,
                                                            model.max_len))
                h = model.hidden_states(tokens)[:, -1]
                out.append(torch.cat([h, torch.ones(len(h), 1)], dim=1).numpy())
    finally:
        model.train(was)
    d = model.item_emb.embedding_dim + 1
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, d), np.float32)


def item_vectors(model: BERT4Rec) -> np.ndarray:
    """``(n_items, d + 1)``: item embedding and output bias, in dataset row order."""
    with torch.no_grad():
        return torch.cat([model.item_weights(), model.out_bias[:, None]], dim=1).numpy().astype(np.float32)


def train_bert4rec(data: SASRecData, config: BERT4RecConfig | None = None,
                   progress: Callable[[str], None] | None = None) -> SASRecFit:
    """Train BERT4Rec on ``data.train`` with early stopping on validation NDCG@10 (full ranking); returns the best
    weights and the training record (the same :class:`~bluerec.eval.sasrec.SASRecFit` SASRec returns)."""
    config = config or BERT4RecConfig()
    say = progress or logger.info
    old_threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        return _train(data, config, say)
    finally:
        torch.set_num_threads(old_threads)


def _train(data: SASRecData, config: BERT4RecConfig, say: Callable[[str], None]) -> SASRecFit:
    torch.manual_seed(config.seed)
    model = BERT4Rec(data.n_items, config)
    model.train()
    rng = np.random.default_rng([config.seed, 23])
    trainable = [i for i, s in enumerate(data.train) if len(s) >= 1]
    if not trainable:
        raise ValueError("no user has a training item: nothing to learn from")
    steps_per_epoch = math.ceil(len(trainable) / config.batch_size)
    total_steps = steps_per_epoch * config.max_epochs
    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    no_decay = [p for n, p in model.named_parameters() if p.dim() <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=config.lr)
    warm = max(config.warmup_steps, 1)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total_steps - s) / max(total_steps - warm, 1))))
    evaluator = valid_evaluator(data)
    tracker = EpochTracker(model, config, evaluator, say)
    for epoch in range(1, config.max_epochs + 1):
        order = rng.permutation(trainable)
        total, batches = 0.0, 0
        for b in range(0, len(order), config.batch_size):
            seqs = [data.train[i] for i in order[b:b + config.batch_size]]
            tokens, labels = cloze_batch(seqs, data.n_items, config.maxlen, config.mask_prob,
                                         config.last_item_prob, rng)
            tokens_t, labels_t = torch.from_numpy(tokens), torch.from_numpy(labels)
            h = model.hidden_states(tokens_t)
            masked = labels_t != 0
            loss = nn.functional.cross_entropy(model.logits(h[masked]), labels_t[masked] - 1)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            total += float(loss.detach())
            batches += 1
        if tracker.end_epoch(epoch, total / max(batches, 1),
                             lambda: (user_vectors(model, data.valid_history), item_vectors(model))):
            break
    return tracker.finish()


def score_bert4rec(model: BERT4Rec, data: SASRecData,
                   evaluators: dict[str, RetrievalEvaluator] | None = None) -> dict[str, EvalResult]:
    """Per-user test results under each protocol (default: :func:`~bluerec.eval.sasrec.sasrec_evaluators`, the
    baselines' full ranking and 100 sampled candidates), for paired intervals against other methods."""
    evaluators = evaluators or sasrec_evaluators(data)
    users, items = user_vectors(model, data.test_history), item_vectors(model)
    return {name: ev.evaluate(users, items) for name, ev in evaluators.items()}


def evaluate_bert4rec(model: BERT4Rec, data: SASRecData,
                      evaluators: dict[str, RetrievalEvaluator] | None = None) -> dict[str, dict[str, float]]:
    """Test metrics under each protocol (the means of :func:`score_bert4rec`)."""
    return {name: result.metrics for name, result in score_bert4rec(model, data, evaluators).items()}
