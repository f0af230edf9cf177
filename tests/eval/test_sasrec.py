"""SASRec baseline: data plumbing, a training run that learns, and the project's evaluator on top."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bluerec.eval.evaluator import EvalConfig, RetrievalEvaluator
from bluerec.eval.sasrec import (SASRecConfig, SASRecData, evaluate_sasrec, left_pad, sasrec_evaluators,
                                 train_sasrec, training_batch, user_vectors)


def toy_data(n_users: int = 160, n_items: int = 40, length: int = 12, seed: int = 0) -> SASRecData:
    """Deterministic next-item rule: after item i comes item (i + 1) mod n (1-based rows), random start."""
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


def test_left_pad_keeps_the_newest_items_right_aligned():
    out = left_pad([np.array([1, 2, 3]), np.array([5, 6, 7, 8, 9])], 4)
    assert out.tolist() == [[0, 1, 2, 3], [6, 7, 8, 9]]


def test_training_batch_shifts_by_one_and_draws_negatives_outside_the_sequence():
    seq = np.array([3, 4, 5, 6])
    inputs, pos, neg = training_batch([seq], n_items=50, maxlen=5, rng=np.random.default_rng(0))
    assert inputs.tolist() == [[0, 0, 3, 4, 5]]
    assert pos.tolist() == [[0, 0, 4, 5, 6]]
    assert (neg[pos == 0] == 0).all()
    drawn = neg[pos != 0]
    assert ((drawn >= 1) & (drawn <= 50)).all() and not np.isin(drawn, seq).any()




def test_sasrec_learns_a_deterministic_next_item_rule_better_than_popularity():
    torch.set_num_threads(1)
    data = toy_data(n_users=300, n_items=150)
    config = SASRecConfig(hidden=32, dropout=0.1, maxlen=10, lr=5e-3, batch_size=32, max_epochs=30,
                          eval_every=10, patience=3, seed=0)
    fit = train_sasrec(data, config)
    assert fit.losses[-1] < 0.7 * fit.losses[0], fit.losses
    assert fit.valid_ndcg and fit.best_epoch > 0

    metrics = evaluate_sasrec(fit.model, data)
    # Popularity under the same evaluator: one score per item (train counts), ties averaged.
    counts = np.bincount(np.concatenate(data.train) - 1, minlength=data.n_items).astype(np.float32)
    pop = RetrievalEvaluator(counts[:, None], data.test_target, [h - 1 for h in data.test_history],
                             EvalConfig(protocol="full", ties="average"))
    pop_ndcg = pop(np.ones((len(data.users), 1), np.float32))["ndcg@10"]
    assert metrics["full"]["ndcg@10"] > 0.5 > pop_ndcg + 0.3, (metrics, pop_ndcg)
    assert set(metrics) == {"full", "sampled"}


def test_user_vectors_handle_a_single_user_and_are_deterministic():
    data = toy_data(n_users=8)
    fit = train_sasrec(data, SASRecConfig(hidden=16, maxlen=10, max_epochs=1, batch_size=4))
    one = user_vectors(fit.model, data.test_history[:1], 10)
    many = user_vectors(fit.model, data.test_history, 10)
    assert one.shape == (1, 16)
    np.testing.assert_allclose(one[0], many[0], rtol=1e-5, atol=1e-6)


def test_evaluators_follow_the_baselines_protocols():
    data = toy_data(n_users=10, n_items=150)
    evs = sasrec_evaluators(data)
    assert evs["full"].config.exclude_history and evs["sampled"].config.num_negatives == 99
    negatives = evs["sampled"].negatives
    assert negatives.shape == (10, 99)
    for row, hist, target in zip(negatives, data.test_history, data.test_target):
        assert target not in row and not np.isin(row, hist - 1).any()


def test_config_rejects_bad_values():
    with pytest.raises(ValueError):
        SASRecConfig(dropout=1.0)
    with pytest.raises(ValueError):
        SASRecConfig(unknown=1)


@pytest.fixture(scope="module")
def synth_dataset(tmp_path_factory: pytest.TempPathFactory):
    from bluerec.config import parse_config
    from bluerec.data.config import PrepareConfig
    from bluerec.data.dataset import PreparedDataset
    from bluerec.data.prepare import prepare_dataset
    from bluerec.data.synth import SynthConfig, write_synth

    root = tmp_path_factory.mktemp("sasrec")
    synth = write_synth(parse_config(SynthConfig, {"domain": "amazon", "n_users": 120, "n_items": 150,
                                                   "n_interests": 8, "seed": 3}), root / "raw")
    prepare_dataset(PrepareConfig(source=synth.source("amazon")), root / "data")
    return PreparedDataset(root / "data")


def test_sasrec_data_keeps_held_out_targets_out_of_training(synth_dataset):
    from bluerec.eval.sasrec import sasrec_data

    data = sasrec_data(synth_dataset)
    index = synth_dataset.items.index
    valid = {ex.user_id: ex for ex in synth_dataset.split("valid")}
    test = {ex.user_id: ex for ex in synth_dataset.split("test")}
    assert len(data.users) == len(test) and data.n_items == len(synth_dataset.items)
    for u, seq, hist in zip(data.users, data.train, data.test_history):
        full = synth_dataset.user_sequences[u]
        assert [index[i] + 1 for i in full[: test[u].seq]] == hist.tolist()  # test input: everything before
        if u in valid:  # training sequence stops before the validation target (and so before the test target)
            assert seq.tolist() == [index[i] + 1 for i in full[: valid[u].seq]]
            assert valid[u].seq < test[u].seq


def test_training_is_seeded():
    torch.set_num_threads(1)
    data = toy_data(n_users=40, n_items=120)
    config = SASRecConfig(hidden=16, maxlen=10, max_epochs=2, eval_every=1, batch_size=16, seed=3)
    a, b = train_sasrec(data, config), train_sasrec(data, config)
    assert a.losses == b.losses and a.valid_ndcg == b.valid_ndcg
    c = train_sasrec(data, config.model_copy(update={"seed": 4}))
    assert c.losses != a.losses
