"""The BLUE workflow as library calls that the CLI commands and the benchmarks compose: the supervised warm start
(with the choice of its target on validation users) lives here; GRPO with the best checkpoint chosen on
validation users is :func:`bluerec.train.train_blue` (``eval.select_best``)."""

from bluerec.workflow.warmstart import WarmStartRunConfig, WarmStartSelection, run_warmstart

__all__ = ["WarmStartRunConfig", "WarmStartSelection", "run_warmstart"]
