"""``write_report``: one self-contained HTML page for a run folder (charts as base64 PNG, inline CSS, no JS).

Sections (stable ids for tests and links): ``#summary``, ``#training`` (``#reward-curves``,
``#validation-ndcg``), ``#methods`` (``#method-bars``, ``#method-table``) and ``#users`` (one
``.user-card`` per example user, the true next item marked ``.true-item``). Missing pieces render a
``.not-available`` note. All run text (profiles are model output) goes through :func:`html.escape`.
"""

from __future__ import annotations

import math
from html import escape
from pathlib import Path
from typing import Any

from bluerec.io import write_text_atomic
from bluerec.report import charts
from bluerec.report.load import RunData, compared_methods, load_run, primary_metric

def _labels(run: RunData) -> dict[str, str]:
    """Display names of methods the run file gives (``method_labels``); others show their own name."""
    labels = (run.results or {}).get("method_labels")
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def _table_metrics(table: dict[str, dict[str, dict[str, Any]]], primary: str) -> list[str]:
    """The method table's columns: the primary metric, the other metrics at its cut-off, then the full ``mrr``."""
    names = list(dict.fromkeys(str(k) for by in table.values() for m in by.values() for k in m))
    _, at, k = primary.partition("@")
    same_k = [n for n in names if at and n != primary and n.endswith(f"@{k}")]
    return [n for n in [primary, *same_k, "mrr"] if n in names or n == primary]

CSS = """
:root { --fg:#1f2328; --muted:#656d76; --line:#d0d7de; --bg:#f6f8fa; --hit:#1a7f37; --hitbg:#dafbe1; }
* { box-sizing: border-box; }
body { font: 14px/1.45 -apple-system, "Segoe UI", "DejaVu Sans", "Liberation Sans", Arial, sans-serif;
       color: var(--fg); margin: 0; background: #fff; }
main { max-width: 1240px; margin: 0 auto; padding: 20px 28px 40px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 0 0 8px; }
h4 { font-size: 13px; margin: 10px 0 4px; color: var(--muted); text-transform: uppercase; letter-spacing: .03em; }
.muted, .note { color: var(--muted); }
.not-available { background: var(--bg); border: 1px dashed var(--line); border-radius: 6px; padding: 10px 14px;
                 color: var(--muted); }
figure { margin: 8px 0 16px; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 12.5px; margin-top: 2px; }
.headline { font-size: 16px; margin: 10px 0; }
.delta-up { color: var(--hit); font-weight: 600; }
.delta-down { color: #cf222e; font-weight: 600; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: var(--bg); }
td.best { font-weight: 700; }
tr.highlight td:first-child { font-weight: 700; }
.user-card { border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; margin: 14px 0;
             background: #fff; box-shadow: 0 1px 2px rgba(0,0,0,.04); }
.user-card ol.history { margin: 0; padding-left: 22px; columns: 2; column-gap: 28px; font-size: 13px; }
.next-item { margin: 8px 0 4px; }
.next-item strong { background: var(--hitbg); padding: 1px 5px; border-radius: 4px; }
.methods { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 14px; margin-top: 6px; }
.method { background: var(--bg); border-radius: 6px; padding: 10px 12px; }
.profile { white-space: pre-wrap; margin: 4px 0 8px; padding: 8px 10px; background: #fff; border-left: 3px solid #8172B3;
           font-size: 13px; }
.rank { margin: 4px 0 6px; font-size: 13px; }
table.recs { width: 100%; background: #fff; font-size: 12.5px; }
table.recs td { vertical-align: top; }
table.recs td.pos { width: 2.2em; color: var(--muted); }
table.recs td.title, table.recs th.title { text-align: left; }
table.recs td.score { width: 9.5em; white-space: nowrap; font-variant-numeric: tabular-nums; }
.bar { display: inline-block; height: 8px; background: #4C72B0; border-radius: 2px; margin-right: 6px;
       vertical-align: middle; opacity: .7; }
tr.true-item td { background: var(--hitbg); }
tr.true-item td.title { font-weight: 600; }
.badge { display: inline-block; font-size: 11px; font-weight: 700; color: #fff; background: var(--hit);
         border-radius: 10px; padding: 0 7px; margin-left: 6px; }
tr.gap td { color: var(--muted); text-align: center; }
footer { margin-top: 30px; color: var(--muted); font-size: 12px; }
"""


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _num(value: Any) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return math.nan
    return f if math.isfinite(f) else math.nan


def _fmt(value: Any, digits: int = 4) -> str:
    v = _num(value)
    return "–" if math.isnan(v) else f"{v:.{digits}f}"


def _na(what: str, why: str) -> str:
    return f'<p class="not-available">{_e(what)} not available: {_e(why)}.</p>'


def _chart(ident: str, what: str, draw: Any, alt: str, caption: str) -> str:
    """``<figure id=ident>`` with the chart ``draw()`` returns, or a note if drawing it failed."""
    try:
        img = draw().img(alt)
    except Exception as err:  # noqa: BLE001 - one bad chart must not cost the whole report
        return f'<div id="{_e(ident)}">' + _na(what, f"the chart could not be drawn ({type(err).__name__}: {err})") + "</div>"
    return f'<figure id="{_e(ident)}">{img}<figcaption>{caption}</figcaption></figure>'


def _method_results(results: dict[str, Any] | None) -> tuple[dict[str, dict[str, dict[str, Any]]], list[str]]:
    res = (results or {}).get("results")
    if not isinstance(res, dict):
        return {}, []
    table: dict[str, dict[str, dict[str, Any]]] = {}
    protocols: list[str] = []
    for method, by_proto in res.items():
        if not isinstance(by_proto, dict):
            continue
        table[str(method)] = {str(p): m for p, m in by_proto.items() if isinstance(m, dict)}
        for p in table[str(method)]:
            if p not in protocols:
                protocols.append(p)
    order = {"full": 0, "sampled": 1}
    protocols.sort(key=lambda p: order.get(p, 2))
    return table, protocols


# ---------------------------------------------------------------- sections


def _summary(run: RunData) -> str:
    r = run.results or {}
    parts = [f"<h1>bluerec run report: {_e(run.run_dir.name or run.run_dir)}</h1>"]
    facts = []
    if r.get("split"):
        facts.append(f"split <b>{_e(r['split'])}</b>")
    if r.get("n_users") is not None:
        facts.append(f"<b>{_e(r['n_users'])}</b> users")
    if r.get("n_items") is not None:
        facts.append(f"<b>{_e(r['n_items'])}</b> items")
    if r.get("embedder"):
        facts.append(f"retriever <code>{_e(r['embedder'])}</code>")
    facts.append(f"folder <code>{_e(run.run_dir)}</code>")
    parts.append(f'<p class="muted">{" · ".join(facts)}</p>')
    if run.results is None:
        parts.append(_na("Evaluation results", run.results_note))

    table, protocols = _method_results(run.results)
    metric = primary_metric(run.results)
    compare = [m for m in compared_methods(run.results) if m in table]
    if len(compare) >= 2 and protocols and metric:
        first, last, protocol = compare[0], compare[-1], protocols[0]
        before = _num(table[first].get(protocol, {}).get(metric))
        after = _num(table[last].get(protocol, {}).get(metric))
        if not math.isnan(before) and not math.isnan(after):
            labels = _labels(run)
            delta = after - before
            rel = f" ({delta / before:+.0%})" if before > 0 else ""
            cls = "delta-up" if delta >= 0 else "delta-down"
            split = str(r.get("split") or "").capitalize()
            parts.append(f'<p class="headline">{_e(split)} {_e(metric)} ({_e(protocol)}): '
                         f'{_e(labels.get(first, first))} <b>{before:.4f}</b> → {_e(labels.get(last, last))} '
                         f'<b>{after:.4f}</b> <span class="{cls}">{delta:+.4f}{rel}</span></p>')
    timings = r.get("timings_s")
    if isinstance(timings, dict) and timings:
        items = " · ".join(f"{_e(k)} {_fmt(v, 1)} s" for k, v in timings.items())
        parts.append(f'<p class="muted">Stage timings: {items}</p>')
    return '<section id="summary">' + "".join(parts) + "</section>"


def _training(run: RunData) -> str:
    out = ['<section id="training"><h2>Training (GRPO)</h2>']
    curves = run.curves
    if curves is None:
        out.append('<div id="reward-curves">' + _na("Reward curves", run.curves_note) + "</div>")
        out.append('<div id="validation-ndcg">' + _na("Validation metric", run.curves_note) + "</div>")
        return "".join(out) + "</section>"
    if curves.steps and (curves.components or any(not math.isnan(v) for v in curves.total)):
        names = ", ".join(curves.components) or "total only"
        out.append(_chart("reward-curves", "Reward curves", lambda: charts.reward_curves_png(curves),
                          "Reward per training step, one panel per component",
                          f"Mean reward per GRPO step for each component ({_e(names)}) and the total; each panel "
                          f"has its own scale. {len(curves.steps)} steps."))
    else:
        out.append('<div id="reward-curves">' + _na("Reward curves", "no training rows with rewards") + "</div>")
    if curves.eval_steps:
        metric = curves.eval_metric.removeprefix("eval/")
        out.append(_chart("validation-ndcg", f"Validation {metric}", lambda: charts.validation_png(curves),
                          f"Validation {metric} per training step",
                          f"Validation {_e(metric)} of the profiler during training (step 0 = before GRPO)."))
    else:
        out.append('<div id="validation-ndcg">' + _na("Validation metric", "no validation rows") + "</div>")
    return "".join(out) + "</section>"


def _methods(run: RunData) -> str:
    table, protocols = _method_results(run.results)
    metric = primary_metric(run.results)
    split = str((run.results or {}).get("split") or "")
    out = [f'<section id="methods"><h2>Methods: {_e(split)} {_e(metric or "metrics")} per protocol</h2>']
    if not table:
        why = run.results_note or "results.json has no per-method results"
        out.append('<div id="method-bars">' + _na("Method comparison", why) + "</div>")
        return "".join(out) + "</section>"
    highlight = compared_methods(run.results)
    values = {m: {p: _num(table[m].get(p, {}).get(metric)) for p in protocols} for m in table}
    if any(not math.isnan(v) for by in values.values() for v in by.values()):
        out.append(_chart("method-bars", "Method comparison",
                          lambda: charts.method_bars_png(values, protocols, metric, highlight),
                          f"{metric} per method and protocol",
                          "full = rank the whole catalogue (history excluded); sampled = target among seeded "
                          "random negatives."))
    else:
        out.append('<div id="method-bars">' + _na("Method comparison", f"no {metric or 'metric'} values") + "</div>")

    cols = [(p, k) for p in protocols for k in _table_metrics(table, metric)]
    best = {c: max((_num(table[m].get(c[0], {}).get(c[1])) for m in table), key=lambda v: -1 if math.isnan(v) else v)
            for c in cols}
    head = "".join(f"<th>{_e(p)} {_e(k)}</th>" for p, k in cols)
    body = []
    for m in table:
        cells = []
        for c in cols:
            v = _num(table[m].get(c[0], {}).get(c[1]))
            cls = ' class="best"' if not math.isnan(v) and v == best[c] else ""
            cells.append(f"<td{cls}>{_fmt(v)}</td>")
        hl = ' class="highlight"' if m in highlight else ""
        body.append(f'<tr{hl} data-method="{_e(m)}"><td>{_e(m)}</td>{"".join(cells)}</tr>')
    out.append(f'<table id="method-table"><thead><tr><th>method</th>{head}</tr></thead>'
               f'<tbody>{"".join(body)}</tbody></table>')
    return "".join(out) + "</section>"


def _recs_from_row(row: dict[str, Any], titles: dict[str, str], target_title: str) -> str:
    target = str(row.get("target"))
    items = [str(i) for i in (row.get("top_items") or [])]
    scores = [_num(s) for s in (row.get("top_scores") or [])]
    scores += [math.nan] * (len(items) - len(scores))
    top = max([s for s in scores if not math.isnan(s)] + [_num(row.get("target_score")), 1e-9],
              key=lambda v: -math.inf if math.isnan(v) else v)

    def line(pos: str, item: str, score: float, is_target: bool) -> str:
        title = titles.get(item, target_title if is_target and target_title else item)
        width = 0 if math.isnan(score) else max(0.0, min(1.0, score / top)) * 60
        badge = '<span class="badge">true next item</span>' if is_target else ""
        cls = "rec true-item" if is_target else "rec"
        return (f'<tr class="{cls}" data-item-id="{_e(item)}"><td class="pos">{_e(pos)}</td>'
                f'<td class="title">{_e(title)}{badge}</td><td class="score"><span class="bar" '
                f'style="width:{width:.0f}px"></span>{_fmt(score, 3)}</td></tr>')

    lines = [line(str(i + 1), item, scores[i], item == target) for i, item in enumerate(items)]
    rank = _num(row.get("rank"))
    if target not in items and not math.isnan(rank):
        lines.append('<tr class="gap"><td colspan="3">⋯</td></tr>')
        lines.append(line(str(int(rank) + 1), target, _num(row.get("target_score")), True))
    return ('<table class="recs"><thead><tr><th>#</th><th class="title">recommended item</th><th>similarity</th></tr></thead>'
            f'<tbody>{"".join(lines)}</tbody></table>')


def _recs_from_example(info: dict[str, Any], next_item: str) -> str:
    top = [str(t) for t in (info.get("top5") or [])]
    if not top:
        return _na("Recommendations", "no per-user rows for this method")
    lines = []
    for i, title in enumerate(top):
        hit = title == next_item
        badge = '<span class="badge">true next item</span>' if hit else ""
        lines.append(f'<tr class="{"rec true-item" if hit else "rec"}"><td class="pos">{i + 1}</td>'
                     f'<td class="title">{_e(title)}{badge}</td><td class="score">–</td></tr>')
    return ('<p class="note">Per-user rows not found: top 5 from results.json, scores not available.</p>'
            '<table class="recs"><thead><tr><th>#</th><th class="title">recommended item</th><th>similarity</th></tr></thead>'
            f'<tbody>{"".join(lines)}</tbody></table>')


def _user_card(run: RunData, n: int, ex: dict[str, Any]) -> str:
    uid = str(ex.get("user_id"))
    history = [str(h) for h in (ex.get("history") or [])]
    next_item = str(ex.get("next_item") or "")
    methods = ex.get("methods") if isinstance(ex.get("methods"), dict) else {}
    compare = compared_methods(run.results)
    order = sorted(methods, key=lambda m: compare.index(m) if m in compare else len(compare))  # stable: file order
    hist = "".join(f"<li>{_e(h)}</li>" for h in history) if history else "<li class='muted'>(empty)</li>"
    parts = [f'<article class="user-card" id="user-{n}" data-user-id="{_e(uid)}">',
             f'<h3>User {n}: <code>{_e(uid)}</code></h3>',
             f'<h4>History (oldest first, last {len(history)})</h4><ol class="history">{hist}</ol>']
    row_any = next((run.user_rows.get(m, {}).get(uid) for m in order if run.user_rows.get(m, {}).get(uid)), None)
    if not next_item and row_any is not None:
        next_item = run.titles.get(str(row_any.get("target")), str(row_any.get("target")))
    parts.append(f'<p class="next-item">True next item: <strong>{_e(next_item or "unknown")}</strong></p>')
    parts.append('<div class="methods">')
    for m in order:
        info = methods[m] if isinstance(methods[m], dict) else {}
        profile = info.get("profile")
        if not isinstance(profile, str):
            profile = run.profiles.get(m, {}).get(uid)
        row = run.user_rows.get(m, {}).get(uid)
        label = _labels(run).get(m, m)
        parts.append(f'<div class="method" data-method="{_e(m)}"><h3>{_e(label)}</h3>')
        parts.append(f'<div class="profile">{_e(profile)}</div>' if profile is not None
                     else _na("Profile", "not in results.json or eval/profiles"))
        rank = _num(row.get("rank")) if row else _num(info.get("rank"))
        if not math.isnan(rank):
            of = f" of {int(_num(row.get('n_candidates')))}" if row and not math.isnan(_num(row.get("n_candidates"))) else ""
            score = f", similarity {_fmt(row.get('target_score'), 3)}" if row else ""
            parts.append(f'<p class="rank">True next item ranked <b>#{int(rank) + 1}</b>{of}{score} (full ranking)</p>')
        parts.append(_recs_from_row(row, run.titles, next_item) if row else _recs_from_example(info, next_item))
        parts.append("</div>")
    if not order:
        parts.append(_na("Profiles", "no methods recorded for this user"))
    parts.append("</div></article>")
    return "".join(parts)


def _users(run: RunData) -> str:
    out = ['<section id="users"><h2>Example users: each method’s profile and recommendations</h2>']
    examples = run.examples
    if not examples:
        why = run.results_note or "results.json has no example users"
        out.append(_na("Example users", why))
    else:
        out.append('<p class="muted">Each profile is the retrieval query; the table lists the top 10 items by '
                   'similarity to it over the whole catalogue (history excluded). The true next item is '
                   'highlighted; when it is outside the top 10 its rank is shown below.</p>')
        out += [_user_card(run, i + 1, ex) for i, ex in enumerate(examples)]
    return "".join(out) + "</section>"


def render_report(run: RunData) -> str:
    body = "".join([_summary(run), _training(run), _methods(run), _users(run)])
    title = f"bluerec report: {run.run_dir.name or run.run_dir}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>{body}"
            "<footer>Generated by <code>bluerec report</code>. Self-contained: charts are embedded PNGs."
            "</footer></main></body></html>\n")


def write_report(run_dir: Path, out: Path | None = None, say: Any = None) -> Path:
    """Write the HTML report for ``run_dir`` (default ``<run_dir>/report.html``) atomically; return its path.
    ``say`` hears how many unreadable lines were skipped, per file."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder not found: {run_dir}")
    target = Path(out) if out is not None else run_dir / "report.html"
    run = load_run(run_dir)
    write_text_atomic(target, render_report(run))
    for name, n in run.skipped.items():
        if say is not None:
            say(f"skipped {n} unreadable line(s) in {run_dir / name}")
    return target
