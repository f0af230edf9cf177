"""Cross-domain transfer: profilers trained on one dataset, evaluated without further training on others.

For every target dataset one :class:`~bluerec.eval.run.EvaluationRun` fixes a seeded sample of ``max_users`` test
users, the embedder and the protocols (full ranking and sampled candidates, identical negatives for every method);
the reference baselines (default ``last_item`` and ``history_text``) are scored on it; then each profiler writes
greedy profiles of exactly those users with the existing generation code
(:func:`~bluerec.profiler.profile.generate_profiles`, as ``bluerec profile`` runs it; resumable) and they are scored beside the references, with paired
bootstrap 95% intervals of profiler − reference on the same users. A profiler whose ``source`` is one of the targets
gives the in-domain cell of the matrix's diagonal.

Resumable per (profiler, target): each finished cell is ``<output_dir>/cells/<profiler>__<target>.json`` and is not
recomputed; a profile file interrupted mid-way continues where it stopped. The matrix is
``<output_dir>/transfer.json`` and ``transfer.md`` (atomic).

Example (``configs/transfer/clothing_to_all.yaml``)::

    >>> from bluerec.config import load_config
    >>> from bluerec.eval.transfer import TransferConfig, run_transfer
    >>> matrix = run_transfer(load_config(TransferConfig, "configs/transfer/clothing_to_all.yaml"))  # doctest: +SKIP
    >>> matrix["cells"]["blue_clothing"]["amazon2014-beauty"]["full"]["ndcg@10"]                    # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from bluerec.config import StrictModel
from bluerec.embed import EmbedderConfig
from bluerec.eval.evaluator import EvalConfig
from bluerec.eval.run import (BaselineMethod, EvaluateConfig, EvaluationRun, IntervalConfig, interval_cell,
                              load_profile_texts)
from bluerec.io import write_json_atomic, write_text_atomic
from bluerec.profiler.config import ProfilerConfig
from bluerec.profiler.prompts import PromptConfig

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class TransferTarget(StrictModel):
    """A target dataset: ``dataset`` (a prepared folder) or ``seqrec`` (a shared seqrec subset folder with
    ``user2item.jsonl.gz`` and ``item2title.jsonl.gz``, prepared once into ``<prepared_root>/<name>`` as
    ``bench/baselines.py`` prepares it: 5-core, leave-last-out)."""

    name: str
    dataset: Path | None = None
    seqrec: Path | None = None

    @model_validator(mode="after")
    def _one_source(self) -> TransferTarget:
        if (self.dataset is None) == (self.seqrec is None):
            raise ValueError(f"target {self.name!r}: give exactly one of dataset (prepared folder) or seqrec")
        if not _NAME.match(self.name):
            raise ValueError(f"target name {self.name!r}: letters, digits, '.', '_' and '-' only")
        return self


class TransferProfiler(StrictModel):
    """A trained profiler: ``name``, ``source`` (the target name it was trained on, for the diagonal; None if none
    of the targets), ``profiler`` (a :class:`~bluerec.profiler.config.ProfilerConfig`; a plain string is its model)
    and ``prompt`` (None: the ``prompt`` of the run's ``train_config.yaml`` beside the model folder, else defaults)."""

    name: str
    source: str | None = None
    profiler: ProfilerConfig
    prompt: PromptConfig | None = None

    @field_validator("profiler", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"model": value} if isinstance(value, (str, Path)) else value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"profiler name {value!r}: letters, digits, '.', '_' and '-' only")
        return value


class TransferConfig(StrictModel):
    """``bluerec transfer -c configs/transfer/*.yaml``.

    Parameters:
        profilers, targets: the matrix's rows and columns.
        output_dir: cells, profiles, per-target run folders, ``transfer.json`` / ``transfer.md``.
        prepared_root: where ``seqrec`` targets are prepared (default ``data/prepared``).
        max_users, seed: the seeded test-user sample of each target (the same for every profiler).
        references: baselines every profiler is compared with (default ``last_item``, ``history_text``).
        embedder, protocols, intervals: as in :class:`~bluerec.eval.run.EvaluateConfig`.
        max_new_tokens, batch_size, device: greedy profile generation (device None: each profiler's own).
    """

    profilers: list[TransferProfiler]
    targets: list[TransferTarget]
    output_dir: Path
    prepared_root: Path = Path("data/prepared")
    split: Literal["valid", "test"] = "test"
    max_users: int | None = Field(500, ge=1)
    seed: int = 0
    references: list[BaselineMethod] = Field(default_factory=lambda: ["last_item", "history_text"])
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig)
    protocols: list[EvalConfig] | None = None
    intervals: IntervalConfig = Field(default_factory=IntervalConfig)
    cache_dir: Path | None = Path(".cache/embeddings")
    max_new_tokens: int = Field(64, ge=1)
    batch_size: int = Field(16, ge=1)
    device: str | None = None

    @model_validator(mode="after")
    def _names(self) -> TransferConfig:
        for kind, names in (("profiler", [p.name for p in self.profilers]), ("target", [t.name for t in self.targets])):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"duplicate {kind} names {dupes}")
        if not self.profilers or not self.targets:
            raise ValueError("give at least one profiler and one target")
        clash = sorted({p.name for p in self.profilers} & set(self.references))
        if clash:
            raise ValueError(f"profiler names {clash} clash with reference baselines")
        return self


def target_dataset(target: TransferTarget, prepared_root: Path, say: Callable[[str], None]) -> Path:
    if target.dataset is not None:
        return target.dataset
    from bluerec.data.prepare import prepared_seqrec

    assert target.seqrec is not None
    return prepared_seqrec(target.seqrec, prepared_root / target.name, progress=lambda m: say(f"  {m}"))


def _prompt_for(p: TransferProfiler) -> PromptConfig:
    """The prompt the profiler was trained with: ``prompt`` of a ``train_config.yaml`` in its folder or beside it
    (a run's ``final/`` or ``best/``), as ``bluerec evaluate --profiler`` reads it; else the defaults."""
    if p.prompt is not None:
        return p.prompt
    import yaml

    folder = Path(p.profiler.model)
    for candidate in (folder / "train_config.yaml", folder.parent / "train_config.yaml"):
        if candidate.is_file():
            return PromptConfig.model_validate((yaml.safe_load(candidate.read_text()) or {}).get("prompt", {}))
    return PromptConfig()


def progress_every(say: Callable[[str], None], label: str, step: float = 0.1) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` that says ``label: done/total users (rate, ETA)`` each time another ``step`` of
    the total is done (and at the end): a few lines per cell in a log, not one per batch."""
    start = time.perf_counter()
    said = [-1.0]

    def report(done: int, total: int) -> None:
        frac = done / total if total else 1.0
        if frac < 1.0 and frac - said[0] < step:
            return
        said[0] = frac
        secs = time.perf_counter() - start
        eta = secs / frac * (1 - frac) if frac > 0 else float("nan")
        say(f"  {label}: {done:,}/{total:,} users ({secs:.0f}s, ~{eta:.0f}s left)")

    return report


def write_user_profiles(profiler: ProfilerConfig, dataset: Any, split: str, path: Path, prompt: PromptConfig,
                        user_ids: list[str], max_new_tokens: int, batch_size: int, device: str | None,
                        progress: Callable[[int, int], None] | None = None) -> Path:
    """Greedy profiles of ``user_ids`` (their latest ``split`` row) into ``path``, resumable (missing users only):
    the same generation code ``bluerec profile`` and ``bluerec evaluate --profiler`` use. ``progress(done, total)``
    after each batch."""
    from bluerec.profiler.backends.base import GenerationConfig
    from bluerec.profiler.loader import load_profiler
    from bluerec.profiler.profile import generate_profiles

    gen = GenerationConfig(num_samples=1, max_new_tokens=max_new_tokens, do_sample=False, batch_size=batch_size)
    backend = load_profiler(profiler, device=device)
    generate_profiles(backend, dataset, split, prompt, gen, path, resume=True, user_ids=user_ids, progress=progress)
    return path


def _cell_path(out: Path, profiler: str, target: str) -> Path:
    return out / "cells" / f"{profiler}__{target}.json"


def run_transfer(config: TransferConfig, say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Fill every missing (profiler, target) cell, then write and return the matrix."""
    from bluerec.data.dataset import PreparedDataset

    say = say or logger.info
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for target in config.targets:
        ref_path = out / "cells" / f"_references__{target.name}.json"
        todo = [p for p in config.profilers if not _cell_path(out, p.name, target.name).exists()]
        if not todo and ref_path.exists():
            say(f"{target.name}: every cell done")
            continue
        folder = target_dataset(target, config.prepared_root, say)
        eval_cfg: dict[str, Any] = {
            "dataset": folder, "methods": list(config.references), "split": config.split,
            "max_users": config.max_users, "seed": config.seed, "embedder": config.embedder,
            "cache_dir": config.cache_dir,
            "intervals": config.intervals.model_copy(update={"references": list(config.references)}),
        }
        if config.protocols is not None:
            eval_cfg["protocols"] = config.protocols
        run = EvaluationRun(EvaluateConfig(**eval_cfg), say=say)
        for ref in config.references:
            run.evaluate_queries(ref, run.queries(ref))
        user_ids = [ex.user_id for ex in run.examples]
        write_json_atomic(ref_path, {"target": target.name, "dataset": str(folder), "n_users": len(user_ids),
                                     "embedder": run.embedder.model_id,
                                     "protocols": [p.model_dump(mode="json") for p in run.config.protocols],
                                     "results": {r: {p: res.metrics for p, res in run.results[r].items()}
                                                 for r in config.references}})
        dataset = PreparedDataset(folder)
        for p in todo:
            start = time.perf_counter()
            path = out / "profiles" / f"{p.name}__{target.name}.{config.split}.jsonl"
            say(f"{p.name} → {target.name}: profiles of {len(user_ids):,} {config.split} users")
            write_user_profiles(p.profiler, dataset, config.split, path, _prompt_for(p), user_ids,
                                config.max_new_tokens, config.batch_size, config.device,
                                progress=progress_every(say, f"{p.name} → {target.name}"))
            metrics = run.evaluate_texts(p.name, load_profile_texts(path, run.examples))
            intervals = run.intervals().get(p.name, {})
            write_json_atomic(_cell_path(out, p.name, target.name), {
                "profiler": p.name, "source": p.source, "target": target.name, "in_domain": p.source == target.name,
                "n_users": len(user_ids), "profiles": str(path), "results": metrics, "intervals": intervals,
                "seconds": round(time.perf_counter() - start, 1)})
            first = next(iter(metrics.values()))
            say(f"{p.name} → {target.name}: ndcg@10 {first.get('ndcg@10', float('nan')):.4f}")
    return write_matrix(config)


def write_matrix(config: TransferConfig) -> dict[str, Any]:
    """Assemble ``transfer.json`` / ``transfer.md`` from the finished cells."""
    out = Path(config.output_dir)
    cells: dict[str, dict[str, Any]] = {}
    for p in config.profilers:
        for t in config.targets:
            path = _cell_path(out, p.name, t.name)
            if path.exists():
                cells.setdefault(p.name, {})[t.name] = json.loads(path.read_text(encoding="utf-8"))
    references = {}
    for t in config.targets:
        path = out / "cells" / f"_references__{t.name}.json"
        if path.exists():
            references[t.name] = json.loads(path.read_text(encoding="utf-8"))
    matrix = {"profilers": {p.name: {"source": p.source, "model": p.profiler.model} for p in config.profilers},
              "targets": [t.name for t in config.targets], "references": config.references,
              "max_users": config.max_users, "seed": config.seed,
              "cells": {p: {t: {"in_domain": c["in_domain"], **c["results"], "intervals": c["intervals"]}
                            for t, c in by_t.items()} for p, by_t in cells.items()},
              "reference_results": {t: r["results"] for t, r in references.items()},
              "n_users": {t: r["n_users"] for t, r in references.items()}}
    write_json_atomic(out / "transfer.json", matrix)
    write_text_atomic(out / "transfer.md", markdown(matrix))
    return matrix


def markdown(matrix: dict[str, Any], metrics: tuple[str, ...] = ("ndcg@10", "recall@10")) -> str:
    targets = matrix["targets"]
    protocols = sorted({p for by_t in matrix["reference_results"].values() for r in by_t.values() for p in r})
    lines = ["Cross-domain transfer (rows: profiler, trained on its source; columns: target test users; "
             "in-domain cells marked *; in brackets the paired bootstrap 95% interval of profiler − "
             f"{matrix['references'][0]} on the same users)", ""]
    ref0 = matrix["references"][0]
    for protocol in protocols:
        for metric in metrics:
            lines += [f"**{metric}, {protocol}**", "", "| profiler | source | " + " | ".join(
                f"{t} (n={matrix['n_users'].get(t, '?')})" for t in targets) + " |", "|---|---|" + "---|" * len(targets)]
            for name, info in matrix["profilers"].items():
                row = [name, str(info["source"] or "—")]
                for t in targets:
                    c = matrix["cells"].get(name, {}).get(t)
                    if c is None or protocol not in c:
                        row.append("—")
                        continue
                    iv = c["intervals"].get(protocol, {}).get(ref0, {}).get(metric)
                    mark = "*" if c["in_domain"] else ""
                    text = f"{c[protocol][metric]:.4f}{mark}"
                    if iv:
                        text += f" ({interval_cell(iv)})"
                    row.append(text)
                lines.append("| " + " | ".join(row) + " |")
            for ref in matrix["references"]:
                row = [ref, "baseline"] + [
                    f"{matrix['reference_results'][t][ref][protocol][metric]:.4f}"
                    if t in matrix["reference_results"] and protocol in matrix["reference_results"][t][ref] else "—"
                    for t in targets]
                lines.append("| " + " | ".join(row) + " |")
            lines.append("")
    return "\n".join(lines)
