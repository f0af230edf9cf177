"""Run the zero-shot retrieval evaluation of one or more methods on a prepared dataset.

``bluerec evaluate`` is a thin wrapper over :class:`EvaluationRun`: the catalogue is embedded once
(cached on disk), each method's queries are built through one path (*profile text or vector → embed →
retrieve*), ranked under every protocol with the **same** sampled negatives for every method, and the
run folder gets per-user results, the profile texts used, ``summary.json`` and ``summary.md`` (atomic).

Example:
    ::

        from bluerec.eval.run import EvaluateConfig, EvaluationRun

        run = EvaluationRun(EvaluateConfig(dataset="runs/quickstart/data", max_users=500, seed=0))
        summary = run.run_all("runs/quickstart/eval")
        print(summary["results"]["last_item"]["full"]["ndcg@10"])
        # paired bootstrap 95% interval of template − last_item on the same 500 users
        print(summary["intervals"]["template"]["full"]["last_item"]["ndcg@10"])  # {'diff': ..., 'lo': ..., 'hi': ...}

With ``max_users`` every method, baselines included, is scored on the same seeded sample of users, and
``summary["intervals"]`` holds, for every method, the paired bootstrap interval of its per-user difference to
each reference method (:class:`IntervalConfig`; default references: ``last_item``, ``history_text``,
``template`` and a zero-shot profile method named ``zeroshot`` when the run has one).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from bluerec.config import StrictModel
from bluerec.data.dataset import Example, PreparedDataset
from bluerec.data.errors import DataError
from bluerec.data.transitions import TransitionConfig
from bluerec.embed import Embedder, EmbedderConfig, embed_items
from bluerec.eval.baselines import BASELINES, Queries, baseline_queries, text_queries
from bluerec.errors import UserError
from bluerec.eval.bootstrap import bootstrap_mean_intervals
from bluerec.eval.evaluator import EvalConfig, EvalResult, RetrievalEvaluator, save_user_results
from bluerec.eval.tasks import EvalSetup, build_evaluator
from bluerec.eval.tasks.retrieval import history_rows, target_rows
from bluerec.eval.retrieval import eligible_negative_counts
from bluerec.io import (make_temp_dir, output_lock, read_jsonl, remove_stale_siblings, remove_tree, write_json_atomic,
                        write_jsonl_atomic, write_text_atomic)

logger = logging.getLogger(__name__)

BaselineMethod = Literal["popularity", "history_text", "mean_embedding", "last_item", "template", "successor_text",
                         "successor_mean"]

# Names a zero-shot profile method may be given (``--profiles zeroshot=...``) to be a default reference.
ZERO_SHOT_NAMES: tuple[str, ...] = ("zeroshot", "zero_shot", "zero-shot")
DEFAULT_REFERENCES: tuple[str, ...] = ("last_item", "history_text", "template", *ZERO_SHOT_NAMES)
_METRIC = re.compile(r"^(mrr|(ndcg|recall|mrr)@[1-9][0-9]*)$")


class IntervalConfig(StrictModel):
    """Paired bootstrap intervals of every method's difference to reference methods (same users).

    Parameters:
        references: methods every other method is compared with. None (default): ``last_item``,
            ``history_text``, ``template`` and a zero-shot profile method (named ``zeroshot``, ``zero_shot`` or
            ``zero-shot``), each when the run has it. Named references must be methods of the run.
        metrics: per-user metrics compared (default ``ndcg@10`` and ``recall@10``).
        n_resamples: bootstrap resamples of the users (default 10,000); 0 turns the intervals off.
        confidence: interval level (default 0.95). The resamples are seeded by ``EvaluateConfig.seed``.
    """

    references: list[str] | None = None
    metrics: list[str] = Field(default_factory=lambda: ["ndcg@10", "recall@10"])
    n_resamples: int = Field(10_000, ge=0)
    confidence: float = Field(0.95, gt=0.0, lt=1.0)

    @field_validator("metrics")
    @classmethod
    def _check_metrics(cls, value: list[str]) -> list[str]:
        bad = [m for m in value if not _METRIC.match(m)]
        if bad:
            raise ValueError(f"unknown metric(s) {bad}; allowed: mrr, ndcg@k, recall@k, mrr@k")
        return list(dict.fromkeys(value))


class EvaluateConfig(StrictModel):
    """What ``bluerec evaluate`` measures (see ``configs/evaluate/*.yaml``).

    Parameters:
        dataset: a prepared-dataset folder (``bluerec data prepare``).
        methods: baselines to run (default: all of them).
        profiles: extra methods from profile files: ``{name: profiles.jsonl}`` (rows ``user_id``, ``profile``).
        split: ``test`` (default) or ``valid`` — choose anything on ``valid``.
        history_items: N most recent items used by history text, mean embedding and template (default 20).
        max_users: evaluate a seeded random sample of this many users (default all); every method, baselines
            included, is scored on the same sample. Use it when profiles are costly to generate (an LLM
            profiler), and read the paired intervals rather than the means alone.
        seed: seed of that user sample and of the bootstrap resamples (default 0).
        transitions: how the successor baselines count other users' transitions.
        successors: how many top successors ``successor_mean`` averages with the last item.
        protocols: the ranking protocols (default: full ranking, and 100 sampled candidates). When some
            user has fewer eligible negatives than a sampled protocol asks for (a small catalogue), the run
            stops at once with the numbers if the protocols were given; with the default protocols it uses the
            largest count every user has (the same for all users, so methods stay comparable), says so, and
            records it in ``summary.json``.
        intervals: the paired bootstrap intervals against reference methods (:class:`IntervalConfig`).
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
    transitions: TransitionConfig = Field(default_factory=TransitionConfig)
    successors: int = Field(3, ge=1)
    intervals: IntervalConfig = Field(default_factory=IntervalConfig)

    @model_validator(mode="after")
    def _check_references(self) -> EvaluateConfig:
        methods = [*self.methods, *self.profiles]
        missing = [r for r in self.intervals.references or [] if r not in methods]
        if missing:
            raise ValueError(f"intervals.references {missing} are not methods of this run; methods: {methods}")
        return self


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
        self.n_split_users = len(self.dataset.split(config.split))
        self.examples = select_examples(self.dataset, config.split, config.max_users, config.seed)
        items = self.dataset.items
        setup = EvalSetup(self.dataset, self.examples, config.split, seed=config.seed)
        targets, exclude = target_rows(setup), history_rows(setup)
        self._fit_sampled_protocols(targets, exclude, len(items), items.popularity)  # before any heavy work
        self.embedder = embedder or Embedder(config.embedder)
        self.say(f"embedding {len(items):,} items with {self.embedder.model_id}")
        self.item_emb = embed_items(self.embedder, items.ids, items.texts, cache_dir=config.cache_dir)
        setup.item_embeddings = self.item_emb
        # One evaluator per protocol (the registered retrieval tasks "full" / "sampled"), shared by every method:
        # identical sampled negatives for all of them.
        self.evaluators: dict[str, RetrievalEvaluator] = {
            p.protocol: build_evaluator(p.protocol, setup, p) for p in self.config.protocols
        }
        self.results: dict[str, dict[str, EvalResult]] = {}
        self.texts: dict[str, list[str]] = {}
        self._intervals: tuple[tuple[str, ...], dict[str, Any]] | None = None  # (methods it covers, result)

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

    @property
    def primary_metric(self) -> str | None:
        """The first protocol's primary metric (e.g. ``ndcg@10``): what the run's headline numbers are."""
        return next((ev.primary_metric for ev in self.evaluators.values()), None)

    def queries(self, method: str) -> Queries:
        if method in self.config.profiles:
            texts = load_profile_texts(self.config.profiles[method], self.examples)
            return text_queries(texts, self.embedder, self.item_emb, self.config.cache_dir)
        transitions_cache = self.config.cache_dir.parent if self.config.cache_dir is not None else None
        return baseline_queries(method, self.dataset, self.examples, self.embedder,  # type: ignore[arg-type]
                                self.item_emb, self.config.history_items, self.config.cache_dir,
                                split=self.config.split, transitions=self.config.transitions,
                                successors=self.config.successors, transitions_cache_dir=transitions_cache)

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
        methods = [*self.config.methods, *self.config.profiles]
        missing = [r for r in self.config.intervals.references or [] if r not in methods]
        if missing:
            raise ValueError(f"interval reference(s) {missing} are not methods of this run; methods: {methods}")
        for method in methods:
            start = time.perf_counter()
            metrics = self.evaluate_queries(method, self.queries(method))
            protocol, first = next(iter(metrics.items()))
            primary = self.evaluators[protocol].primary_metric
            self.say(f"{method}: {primary}={first.get(primary, float('nan')):.4f} ({time.perf_counter() - start:.1f}s)")
            for protocol, result in self.results[method].items():
                if result.search is not None and "recall@10" in result.search:
                    self.say(f"  {protocol}: approximate search {result.search['index']}, recall@10 against exact "
                             f"search {result.search['recall@10']:.4f} ({result.search['recall_queries']} queries)")
        summary = self.summary()
        if out_dir is not None:
            self.save(out_dir)
        return summary

    def references(self) -> list[str]:
        """The reference methods of the intervals that this run has results for, in the configured order."""
        wanted = self.config.intervals.references
        if wanted is None:
            return [m for m in DEFAULT_REFERENCES if m in self.results]
        missing = [m for m in wanted if m not in self.results]
        if missing:
            logger.warning("interval reference(s) %s have no results in this run and are skipped", missing)
        return [m for m in wanted if m in self.results]

    def intervals(self) -> dict[str, Any]:
        """``{method: {protocol: {reference: {metric: {diff, lo, hi}}}}}``: paired bootstrap of method − reference.

        All comparisons share one set of seeded user resamples; a method is not compared with itself.
        Computed once per set of evaluated methods.
        """
        key = tuple(self.results)
        if self._intervals is not None and self._intervals[0] == key:
            return self._intervals[1]
        cfg = self.config.intervals
        refs = self.references()
        pairs: list[tuple[str, str, str, str]] = []
        rows: list[np.ndarray] = []
        for method, by_p in self.results.items():
            for protocol, result in by_p.items():
                for ref in refs:
                    if ref == method or protocol not in self.results[ref]:
                        continue
                    for metric in cfg.metrics:
                        pairs.append((method, protocol, ref, metric))
                        rows.append(result.per_user(metric) - self.results[ref][protocol].per_user(metric))
        out: dict[str, Any] = {}
        if rows and cfg.n_resamples > 0 and len(self.examples) > 0:
            mean, lo, hi = bootstrap_mean_intervals(np.stack(rows), n_resamples=cfg.n_resamples,
                                                    confidence=cfg.confidence, seed=self.config.seed)
            for (method, protocol, ref, metric), d, a, b in zip(pairs, mean, lo, hi):
                cell = out.setdefault(method, {}).setdefault(protocol, {}).setdefault(ref, {})
                cell[metric] = {"diff": float(d), "lo": float(a), "hi": float(b)}
        self._intervals = (key, out)
        return out

    def summary(self) -> dict[str, Any]:
        """Metrics of every method plus the user sample and the paired intervals (``references``,
        ``intervals``, ``interval_settings``, ``sample``)."""
        cfg = self.config.intervals
        return {
            "dataset": str(self.config.dataset),
            "split": self.config.split,
            "n_users": len(self.examples),
            "n_items": len(self.dataset.items),
            "embedder": self.embedder.model_id,
            "config": self.config.model_dump(mode="json"),
            "results": {m: {p: r.metrics for p, r in by_p.items()} for m, by_p in self.results.items()},
            # what ranks methods: each protocol evaluator's primary metric (higher is better), and the run's methods
            "primary_metric": self.primary_metric,
            "primary_metrics": {p: ev.primary_metric for p, ev in self.evaluators.items()},
            "methods": list(self.results),
            "profile_methods": [m for m in self.results if m not in self.config.methods],  # not baselines
            "sample": {"n_users": len(self.examples), "n_split_users": self.n_split_users,
                       "max_users": self.config.max_users, "seed": self.config.seed},
            "references": self.references(),
            "interval_settings": {"method": "paired bootstrap, percentile", "n_resamples": cfg.n_resamples,
                                  "confidence": cfg.confidence, "seed": self.config.seed, "metrics": cfg.metrics},
            "intervals": self.intervals(),
            # approximate (ANN) searches only: index settings and recall@10 against exact search
            "search": {m: {p: r.search for p, r in by_p.items() if r.search is not None}
                       for m, by_p in self.results.items() if any(r.search is not None for r in by_p.values())},
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
                write_text_atomic(stage / "summary.md", markdown_table(summary["results"]) + intervals_markdown(summary))
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



def interval_cell(cell: dict[str, float] | None) -> str:
    """A paired interval as a table cell: ``diff [lo, hi]`` with signs, or ``—`` where there is none.

    Example:
    ```python
    >>> interval_cell({"diff": 0.0015, "lo": -0.0003, "hi": 0.0033})
    '+0.0015 [-0.0003, +0.0033]'
    >>> interval_cell(None)
    '—'
    ```
    """
    if not cell:
        return "—"
    return f"{cell['diff']:+.4f} [{cell['lo']:+.4f}, {cell['hi']:+.4f}]"


def interval_tables(summary: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """``(title, header, rows)`` per protocol and metric: each method's mean and its paired interval
    against every reference (``—`` for the reference itself)."""
    intervals = summary.get("intervals") or {}
    refs = list(summary.get("references") or [])
    settings = summary.get("interval_settings") or {}
    if not refs or not intervals:
        return []
    level = f"{100 * float(settings.get('confidence', 0.95)):g}%"
    results = summary.get("results") or {}
    protocols = list(dict.fromkeys(p for by_p in results.values() for p in by_p))
    tables = []
    for protocol in protocols:
        for metric in settings.get("metrics") or []:
            title = (f"{protocol} {metric}: mean and paired bootstrap {level} interval of the difference "
                     f"(method − reference), {summary.get('n_users', 0):,} users")
            header = ["method", metric, *[f"− {r}" for r in refs]]
            rows = []
            for method, by_p in results.items():
                if protocol not in by_p:
                    continue
                cells = (intervals.get(method) or {}).get(protocol) or {}
                rows.append([method, _fmt(by_p[protocol].get(metric)),
                             *[interval_cell((cells.get(r) or {}).get(metric)) for r in refs]])
            tables.append((title, header, rows))
    return tables


def intervals_markdown(summary: dict[str, Any]) -> str:
    """The :func:`interval_tables` as markdown (empty when the run has no intervals)."""
    out = []
    for title, header, rows in interval_tables(summary):
        out += ["", f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out) + "\n" if out else ""


def print_intervals(summary: dict[str, Any], console: Any = None, protocols: tuple[str, ...] | None = None) -> None:
    """Print the :func:`interval_tables` with rich (intervals above zero in green, below in red)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    for title, header, rows in interval_tables(summary):
        if protocols is not None and title.split(" ", 1)[0] not in protocols:
            continue
        table = Table(title=title)
        for i, name in enumerate(header):
            table.add_column(name, justify="left" if i == 0 else "right", style="bold" if i == 0 else None)
        for row in rows:
            table.add_row(*row[:2], *[_colour(c) for c in row[2:]])
        console.print(table)


def _colour(cell: str) -> str:
    m = re.match(r"^[+-][0-9.]+ \[([+-][0-9.]+), ([+-][0-9.]+)\]$", cell)
    if not m:
        return cell
    lo, hi = float(m.group(1)), float(m.group(2))
    return f"[green]{cell}[/]" if lo > 0 else f"[red]{cell}[/]" if hi < 0 else cell
