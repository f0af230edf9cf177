"""Comparing a benchmark's metrics with published figures (SASRec, BERT4Rec on Beauty): shared by the benches.

``published`` maps a protocol name to ``None`` (no citable figure) or a dict with ``hr@10``, ``ndcg@10``,
``source``, ``protocol`` and ``data_note``. Our ``recall@10`` is the papers' HR@10 (one target per user).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

TOLERANCE = 0.15  # the band: within ±15% of the published figure


def compare_published(metrics: dict[str, dict[str, float]], published: dict[str, dict[str, Any] | None],
                      tolerance: float = TOLERANCE) -> dict[str, Any]:
    """Per protocol with a figure and a result: ours, the published value, their ratio and whether it is within
    ``tolerance``, with the figure's source, protocol and data note."""
    out: dict[str, Any] = {}
    for protocol, ref in published.items():
        if ref is None or protocol not in metrics:
            continue
        rows = {}
        for name, ours_key in (("hr@10", "recall@10"), ("ndcg@10", "ndcg@10")):
            ours = float(metrics[protocol][ours_key])
            rows[name] = {"ours": round(ours, 4), "published": ref[name], "ratio": round(ours / ref[name], 3),
                          "within_15pct": abs(ours / ref[name] - 1) <= tolerance}
        out[protocol] = {"metrics": rows, **{k: ref[k] for k in ("source", "protocol", "data_note")}}
    return out


def by_epoch(curve: dict[Any, float]) -> str:
    """``{3: 0.011, 6: 0.019}`` (or the same with string keys, as read back from JSON) as ``3: 0.011, 6: 0.019``."""
    return ", ".join(f"{epoch}: {value}" for epoch, value in curve.items())


def recompare(out: Path, published: dict[str, dict[str, Any] | None],
              markdown: Callable[[dict[str, Any]], str]) -> str:
    """``--recompare``: redo the comparison and the markdown of an existing result file (no training); returns the
    markdown."""
    from bluerec.io import write_json_atomic, write_text_atomic

    payload = json.loads(out.read_text(encoding="utf-8"))
    payload["comparison"] = compare_published(payload["metrics"], published)
    write_json_atomic(out, payload)
    text = markdown(payload)
    write_text_atomic(out.with_suffix(".md"), text)
    return text
