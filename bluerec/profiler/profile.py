"""Write one profile per user of a split to a JSONL file, resumably.

Each row is ``{"user_id", "profile", "generation"}`` (plus ``"samples"`` when ``num_samples > 1``);
``generation`` records the back-end, model, sampling settings, split and a hash of the prompt config.
The file is rewritten atomically after batches (at most every ``flush_seconds``), at the end and when
the run is interrupted; with ``resume`` an existing file is kept and only the missing users are
generated — provided it was written with the same settings.

Example::

    backend = HFProfiler.from_pretrained("runs/micro/sft")
    generate_profiles(backend, ds, "test", PromptConfig(), GenerationConfig(do_sample=False),
                      "runs/micro/profiles.test.jsonl")
"""

from __future__ import annotations

from bluerec.errors import UserError

import hashlib
import json
import logging
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bluerec.io import read_jsonl, write_jsonl_atomic
from bluerec.profiler.backends.base import GenerationConfig, ProfilerBackend
from bluerec.profiler.prompts import PromptConfig, context_for, fit_to_budget, history_items_for

if TYPE_CHECKING:
    from bluerec.data.dataset import Example, PreparedDataset

log = logging.getLogger(__name__)


@dataclass
class ProfileRunResult:
    path: Path
    n_users: int
    n_existing: int
    n_generated: int
    seconds: float

    @property
    def profiles_per_s(self) -> float:
        return self.n_generated / self.seconds if self.seconds > 0 else float("nan")


def latest_per_user(examples: list["Example"]) -> list["Example"]:
    """One example per user — the one with the highest ``seq`` — in order of first appearance."""
    best: dict[str, "Example"] = {}
    for ex in examples:
        cur = best.get(ex.user_id)
        if cur is None or ex.seq > cur.seq:
            best[ex.user_id] = ex
    return list(best.values())


def generation_settings(
    backend: ProfilerBackend, split: str, prompt_config: PromptConfig, gen_config: GenerationConfig
) -> dict[str, Any]:
    """The ``generation`` field of each row: what produced the profile (no secrets)."""
    prompt_json = json.dumps(prompt_config.fingerprint(), sort_keys=True)
    return {
        **backend.describe(),
        **gen_config.describe(),
        "split": split,
        "prompt_config_sha": hashlib.sha256(prompt_json.encode("utf-8")).hexdigest()[:12],
    }


def load_profiles(path: str | Path) -> dict[str, str]:
    """user_id -> profile from a profiles JSONL file."""
    return {row["user_id"]: row["profile"] for row in read_jsonl(path)}


@dataclass
class ProfileJob:
    """What a profile run must do: the users in order, the rows kept from an existing file, the users to generate."""

    settings: dict[str, Any]
    users: list["Example"]
    rows: list[dict[str, Any]]
    todo: list["Example"]

    def batches(self, batch_size: int) -> list[list["Example"]]:
        """``todo`` in batches; batch ``b`` is seeded ``seed + b`` by every engine, so engines agree."""
        return [self.todo[i : i + batch_size] for i in range(0, len(self.todo), batch_size)]


def plan_profiles(
    settings: dict[str, Any],
    dataset: "PreparedDataset",
    split: str,
    out_path: str | Path,
    resume: bool = True,
    *,
    max_users: int | None = None,
    user_ids: Collection[str] | None = None,
) -> ProfileJob:
    """The users of ``split`` (their latest row) that ``out_path`` still lacks.

    ``user_ids`` keeps only those users (e.g. an evaluation's seeded sample; an id absent from the split is an
    error); ``max_users`` then keeps the first N. ``resume`` keeps the rows of an existing file (raising if it was
    written with other ``settings``); ``resume=False`` starts over.
    """
    if max_users is not None and max_users < 1:  # users[:-5] would silently drop five users, [:0] write nothing
        raise UserError(f"max_users must be >= 1, got {max_users}")
    out_path = Path(out_path)
    users = latest_per_user(dataset.split(split))
    if user_ids is not None:
        wanted = {str(u) for u in user_ids}
        unknown = wanted - {ex.user_id for ex in users}
        if unknown:
            raise ValueError(f"{len(unknown)} user_ids are not in split {split!r} (e.g. {sorted(unknown)[0]!r})")
        users = [ex for ex in users if ex.user_id in wanted]
    if max_users is not None:
        users = users[:max_users]
    rows: list[dict[str, Any]] = []
    if resume and out_path.exists():
        rows = read_jsonl(out_path)
        for row in rows:
            if row.get("generation") != settings:
                raise ValueError(
                    f"{out_path}: existing profiles were generated with other settings "
                    f"({row.get('generation')} != {settings}); use resume=False or another out_path"
                )
    done = {row["user_id"] for row in rows}
    return ProfileJob(settings, users, rows, [ex for ex in users if ex.user_id not in done])


def profile_prompts(
    backend: ProfilerBackend, dataset: "PreparedDataset", examples: list["Example"], prompt_config: PromptConfig,
    split: str = "test",
) -> list[list[dict]]:
    """The budget-fitted prompt of each example of ``split`` (one code path for every engine); the collaborative
    section, when on, never counts a target of ``split``."""
    return [
        fit_to_budget(history_items_for(dataset, ex, field=prompt_config.item_field), prompt_config,
                      backend.count_tokens, context_for(dataset, ex, prompt_config, split))
        for ex in examples
    ]


def generate_batch(
    backend: ProfilerBackend, dataset: "PreparedDataset", examples: list["Example"], prompt_config: PromptConfig,
    gen_config: GenerationConfig, batch_index: int, split: str = "test",
) -> list[list[str]]:
    """The samples of one batch of users, seeded ``gen_config.seed + batch_index``."""
    kwargs = gen_config.sampling_kwargs()
    if gen_config.seed is not None:
        kwargs["seed"] = gen_config.seed + batch_index
    return backend.generate(profile_prompts(backend, dataset, examples, prompt_config, split), **kwargs)


def write_profiles(
    job: ProfileJob,
    out_path: str | Path,
    results: Iterable[tuple[list["Example"], list[list[str]]]],
    gen_config: GenerationConfig,
    *,
    progress: Callable[[int, int], None] | None = None,
    flush_seconds: float = 30.0,
) -> ProfileRunResult:
    """Append each generated batch ``(examples, samples)`` of ``results`` to the job's rows and write the file
    atomically: every ``flush_seconds``, at the end, and when the run is interrupted."""
    out_path = Path(out_path)
    rows = list(job.rows)
    n_existing = len(rows)
    total = len(job.users)
    n_done = total - len(job.todo)
    start = time.perf_counter()
    last_flush = start
    dirty = False
    try:
        for batch, outs in results:
            for ex, samples in zip(batch, outs, strict=True):
                row: dict[str, Any] = {"user_id": ex.user_id, "profile": samples[0] if samples else ""}
                if gen_config.num_samples > 1:
                    row["samples"] = list(samples)
                row["generation"] = job.settings
                rows.append(row)
            dirty = True
            n_done += len(batch)
            if progress is not None:
                progress(n_done, total)
            if time.perf_counter() - last_flush >= flush_seconds:
                write_jsonl_atomic(out_path, rows)
                last_flush, dirty = time.perf_counter(), False
    finally:
        if dirty or not out_path.exists():
            write_jsonl_atomic(out_path, rows)
    seconds = time.perf_counter() - start
    n_generated = len(rows) - n_existing
    log.info("%s: %d profiles (%d new) in %.1fs", out_path, len(rows), n_generated, seconds)
    return ProfileRunResult(path=out_path, n_users=total, n_existing=n_existing, n_generated=n_generated,
                            seconds=seconds)


def generate_profiles(
    backend: ProfilerBackend,
    dataset: "PreparedDataset",
    split: str,
    prompt_config: PromptConfig | None,
    gen_config: GenerationConfig | None,
    out_path: str | Path,
    resume: bool = True,
    *,
    max_users: int | None = None,
    user_ids: Collection[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    flush_seconds: float = 30.0,
) -> ProfileRunResult:
    """Profiles for the users of ``split`` (their latest row), written to ``out_path``, in this process.

    See :func:`plan_profiles` for ``user_ids``, ``max_users`` and ``resume``. Batches of ``gen_config.batch_size``
    users are seeded ``seed + batch index``. ``progress(done, total)`` is called after each batch.
    :func:`bluerec.profiler.ray_engine.generate_profiles_ray` does the same on a Ray cluster.
    """
    if max_users is not None and max_users < 1:  # checked before anything is loaded or described
        raise UserError(f"max_users must be >= 1, got {max_users}")
    prompt_config = prompt_config or PromptConfig()
    gen_config = gen_config or GenerationConfig()
    job = plan_profiles(generation_settings(backend, split, prompt_config, gen_config), dataset, split, out_path,
                        resume, max_users=max_users, user_ids=user_ids)
    results = ((batch, generate_batch(backend, dataset, batch, prompt_config, gen_config, b, split))
               for b, batch in enumerate(job.batches(gen_config.batch_size)))
    return write_profiles(job, out_path, results, gen_config, progress=progress, flush_seconds=flush_seconds)
