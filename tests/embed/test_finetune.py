"""Embedder fine-tuning: pairs from train users, hard negatives outside the history, weights change and the
training loss goes down, the folder loads as an embedder."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bluerec.data.dataset import PreparedDataset
from bluerec.embed import Embedder, EmbedderConfig
from bluerec.embed.finetune import FinetuneConfig, build_pairs, finetune_embedder, mine_hard_negatives
from support.synth_prepared import synth_prepared

_spec = importlib.util.spec_from_file_location("_embed_fixtures", Path(__file__).parent / "conftest.py")
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    return synth_prepared(tmp_path_factory.mktemp("ft"))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return _fixtures.build_tiny_model(tmp_path_factory.mktemp("tiny"), hidden=32)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_hard_negatives_skip_target_history_and_duplicate_texts():
    emb = np.eye(6, dtype=np.float32)
    emb[1] = emb[0] * 0.9 + emb[1] * 0.1  # item 1 is the target's nearest neighbour
    emb[2] = emb[0] * 0.8 + emb[2] * 0.2
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    texts = ["a", "b", "a", "d", "e", "f"]  # item 2 has the target's text
    neg, short = mine_hard_negatives(emb, np.array([0]), [np.array([3])], texts, num=2, ranks=(0, 2), seed=0)
    # Ranked without target 0, same-text 2 and history 3: [1, then 4 and 5 tied]; window [0, 2) = 1 + one of them.
    chosen = set(neg[0].tolist())
    assert len(chosen) == 2 and 1 in chosen and chosen <= {1, 4, 5}
    assert short == 0


def test_pairs_come_from_train_users_latest_rows(dataset_dir, tiny_model):
    ds = PreparedDataset(dataset_dir)
    emb = Embedder(EmbedderConfig(model=str(tiny_model)))
    cfg = FinetuneConfig(dataset=dataset_dir, profiles="history_text", output_dir=dataset_dir.parent / "x",
                         num_hard_negatives=2)
    from bluerec.embed import embed_items

    item_emb = embed_items(emb, ds.items.ids, ds.items.texts)
    pairs = build_pairs(cfg, ds, emb, item_emb)
    train = {ex.user_id: ex for ex in ds.split("train")}
    assert len(pairs) > 10 and all(len(n) == 2 for n in pairs.negatives)
    for user, target, negs in zip(pairs.user_ids, pairs.targets, pairs.negatives):
        assert user in train
        assert ds.items.texts[int(target)] not in negs


def test_finetuning_changes_weights_lowers_loss_and_loads_as_an_embedder(dataset_dir, tmp_path):
    # The real default embedder (MiniLM, offline): a few steps on the synthetic pairs.
    out = tmp_path / "emb"
    base = Embedder()
    before = {k: v.clone() for k, v in base.model.state_dict().items()}
    cfg = FinetuneConfig(dataset=dataset_dir, profiles="template", output_dir=out, max_pairs=32, epochs=2,
                         batch_size=8, learning_rate=1e-4, num_hard_negatives=1, hard_negative_ranks=(1, 10), seed=0,
                         show_progress=False)
    result = finetune_embedder(cfg)
    assert result.loss_after < result.loss_before - 0.05, (result.loss_before, result.loss_after)
    record = json.loads((out / "finetune.json").read_text())
    assert record["pairs"] == result.pairs and record["loss_after"] < record["loss_before"]
    tuned = Embedder(EmbedderConfig(model=str(out)))
    after = tuned.model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed, "no weight changed"
    assert tuned.model_id != base.model_id
    assert tuned.encode_queries(["red shoe"]).shape[1] == 384
    # Same seed, same result; an existing folder is refused without overwrite.
    with pytest.raises(FileExistsError):
        finetune_embedder(cfg)
    again = finetune_embedder(cfg.model_copy(update={"output_dir": tmp_path / "emb2"}))
    assert again.loss_after == pytest.approx(result.loss_after, rel=1e-5)
    assert not list(tmp_path.glob(".emb*"))  # no temp folder left


def test_profiles_file_pairs_and_missing_users_are_counted(dataset_dir, tiny_model, tmp_path):
    ds = PreparedDataset(dataset_dir)
    from bluerec.profiler.profile import latest_per_user

    users = [ex.user_id for ex in latest_per_user(ds.split("train"))]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps({"user_id": u, "profile": f"likes red {u}"}) + "\n" for u in users[:-3]))
    cfg = FinetuneConfig(dataset=dataset_dir, profiles=str(path), output_dir=tmp_path / "o", num_hard_negatives=0)
    emb = Embedder(EmbedderConfig(model=str(tiny_model)))
    pairs = build_pairs(cfg, ds, emb, np.zeros((len(ds.items), 32), np.float32))
    assert pairs.skipped["missing_profile"] == 3 and len(pairs) == len(users) - 3
    assert pairs.anchors[0].startswith("likes red")
