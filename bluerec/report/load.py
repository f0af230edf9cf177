"""Read what a run folder holds for the report. Every reader is tolerant: a missing or unreadable piece
becomes ``None`` plus a human-readable reason, never an exception, so the report always renders."""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bluerec.io import read_jsonl, read_jsonl_tolerant

logger = logging.getLogger(__name__)
_COMPONENT = re.compile(r"^rewards/(.+)/mean$")


@dataclass
class TrainCurves:
    """Per-step training rewards (total and per component) and the validation evaluator's primary metric."""

    steps: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    components: dict[str, list[float]] = field(default_factory=dict)  # name → value per step (NaN = absent)
    eval_steps: list[float] = field(default_factory=list)
    eval_values: list[float] = field(default_factory=list)  # eval_metric per validation step
    eval_metric: str = ""  # the metrics.jsonl key, e.g. "eval/ndcg@10" (what the rows name as primary_metric)
    skipped_lines: int = 0  # unreadable lines of metrics.jsonl left out


@dataclass
class RunData:
    run_dir: Path
    results: dict[str, Any] | None = None
    results_note: str = ""
    curves: TrainCurves | None = None
    curves_note: str = ""
    titles: dict[str, str] = field(default_factory=dict)
    # method → user id → per-user row (full protocol) for the example users
    user_rows: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    profiles: dict[str, dict[str, str]] = field(default_factory=dict)  # method → user id → profile text
    skipped: dict[str, int] = field(default_factory=dict)  # file (relative to run_dir) → unreadable lines skipped

    @property
    def examples(self) -> list[dict[str, Any]]:
        ex = (self.results or {}).get("examples")
        return [e for e in ex if isinstance(e, dict)] if isinstance(ex, list) else []


def _finite(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f if math.isfinite(f) else math.nan


def read_results(run_dir: Path) -> tuple[dict[str, Any] | None, str]:
    """``results.json`` of a quick-start run, or else ``summary.json`` of a ``bluerec evaluate`` folder
    (same ``results`` layout: method → protocol → metrics)."""
    path = run_dir / "results.json"
    if not path.is_file() and (run_dir / "summary.json").is_file():
        path = run_dir / "summary.json"
    if not path.is_file():
        return None, "no results.json (quick start) or summary.json (evaluate) in this folder"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return None, f"{path.name} could not be read ({err})"
    if not isinstance(data, dict):
        return None, f"{path.name} is not a JSON object"
    return data, ""


def read_curves(run_dir: Path, skipped: dict[str, int] | None = None) -> tuple[TrainCurves | None, str]:
    """Training curves of ``train/metrics.jsonl``; unreadable lines are left out and counted in ``skipped``."""
    path = run_dir / "train" / "metrics.jsonl"
    if not path.is_file():
        return None, "no train/metrics.jsonl in this run (BLUE was not trained here)"
    try:
        rows, n_skipped = read_jsonl_tolerant(path)
    except OSError as err:
        return None, f"train/metrics.jsonl could not be read ({err})"
    if n_skipped:
        if skipped is not None:
            skipped["train/metrics.jsonl"] = n_skipped
        logger.info("train/metrics.jsonl: skipped %d unreadable line(s) of %d", n_skipped, n_skipped + len(rows))
    skip_note = f" ({n_skipped} unreadable line(s) of train/metrics.jsonl skipped)" if n_skipped else ""

    train: dict[float, dict[str, Any]] = {}  # step → row; a resumed run's later row for a step wins
    eval_rows: dict[float, dict[str, Any]] = {}
    for row in rows:
        step = _finite(row.get("step"))
        if math.isnan(step):
            continue
        kind = row.get("kind")
        if kind == "train" or (kind is None and "reward" in row):
            train[step] = row
        elif kind == "eval" or (kind is None and any(str(k).startswith("eval/") for k in row)):
            eval_rows[step] = row
    metric = eval_metric(list(eval_rows.values()))
    evals: dict[float, float] = {}
    for step, row in eval_rows.items():
        value = _finite(row.get(metric))
        if not math.isnan(value):
            evals[step] = value

    curves = TrainCurves(eval_metric=metric)
    names: list[str] = []
    for row in train.values():
        for key in row:
            m = _COMPONENT.match(key)
            if m and m.group(1) not in names:
                names.append(m.group(1))
    for step in sorted(train):
        row = train[step]
        curves.steps.append(step)
        curves.total.append(_finite(row.get("reward")))
        for name in names:
            curves.components.setdefault(name, []).append(_finite(row.get(f"rewards/{name}/mean")))
    for step in sorted(evals):
        curves.eval_steps.append(step)
        curves.eval_values.append(evals[step])
    curves.skipped_lines = n_skipped
    if not curves.steps and not curves.eval_steps:
        return None, "train/metrics.jsonl has no training or validation rows yet" + skip_note
    return curves, skip_note.strip(" ()")


def eval_metric(rows: list[dict[str, Any]]) -> str:
    """The validation rows' primary metric: the ``primary_metric`` they name (the newest), else — rows written
    before it was recorded — their first ``eval/`` metric (the trainer writes the evaluator's metrics first)."""
    for row in reversed(rows):
        if isinstance(row.get("primary_metric"), str):
            return row["primary_metric"]
    for row in rows:
        for key, value in row.items():
            if str(key).startswith("eval/") and not math.isnan(_finite(value)):
                return str(key)
    return ""


def primary_metric(results: dict[str, Any] | None) -> str:
    """The metric a results/summary file ranks methods by: its ``primary_metric``, else the first metric of its
    first method and protocol (the evaluator's order puts the primary one first)."""
    named = (results or {}).get("primary_metric")
    if isinstance(named, str) and named:
        return named
    for by_proto in ((results or {}).get("results") or {}).values():
        if isinstance(by_proto, dict):
            for metrics in by_proto.values():
                if isinstance(metrics, dict) and metrics:
                    return str(next(iter(metrics)))
    return ""


def compared_methods(results: dict[str, Any] | None) -> list[str]:
    """The methods a run compares, in order (before → after): its ``compare`` list, else its profile methods (the
    ones that are not baselines), else the methods of its example users."""
    r = results or {}
    for key in ("compare", "profile_methods"):
        value = r.get(key)
        if isinstance(value, list) and value:
            return [str(m) for m in value]
    methods: list[str] = []
    for ex in r.get("examples") or []:
        for m in (ex.get("methods") or {}) if isinstance(ex, dict) else {}:
            if m not in methods:
                methods.append(str(m))
    return methods


def _data_dir(run_dir: Path, results: dict[str, Any] | None) -> Path | None:
    candidates = [run_dir / "data"]
    ds = (results or {}).get("dataset")
    if isinstance(ds, str) and ds:
        p = Path(ds)
        candidates += [p] if p.is_absolute() else [run_dir / p, Path.cwd() / p, run_dir.parent / p]
    return next((c for c in candidates if (c / "items.parquet").is_file()), None)


def read_titles(run_dir: Path, results: dict[str, Any] | None) -> dict[str, str]:
    data_dir = _data_dir(run_dir, results)
    if data_dir is None:
        return {}
    try:
        import pyarrow.parquet as pq

        table = pq.read_table(data_dir / "items.parquet", columns=["item_id", "title"])
    except Exception:  # noqa: BLE001 - a report without titles still shows ids
        return {}
    ids = table.column("item_id").to_pylist()
    titles = table.column("title").to_pylist()
    return {str(i): str(t) for i, t in zip(ids, titles) if i is not None and t is not None}


def read_user_rows(run_dir: Path, method: str, user_ids: list[str], protocol: str = "full") -> dict[str, dict[str, Any]]:
    """Per-user rows of ``eval/users/<method>.<protocol>.parquet`` (or ``.jsonl``; ``users/`` directly in an
    ``evaluate`` folder) for ``user_ids``."""
    base = run_dir / "eval" / "users"
    if not base.is_dir() and (run_dir / "users").is_dir():
        base = run_dir / "users"
    wanted = set(user_ids)
    out: dict[str, dict[str, Any]] = {}
    parquet, jsonl = base / f"{method}.{protocol}.parquet", base / f"{method}.{protocol}.jsonl"
    try:
        if parquet.is_file():
            import pyarrow as pa
            import pyarrow.compute as pc
            import pyarrow.parquet as pq

            table = pq.read_table(parquet)
            if "user_id" not in table.column_names or not wanted:
                return {}
            ids = pc.cast(table.column("user_id"), pa.string())
            table = table.filter(pc.is_in(ids, value_set=pa.array(sorted(wanted), pa.string())))
            rows = table.to_pylist()
        elif jsonl.is_file():
            rows = [r for r in read_jsonl(jsonl) if str(r.get("user_id")) in wanted]
        else:
            return {}
    except Exception:  # noqa: BLE001 - unreadable rows fall back to the examples' top-5
        return {}
    for row in rows:
        out.setdefault(str(row.get("user_id")), row)
    return out


def read_profiles(run_dir: Path, method: str, user_ids: list[str]) -> dict[str, str]:
    path = run_dir / "eval" / "profiles" / f"{method}.jsonl"
    if not path.is_file() or not user_ids:
        return {}
    wanted, out = set(user_ids), {}
    try:
        rows = read_jsonl(path, skip_unreadable=True)
    except OSError:
        return {}
    for row in rows:
        uid = str(row.get("user_id"))
        if uid in wanted and uid not in out and isinstance(row.get("profile"), str):
            out[uid] = row["profile"]
    return out


def load_run(run_dir: Path) -> RunData:
    run = RunData(run_dir=run_dir)
    run.results, run.results_note = read_results(run_dir)
    run.curves, run.curves_note = read_curves(run_dir, run.skipped)
    examples = run.examples
    if examples:
        run.titles = read_titles(run_dir, run.results)
        ids = [str(e.get("user_id")) for e in examples]
        methods: list[str] = []
        for e in examples:
            for m in e.get("methods") or {}:
                if m not in methods:
                    methods.append(m)
        for m in methods:
            run.user_rows[m] = read_user_rows(run_dir, m, ids)
            run.profiles[m] = read_profiles(run_dir, m, ids)
    return run
