"""Alternate GRPO phases of the profiler with contrastive phases of the embedder (BLUE's trainable-embedder switch).

Phase k (1..``phases``), with ``start_with: grpo`` (default):

1. **GRPO**: :func:`~bluerec.train.trainer.train_blue` continues one run in ``<output_dir>/grpo`` up to
   ``k × grpo_steps_per_phase`` steps (``resume=True``; a checkpoint is saved at every phase boundary), its
   InfoNCE reward and validation reading the embedder of phase k−1 (the starting one in phase 1);
2. **profiles**: the profiler just trained writes profiles of the first ``profile_users`` train users
   (``<output_dir>/phase-k/profiles.train.jsonl``, resumable);
3. **embedder**: :func:`~bluerec.embed.finetune.finetune_embedder` continues from phase k−1's embedder on those
   (profile, next item) pairs → ``<output_dir>/phase-k/embedder/`` (atomic), the embedder of phase k+1.

``start_with: embedder`` swaps 1 and 2–3 (the first embedder phase reads the starting profiler's profiles).
Resumable: ``<output_dir>/alternate.json`` records finished stages; a rerun skips them, a GRPO stage interrupted
mid-way resumes from its newest checkpoint, a profiles file continues where it stopped.

Example::

    >>> from bluerec.config import load_config
    >>> from bluerec.train.alternate import AlternateConfig, run_alternating
    >>> cfg = load_config(AlternateConfig, "configs/alternate/quickstart.yaml")            # doctest: +SKIP
    >>> state = run_alternating(cfg)                                                       # doctest: +SKIP
    >>> state["embedder"], state["profiler"]                                               # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from bluerec.config import StrictModel
from bluerec.embed import EmbedderConfig
from bluerec.embed.finetune import RESULT_FILE, FinetuneConfig, FinetuneSettings, finetune_embedder
from bluerec.io import write_json_atomic
from bluerec.train.config import BlueTrainConfig

logger = logging.getLogger(__name__)

STATE_FILE = "alternate.json"


class AlternateConfig(StrictModel):
    """Parameters:
        train: the GRPO run (its ``output_dir`` is replaced by ``<output_dir>/grpo``; ``grpo.max_steps`` and
            ``grpo.save_steps`` are set per phase; ``embedder`` is the starting embedder).
        output_dir: the alternating run's folder.
        phases: number of (GRPO, embedder) phase pairs.
        grpo_steps_per_phase: GRPO optimizer steps per GRPO phase.
        start_with: ``grpo`` (default) or ``embedder``.
        profile_users: the first N train users (file order) profiled for each embedder phase (None = all).
        max_new_tokens: profile length at generation (greedy). batch_size: generation batch.
        finetune: the embedder phases' training settings (:class:`~bluerec.embed.finetune.FinetuneSettings`).
    """

    train: BlueTrainConfig
    output_dir: Path
    phases: int = Field(2, ge=1)
    grpo_steps_per_phase: int = Field(50, ge=1)
    start_with: Literal["grpo", "embedder"] = "grpo"
    profile_users: int | None = Field(None, ge=2)
    max_new_tokens: int = Field(64, ge=1)
    batch_size: int = Field(16, ge=1)
    finetune: FinetuneSettings = Field(default_factory=FinetuneSettings)


def _read_state(path: Path) -> dict[str, Any]:
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    return {"done": [], "phases": {}}


def run_alternating(config: AlternateConfig, progress: Callable[[str], None] | None = None,
                    train_progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run (or resume) every phase; returns the state (also in ``<output_dir>/alternate.json``): stages done, per
    phase the GRPO step, the fine-tuning losses and folders, and the latest ``profiler`` and ``embedder``."""
    from bluerec.data.dataset import PreparedDataset
    from bluerec.profiler.backends.base import GenerationConfig
    from bluerec.profiler.loader import load_profiler
    from bluerec.profiler.profile import generate_profiles
    from bluerec.train.trainer import FINAL_DIR, train_blue

    say = progress or logger.info
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / STATE_FILE
    state = _read_state(state_path)
    done: list[str] = state["done"]
    train = config.train
    grpo_dir = out / "grpo"
    embedder: EmbedderConfig = EmbedderConfig.model_validate(state.get("embedder_config") or train.embedder.model_dump())
    profiler_model = state.get("profiler") or str(train.profiler.model)
    dataset = PreparedDataset(train.dataset)

    def save() -> None:
        state.update({"embedder_config": embedder.model_dump(mode="json"), "embedder": embedder.model,
                      "profiler": profiler_model})
        write_json_atomic(state_path, state)

    order = ["grpo", "embedder"] if config.start_with == "grpo" else ["embedder", "grpo"]
    for k in range(1, config.phases + 1):
        record = state["phases"].setdefault(str(k), {})
        for stage in order:
            key = f"{k}:{stage}"
            if key in done:
                continue
            if stage == "grpo":
                steps = k * config.grpo_steps_per_phase
                say(f"phase {k}: GRPO up to step {steps} with embedder {embedder.model}")
                cfg = train.model_copy(update={
                    "output_dir": grpo_dir, "embedder": embedder,
                    "grpo": train.grpo.model_copy(update={"max_steps": steps,
                                                          "save_steps": config.grpo_steps_per_phase})})
                result = train_blue(cfg, resume=True, progress=train_progress)
                profiler_model = str(grpo_dir / FINAL_DIR)
                record["grpo"] = {"global_step": result.global_step, "final": profiler_model,
                                  "last_eval": result.last_eval}
            else:
                phase_dir = out / f"phase-{k}"
                profiles = phase_dir / "profiles.train.jsonl"
                say(f"phase {k}: profiles of train users by {profiler_model}")
                # The same generation code as ``bluerec profile`` (resumable: missing users only).
                backend = load_profiler(train.profiler.model_copy(update={"model": profiler_model}))
                gen = GenerationConfig(num_samples=1, max_new_tokens=config.max_new_tokens, do_sample=False,
                                       batch_size=config.batch_size)
                generate_profiles(backend, dataset, "train", train.prompt, gen, profiles, resume=True,
                                  max_users=config.profile_users)
                del backend
                target = phase_dir / "embedder"
                if not (target / RESULT_FILE).exists():
                    say(f"phase {k}: fine-tuning embedder {embedder.model} on those profiles")
                    ft = FinetuneConfig(dataset=train.dataset, profiles=str(profiles), embedder=embedder,
                                        output_dir=target, overwrite=True, **config.finetune.model_dump())
                    finetune_embedder(ft, progress=say)
                rec = json.loads((target / RESULT_FILE).read_text(encoding="utf-8"))
                record["embedder"] = {"folder": str(target), "pairs": rec["pairs"],
                                      "loss_before": rec["loss_before"], "loss_after": rec["loss_after"]}
                embedder = embedder.model_copy(update={"model": str(target)})
            done.append(key)
            save()
    save()
    return state
