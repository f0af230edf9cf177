"""Run the zero-shot retrieval evaluation of one or more methods on a prepared dataset.

``bluerec evaluate`` is a thin wrapper over :class:`EvaluationRun`: the catalogue is embedded once
(cached on disk), each method's queries are built through one path (*profile text or vector → embed →
retrieve*), ranked under every protocol with the **same** sampled negatives for every method, and the
run folder gets per-user results, the profile texts used, ``summary.json`` and ``summary.md`` (atomic).

Example:
    ::

        from bluerec.eval.run import EvaluateConfig, EvaluationRun

        run = EvaluationRun(EvaluateConfig(dataset="runs/quickstart/data", max_users=500))
        summary = run.run_all("runs/quickstart/eval")
        print(summary["results"]["last_item"]["full"]["ndcg@10"])
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from bluerec.config import StrictModel
from bluerec.data.dataset import Example, PreparedDataset
from bluerec.data.errors import DataError
from bluerec.embed import Embedder, EmbedderConfig, embed_items
from bluerec.eval.baselines import BASELINES, Queries, baseline_queries, text_queries
from bluerec.errors import UserError
from bluerec.eval.evaluator import EvalConfig, EvalResult, RetrievalEvaluator, save_user_results
from bluerec.eval.retrieval import eligible_negative_counts
from bluerec.io import (make_temp_dir, output_lock, read_jsonl, remove_stale_siblings, remove_tree, write_json_atomic,
                        write_jsonl_atomic, write_text_atomic)

logger = logging.getLogger(__name__)

BaselineMethod = Literal["popularity", "history_text", "mean_embedding", "last_item", "template"]


class EvaluateConfig(StrictModel):
    """What ``bluerec evaluate`` measures (see ``configs/evaluate/*.yaml``).

    Parameters:
        dataset: a prepared-dataset folder (``bluerec data prepare``).
        methods: baselines to run (default: all of them).
        profiles: extra methods from profile files: ``{name: profiles.jsonl}`` (rows ``user_id``, ``profile``).
        split: ``test`` (default) or ``valid`` — choose anything on ``valid``.
        history_items: N most recent items used by history text, mean embedding and template (default 20).
        max_users: evaluate a seeded random sample of users (quick looks only; default all).
        protocols: the ranking protocols (default: full ranking, and 100 sampled candidates). When some
            user has fewer eligible negatives than a sampled protocol asks for (a small catalogue), the run
            stops at once with the numbers if the protocols were given; with the default protocols it uses the
            largest count every user has (the same for all users, so methods stay comparable), says so, and
            records it in ``summary.json``.
    """

    dataset: Path
    methods: list[BaselineMethod] = Field(default_factory=lambda: list(BASELINES))
    profiles: dict[str, Path] = Field(default_factory=dict)
    split: Literal["valid", "test"] = "test"
    history_items: int = Field(20, ge=1)
    max_users: int | None = Field(None, ge=1)
    seed: int = 0
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig)
    protocols: list[EvalConfig] = Field(
        default_factory=lambda: [EvalConfig(protocol="full"), EvalConfig(protocol="sampled", num_negatives=99)]
    )
    cache_dir: Path | None = Path(".cache/embeddings")  # item and query embeddings, keyed by model + text hash


def select_examples(dataset: PreparedDataset, split: str, max_users: int | None, seed: int) -> list[Example]:
    """All examples of ``split``, or a seeded sample of ``max_users`` of them (in file order)."""
    examples = dataset.split(split)
    if max_users is not None and max_users < len(examples):
        pick = np.sort(np.random.default_rng(seed).choice(len(examples), size=max_users, replace=False))
        examples = [examples[i] for i in pick]
    return examples


def load_profile_texts(path: str | Path, examples: list[Example]) -> list[str]:
    """Profiles JSONL (``{"user_id", "profile", ...}``) in the order of ``examples``; every user must be present."""
    by_user = {str(r["user_id"]): str(r.get("profile") or "") for r in read_jsonl(path)}
    missing = [ex.user_id for ex in examples if ex.user_id not in by_user]
    if missing:
        raise DataError(path, None, "user_id", f"{len(missing)} evaluated users have no profile (e.g. {missing[0]!r})")
    return [by_user[ex.user_id] for ex in examples]


class EvaluationRun:
    """Shared state of one evaluation: dataset, examples, embedder, item matrix and one evaluator per protocol."""

    def __init__(self, config: EvaluateConfig, embedder: Embedder | None = None,
                 say: Callable[[str], None] | None = None, warn: Callable[[str], None] | None = None):
        self.config = config
        self.say = say or (lambda msg: logger.info(msg))
        self.warn = warn or (lambda msg: logger.warning(msg))
        self.dataset = PreparedDataset(config.dataset)
        self.examples = select_examples(self.dataset, config.split, config.max_users, config.seed)
        items = self.dataset.items
        index = items.index
        targets = np.asarray([index[ex.item_id] for ex in self.examples], dtype=np.int64)
        exclude = [np.asarray([index[i] for i in self.dataset.full_history(ex)], dtype=np.int64) for ex in self.examples]
        self._fit_sampled_protocols(targets, exclude, len(items), items.popularity)  # before any heavy work
        self.embedder = embedder or Embedder(config.embedder)
        self.say(f"embedding {len(items):,} items with {self.embedder.model_id}")
        self.item_emb = embed_items(self.embedder, items.ids, items.texts, cache_dir=config.cache_dir)
        user_ids = [ex.user_id for ex in self.examples]
        # One evaluator per protocol, shared by every method: identical sampled negatives for all of them.
        self.evaluators = {
            p.protocol: RetrievalEvaluator(self.item_emb, targets, exclude, p, item_ids=items.ids,
                                           user_ids=user_ids, item_popularity=items.popularity)
            for p in self.config.protocols
        }
        self.results: dict[str, dict[str, EvalResult]] = {}
        self.texts: dict[str, list[str]] = {}

    def _fit_sampled_protocols(self, targets: np.ndarray, exclude: list[np.ndarray], n_items: int,
                               popularity: np.ndarray) -> None:
        """Check each sampled protocol against the catalogue (see :class:`EvaluateConfig`)."""
        explicit = "protocols" in self.config.model_fields_set
        fitted: list[EvalConfig] = []
        for p in self.config.protocols:
            if p.protocol != "sampled" or not len(targets):
                fitted.append(p)
                continue
            pool = eligible_negative_counts(n_items, targets, exclude if p.exclude_history else None,
                                            popularity=popularity if p.negative_sampling == "popularity" else None)
            short = int((pool < p.num_negatives).sum())
            if not short:
                fitted.append(p)
                continue
            fewest = int(pool.min())
            numbers = (f"sampled protocol: {short:,} of {len(pool):,} {self.config.split} users have fewer than "
                       f"num_negatives={p.num_negatives} eligible negative items in a catalogue of {n_items:,} items "
                       f"(fewest: {fewest}, user {self.examples[int(pool.argmin())].user_id!r})")
            if explicit:
                raise UserError(f"{numbers}; set num_negatives <= {fewest} for this protocol in the config, "
                                "or use --protocol full")
            if fewest < 1:
                self.warn(f"{numbers}; the sampled protocol is left out of this run")
                continue
            self.warn(f"{numbers}; using {fewest} negatives for every user instead (recorded in summary.json)")
            fitted.append(p.model_copy(update={"num_negatives": fewest}))
        if fitted != list(self.config.protocols):
            self.config = self.config.model_copy(update={"protocols": fitted})

    def queries(self, method: str) -> Queries:
        if method in self.config.profiles:
            texts = load_profile_texts(self.config.profiles[method], self.examples)
            return text_queries(texts, self.embedder, self.item_emb, self.config.cache_dir)
        return baseline_queries(method, self.dataset, self.examples, self.embedder,  # type: ignore[arg-type]
                                self.item_emb, self.config.history_items, self.config.cache_dir)

    def evaluate_queries(self, name: str, queries: Queries) -> dict[str, dict[str, float]]:
        """Score one method under every protocol; keeps the per-user results for :meth:`save`."""
        self.results[name] = {p: ev.evaluate(queries.vectors, queries.items) for p, ev in self.evaluators.items()}
        if queries.texts is not None:
            self.texts[name] = queries.texts
        return {p: r.metrics for p, r in self.results[name].items()}

    def evaluate_texts(self, name: str, texts: list[str]) -> dict[str, dict[str, float]]:
        """Score profile texts (one per example, in order) under every protocol."""
        return self.evaluate_queries(name, text_queries(texts, self.embedder, self.item_emb, self.config.cache_dir))

    def run_all(self, out_dir: str | Path | None = None) -> dict[str, Any]:
        for method in [*self.config.methods, *self.config.profiles]:
            start = time.perf_counter()
            metrics = self.evaluate_queries(method, self.queries(method))
            first = next(iter(metrics.values()))
            self.say(f"{method}: ndcg@10={first.get('ndcg@10', float('nan')):.4f} ({time.perf_counter() - start:.1f}s)")
        summary = self.summary()
        if out_dir is not None:
            self.save(out_dir)
        return summary

    def summary(self) -> dict[str, Any]:
        return {
            "dataset": str(self.config.dataset),
            "split": self.config.split,
            "n_users": len(self.examples),
            "n_items": len(self.dataset.items),
            "embedder": self.embedder.model_id,
            "config": self.config.model_dump(mode="json"),
            "results": {m: {p: r.metrics for p, r in by_p.items()} for m, by_p in self.results.items()},
        }

    def save(self, out_dir: str | Path) -> Path:
        """Write per-user results, profile texts, ``summary.json`` and ``summary.md`` into ``out_dir``.

        Everything is first written to a hidden folder beside ``out_dir`` and moved in only when all of it
        was written, so a failure (a full disk) leaves the previous results as they were, never a mix."""
        out = Path(out_dir)
        out.parent.mkdir(parents=True, exist_ok=True)
        with output_lock(out):
            remove_stale_siblings(out)
            stage = make_temp_dir(f".{out.name}.tmp-", out.parent)
            try:
                for method, by_protocol in self.results.items():
                    for protocol, result in by_protocol.items():
                        save_user_results(result, stage / "users" / f"{method}.{protocol}.parquet")
                for method, texts in self.texts.items():
                    write_jsonl_atomic(stage / "profiles" / f"{method}.jsonl",
                                       ({"user_id": ex.user_id, "profile": t} for ex, t in zip(self.examples, texts)))
                summary = self.summary()
                write_json_atomic(stage / "summary.json", summary)
                write_text_atomic(stage / "summary.md", markdown_table(summary["results"]))
                out.mkdir(exist_ok=True)
                # summary.json last: a reader that sees the new summary finds the new per-user files beside it
                files = sorted((p for p in stage.rglob("*") if p.is_file()), key=lambda p: p.name == "summary.json")
                for path in files:
                    dest = out / path.relative_to(stage)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(path, dest)
            finally:
                remove_tree(stage)
        return out


def markdown_table(results: dict[str, dict[str, dict[str, float]]], ks: tuple[int, ...] = (10,)) -> str:
    """``| method | full NDCG@10 | full Recall@10 | sampled NDCG@10 | ... |`` for every method."""
    protocols = list(dict.fromkeys(p for by_p in results.values() for p in by_p))
    header = ["method"]
    for p in protocols:
        for k in ks:
            header += [f"{p} NDCG@{k}", f"{p} Recall@{k}"]
        header.append(f"{p} MRR")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, by_p in results.items():
        cells = [method]
        for p in protocols:
            m = by_p.get(p, {})
            for k in ks:
                cells += [_fmt(m.get(f"ndcg@{k}")), _fmt(m.get(f"recall@{k}"))]
            cells.append(_fmt(m.get("mrr")))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"
