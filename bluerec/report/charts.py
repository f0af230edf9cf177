"""Matplotlib charts rendered off-screen (Agg canvas, no pyplot global state) to base64 PNG data URIs."""

from __future__ import annotations

import base64
import io
import math
import struct
from typing import Any

from bluerec.report.load import TrainCurves

PALETTE = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]
PROTOCOL_COLORS = {"full": "#4C72B0", "sampled": "#A1C4E8"}


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


class Chart(str):
    """A PNG data URI (``str``) that also knows its display width in CSS pixels (100 px per figure inch)."""

    css_width: int

    def img(self, alt: str) -> str:
        from html import escape

        return (f'<img alt="{escape(alt, quote=True)}" style="width:{self.css_width}px;max-width:100%" '
                f'src="{self}">')


def _to_data_uri(fig: Any, dpi: int = 130) -> Chart:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    png = buf.getvalue()
    chart = Chart("data:image/png;base64," + base64.b64encode(png).decode("ascii"))
    chart.css_width = round(struct.unpack(">I", png[16:20])[0] * 100 / dpi)  # IHDR width
    return chart


def _style(ax: Any) -> None:
    ax.grid(True, color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8)


def _label(text: str) -> str:
    """Plain text for matplotlib: a ``$`` would otherwise start mathtext (and can fail to parse)."""
    return str(text).replace("$", r"\$")


def _smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average that skips NaNs (NaN where the whole window is missing)."""
    out = []
    for i in range(len(values)):
        win = [v for v in values[max(0, i - window + 1): i + 1] if not math.isnan(v)]
        out.append(sum(win) / len(win) if win else math.nan)
    return out


def reward_curves_png(curves: TrainCurves) -> Chart:
    """One panel per reward component (each on its own scale) plus the total reward, against the step."""
    series = [(f"{name}", values) for name, values in curves.components.items()]
    series.append(("total reward", curves.total))
    series = [(n, v) for n, v in series if any(not math.isnan(x) for x in v)]
    n = max(1, len(series))
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = _figure(4.1 * cols, 2.6 * rows)
    window = max(3, len(curves.steps) // 10) if len(curves.steps) >= 10 else 1
    for i, (name, values) in enumerate(series):
        ax = fig.add_subplot(rows, cols, i + 1)
        color = "#333333" if name == "total reward" else PALETTE[i % len(PALETTE)]
        if window > 1:
            ax.plot(curves.steps, values, color=color, alpha=0.3, linewidth=1)
            ax.plot(curves.steps, _smooth(values, window), color=color, linewidth=2,
                    label=f"moving mean ({window} steps)")
            ax.legend(fontsize=7, frameon=False, loc="best")
        else:
            ax.plot(curves.steps, values, color=color, linewidth=1.8, marker="o", markersize=3)
        ax.set_title(_label(name), fontsize=10)
        ax.set_xlabel("training step", fontsize=8)
        _style(ax)
    if not series:
        fig.add_subplot(1, 1, 1).text(0.5, 0.5, "no reward values", ha="center", va="center")
    fig.tight_layout()
    return _to_data_uri(fig)


def validation_png(curves: TrainCurves) -> Chart:
    fig = _figure(6.4, 3.0)
    ax = fig.add_subplot(1, 1, 1)
    values = curves.eval_values
    ax.plot(curves.eval_steps, values, color="#C44E52", linewidth=2, marker="o", markersize=5)
    if values:
        best = max(range(len(values)), key=lambda i: values[i])
        ax.annotate(f"best {values[best]:.4f} @ step {curves.eval_steps[best]:g}",
                    (curves.eval_steps[best], values[best]), textcoords="offset points",
                    xytext=(0, 8), fontsize=8,
                    ha="left" if best == 0 else "right" if best == len(values) - 1 else "center")
        ax.set_ylim(bottom=0, top=max(values) * 1.25 or 1.0)
    ax.set_xlabel("training step", fontsize=8)
    ax.set_ylabel(curves.eval_metric.removeprefix("eval/").replace("ndcg", "NDCG"), fontsize=8)
    ax.set_title("validation " + curves.eval_metric.removeprefix("eval/"), fontsize=10)
    _style(ax)
    fig.tight_layout()
    return _to_data_uri(fig)


def method_bars_png(table: dict[str, dict[str, float]], protocols: list[str], metric: str,
                    highlight: tuple[str, ...] | list[str] = ()) -> Chart:
    """Grouped bars: one group per method, one bar per protocol. ``table``: method → protocol → value of ``metric``;
    the ``highlight`` methods' labels are bold."""
    methods = list(table)
    fig = _figure(max(6.0, 1.15 * len(methods) + 1.5), 3.6)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(1, len(protocols))
    top = 0.0
    for j, proto in enumerate(protocols):
        xs, ys = [], []
        for i, m in enumerate(methods):
            v = table[m].get(proto, math.nan)
            if not math.isnan(v):
                xs.append(i + (j - (len(protocols) - 1) / 2) * width)
                ys.append(v)
        color = PROTOCOL_COLORS.get(proto, PALETTE[j % len(PALETTE)])
        bars = ax.bar(xs, ys, width=width * 0.95, color=color, label=_label(proto))
        ax.bar_label(bars, labels=[f"{y:.3f}" for y in ys], fontsize=7, padding=2)
        top = max([top, *ys])
    ax.set_xticks(range(len(methods)))
    ax.set_xticklabels([_label(m) for m in methods], fontsize=9)
    for label in ax.get_xticklabels():
        if label.get_text() in {_label(h) for h in highlight}:
            label.set_fontweight("bold")
    ax.set_ylim(0, top * 1.18 if top > 0 else 1.0)
    ax.set_ylabel(metric.upper(), fontsize=9)
    ax.legend(title="protocol", fontsize=8, title_fontsize=8, frameon=False)
    _style(ax)
    ax.grid(False, axis="x")
    fig.tight_layout()
    return _to_data_uri(fig)
