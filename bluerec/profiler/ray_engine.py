"""Batch profiling on Ray Data: users sharded across workers, each holding one profiler model.

:func:`generate_profiles_ray` writes the same resumable JSONL as the local
:func:`~bluerec.profiler.profile.generate_profiles`: the driver plans the run (users already in the file are
skipped; a file written with other settings is refused), cuts the remaining users into the same seeded batches
(batch ``b`` is seeded ``seed + b``), and Ray Data streams the batches through a pool of actors
(``ActorPoolStrategy``), each of which loads the profiler once with
:func:`~bluerec.profiler.loader.load_profiler` and the prepared dataset from a path every worker can read.
Results come back in batch order and are written atomically by the driver, so a greedy run gives the same
file as the local engine, and an interrupted run resumes where it stopped.

Ray is an optional dependency (``pip install "bluerec[ray]"``); it is imported only here, lazily.

Example::

    from bluerec.profiler.config import ProfilerConfig
    from bluerec.profiler.ray_engine import RayEngineConfig, generate_profiles_ray

    generate_profiles_ray(ProfilerConfig(model="runs/beauty/grpo/final"), "data/prepared/beauty2014", "test",
                          None, None, "runs/beauty/profiles.test.jsonl",
                          engine=RayEngineConfig(num_workers=8, num_gpus_per_worker=1))

On a cluster, start Ray there (``ray start --head`` / ``ray start --address=...``) and pass
``RayEngineConfig(address="auto")``; the dataset folder and the model must be readable by every node
(shared storage, or a hub id / known model name each worker fetches).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

from pydantic import Field

from bluerec.config import StrictModel
from bluerec.profiler.backends.base import GenerationConfig
from bluerec.profiler.config import ProfilerConfig
from bluerec.profiler.profile import ProfileRunResult, generate_batch, plan_profiles, write_profiles
from bluerec.profiler.prompts import PromptConfig

log = logging.getLogger(__name__)

RAY_MISSING = 'bluerec profile --engine ray needs Ray Data: pip install "bluerec[ray]" (or pip install "ray[data]")'


class RayEngineConfig(StrictModel):
    """Where and how wide the Ray engine runs.

    Parameters:
        num_workers: actors, each holding one model (default 2).
        num_cpus_per_worker: CPUs each actor reserves; its torch threads follow (default 1).
        num_gpus_per_worker: GPUs each actor reserves (default 0).
        address: an existing cluster (``"auto"`` or ``"ray://host:10001"``); ``None`` starts a local instance.
    """

    num_workers: int = Field(2, ge=1)
    num_cpus_per_worker: float = Field(1.0, gt=0)
    num_gpus_per_worker: float = Field(0.0, ge=0)
    address: str | None = None


def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(RAY_MISSING) from err
    return ray


def settings_of(profiler: ProfilerConfig, split: str, prompt_config: PromptConfig, gen_config: GenerationConfig
                ) -> dict[str, Any]:
    """The ``generation`` field the local engine writes for ``profiler``, without loading the model (the driver
    holds no model): :func:`~bluerec.profiler.loader.describe_profiler` in place of the back-end's ``describe``."""
    from bluerec.profiler.loader import describe_profiler
    from bluerec.profiler.profile import generation_settings

    class _Described:
        def describe(self) -> dict[str, Any]:
            return describe_profiler(profiler)

    return generation_settings(_Described(), split, prompt_config, gen_config)  # type: ignore[arg-type]


class _ProfileWorker:
    """One Ray actor: a profiler and the dataset, loaded once; turns a batch row into its users' samples."""

    def __init__(self, profiler: dict[str, Any], dataset_root: str, split: str, prompt: dict[str, Any],
                 generation: dict[str, Any], threads: int) -> None:
        import torch

        from bluerec.data.dataset import PreparedDataset
        from bluerec.profiler.loader import load_profiler
        from bluerec.profiler.profile import latest_per_user

        torch.set_num_threads(threads)
        self.backend = load_profiler(ProfilerConfig.model_validate(profiler))
        self.dataset = PreparedDataset(dataset_root)
        self.by_user = {ex.user_id: ex for ex in latest_per_user(self.dataset.split(split))}
        self.split = split
        self.prompt = PromptConfig.model_validate(prompt)
        self.generation = GenerationConfig.model_validate(generation)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {"batch": [], "user_id": [], "samples": []}
        for b, users in zip(batch["batch"], batch["user_ids"], strict=True):
            examples = [self.by_user[str(u)] for u in users]
            samples = generate_batch(self.backend, self.dataset, examples, self.prompt, self.generation, int(b),
                                     self.split)
            for ex, s in zip(examples, samples, strict=True):
                out["batch"].append(int(b))
                out["user_id"].append(ex.user_id)
                out["samples"].append(list(s))
        return out


def generate_profiles_ray(
    profiler: ProfilerConfig | str,
    dataset_root: str | Path,
    split: str,
    prompt_config: PromptConfig | None,
    gen_config: GenerationConfig | None,
    out_path: str | Path,
    resume: bool = True,
    *,
    engine: RayEngineConfig | None = None,
    max_users: int | None = None,
    user_ids: Collection[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    flush_seconds: float = 30.0,
) -> ProfileRunResult:
    """:func:`~bluerec.profiler.profile.generate_profiles` with the generation sharded over Ray actors."""
    from bluerec.data.dataset import PreparedDataset

    ray = _import_ray()
    profiler = profiler if isinstance(profiler, ProfilerConfig) else ProfilerConfig(model=str(profiler))
    prompt_config = prompt_config or PromptConfig()
    gen_config = gen_config or GenerationConfig()
    engine = engine or RayEngineConfig()
    dataset_root = Path(dataset_root).resolve()
    dataset = PreparedDataset(dataset_root)
    job = plan_profiles(settings_of(profiler, split, prompt_config, gen_config), dataset, split, out_path, resume,
                        max_users=max_users, user_ids=user_ids)
    batches = job.batches(gen_config.batch_size)
    if not batches:
        return write_profiles(job, out_path, iter(()), gen_config, progress=progress, flush_seconds=flush_seconds)

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=engine.address, include_dashboard=False, log_to_driver=False,
                 ignore_reinit_error=True, runtime_env={"env_vars": _worker_env()})
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # batches come back in order: the file matches local runs
        context.enable_progress_bars = False
        items = [{"batch": b, "user_ids": [ex.user_id for ex in batch]} for b, batch in enumerate(batches)]
        threads = max(1, int(engine.num_cpus_per_worker))
        results = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            _ProfileWorker,
            fn_constructor_kwargs={
                "profiler": profiler.model_dump(mode="json"), "dataset_root": str(dataset_root), "split": split,
                "prompt": prompt_config.model_dump(mode="json"), "generation": gen_config.model_dump(mode="json"),
                "threads": threads,
            },
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=engine.num_workers),
            num_cpus=engine.num_cpus_per_worker,
            num_gpus=engine.num_gpus_per_worker or None,
        )
        return write_profiles(job, out_path, _regroup(results.iter_rows(), batches), gen_config,
                              progress=progress, flush_seconds=flush_seconds)
    finally:
        if started_here:
            ray.shutdown()


def _regroup(rows: Iterator[dict[str, Any]], batches: list[list[Any]]) -> Iterator[tuple[list[Any], list[list[str]]]]:
    """Rows (one per user, in batch order) back into ``(examples, samples)`` per batch."""
    b, samples = 0, []
    for row in rows:
        if int(row["batch"]) != b or row["user_id"] != batches[b][len(samples)].user_id:
            raise RuntimeError(f"Ray returned user {row['user_id']!r} of batch {row['batch']} out of order")
        samples.append([str(s) for s in row["samples"]])
        if len(samples) == len(batches[b]):
            yield batches[b], samples
            b, samples = b + 1, []
    if b != len(batches):
        raise RuntimeError(f"Ray returned {b} of {len(batches)} batches")


def _worker_env() -> dict[str, str]:
    """Offline flags and the import path travel to the workers (they must load the same code and models)."""
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TOKENIZERS_PARALLELISM", "PYTHONPATH", "BLUEREC_CACHE",
            "HF_HOME")
    return {k: os.environ[k] for k in keys if k in os.environ}
