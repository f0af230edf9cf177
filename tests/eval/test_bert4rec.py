"""BERT4Rec baseline: Cloze batches, a tiny model that learns a next-item rule, and the shared evaluator."""

from __future__ import annotations

import numpy as np
import torch

from bluerec.eval.bert4rec import (BERT4RecConfig, cloze_batch, evaluate_bert4rec, item_vectors, prediction_tokens,
                                   train_bert4rec, user_vectors)
from bluerec.eval.evaluator import EvalConfig, RetrievalEvaluator
from bluerec.eval.sasrec import SASRecData


def toy_data(n_users: int = 200, n_items: int = 150, length: int = 10, seed: int = 0) -> SASRecData:
    """After item i comes item (i + 1) mod n (1-based rows), random start."""
    rng = np.random.default_rng(seed)
    users, train, vh, vt, th, tt = [], [], [], [], [], []
    for u in range(n_users):
        start = int(rng.integers(0, n_items))
        seq = np.array([(start + k) % n_items + 1 for k in range(length)], dtype=np.int64)
        users.append(f"u{u}")
        train.append(seq[:-2])
        vh.append(seq[:-2])
        vt.append(seq[-2] - 1)
        th.append(seq[:-1])
        tt.append(seq[-1] - 1)
    return SASRecData([f"i{i}" for i in range(n_items)], users, train, vh, np.array(vt), th, np.array(tt))


def test_cloze_batch_masks_real_positions_only_and_keeps_labels():
    seqs = [np.array([3, 4, 5]), np.array([7, 8, 9, 10, 11, 12])]
    tokens, labels = cloze_batch(seqs, n_items=20, maxlen=5, mask_prob=0.5, last_item_prob=0.0,
                                 rng=np.random.default_rng(0))
    assert tokens[0, :2].tolist() == [0, 0] and labels[0, :2].tolist() == [0, 0]
    original = np.array([[0, 0, 3, 4, 5], [8, 9, 10, 11, 12]])
    masked = labels != 0
    assert masked.sum(axis=1).min() >= 1
    assert (tokens[masked] == 21).all() and (labels[masked] == original[masked]).all()
    assert (tokens[~masked] == original[~masked]).all()
    only_last, last_labels = cloze_batch(seqs, 20, 5, 0.5, 1.0, np.random.default_rng(0))
    assert (last_labels[:, :-1] == 0).all() and (only_last[:, -1] == 21).all()


def test_prediction_tokens_append_the_mask_after_the_newest_items():
    out = prediction_tokens([np.array([1, 2, 3, 4, 5, 6])], n_items=9, maxlen=4)
    assert out.tolist() == [[4, 5, 6, 10]]


def test_tiny_bert4rec_trains_and_ranks_above_popularity():
    torch.set_num_threads(1)
    data = toy_data()
    config = BERT4RecConfig(hidden=32, blocks=1, heads=2, maxlen=10, mask_prob=0.4, lr=5e-3, warmup_steps=5,
                            batch_size=32, max_epochs=40, eval_every=5, patience=3, seed=0)
    fit = train_bert4rec(data, config)
    assert fit.losses[-1] < 0.7 * fit.losses[0], fit.losses
    assert fit.valid_ndcg and fit.best_epoch > 0
    users, items = user_vectors(fit.model, data.test_history), item_vectors(fit.model)
    assert users.shape == (200, 33) and items.shape == (150, 33)
    metrics = evaluate_bert4rec(fit.model, data)
    counts = np.bincount(np.concatenate(data.train) - 1, minlength=data.n_items).astype(np.float32)
    pop = RetrievalEvaluator(counts[:, None], data.test_target, [h - 1 for h in data.test_history],
                             EvalConfig(protocol="full", ties="average"))
    pop_ndcg = pop(np.ones((len(data.users), 1), np.float32))["ndcg@10"]
    assert metrics["full"]["ndcg@10"] > pop_ndcg + 0.3, (metrics, pop_ndcg)
    assert set(metrics) == {"full", "sampled"}
    # Deterministic given the seed.
    again = train_bert4rec(data, config.model_copy(update={"max_epochs": 2}))
    once = train_bert4rec(data, config.model_copy(update={"max_epochs": 2}))
    assert again.losses == once.losses
