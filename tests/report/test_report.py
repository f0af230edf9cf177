"""`bluerec report`: the HTML page of a small fake run folder (charts, method bars, user cards, escaping,
missing pieces) and, where Debian's chromium is installed, a headless render of it."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from bluerec.cli.report import report
from bluerec.report import write_report

EVIL = '<script>alert("pwned")</script> & "quotes"'
ITEMS = [f"I{i:02d}" for i in range(30)]
TITLE = {i: f"Item {i} title" for i in ITEMS}
USERS = ["U1", "U2", "U3"]
TARGETS = {"U1": "I03", "U2": "I25", "U3": "I07"}  # U1: in both top-10s; U2: outside; U3: in blue's only
COMPONENTS = ["infonce_profile_to_item", "infonce_item_to_profile", "multiple_choice", "length_penalty"]


def _metrics(ndcg: float) -> dict[str, float]:
    return {"ndcg@10": ndcg, "recall@10": 2 * ndcg, "mrr": ndcg / 2}


def _top(method: str, user: str) -> list[str]:
    """Top-10 ids: blue puts U1's and U3's targets at rank 3 (index 2); warmstart only U1's, at rank 1."""
    start = 8 if method == "blue" else 10
    top = [i for i in ITEMS[start:] if i not in TARGETS.values()][:10]
    if user == "U1" or (user == "U3" and method == "blue"):
        top = top[:2] + [TARGETS[user]] + top[2:9] if method == "blue" else [TARGETS[user]] + top[:9]
    return top


def make_run(root: Path, *, train: bool = True, examples: bool = True, user_rows: bool = True) -> Path:
    run = root / "run"
    (run / "data").mkdir(parents=True)
    pq.write_table(pa.table({"item_id": ITEMS, "title": [TITLE[i] for i in ITEMS],
                             "text": [TITLE[i] + " | text" for i in ITEMS]}), run / "data" / "items.parquet")
    results = {
        "split": "test", "n_users": 3, "n_items": len(ITEMS), "embedder": "fake-embedder",
        "results": {
            "popularity": {"full": _metrics(0.05), "sampled": _metrics(0.12)},
            "warmstart": {"full": _metrics(0.08), "sampled": _metrics(0.20)},
            "blue": {"full": _metrics(0.11), "sampled": _metrics(0.25)},
        },
        "timings_s": {"grpo": 12.5, "evaluate": 3.0},
    }
    if examples:
        results["examples"] = [
            {"user_id": u, "history": [TITLE["I00"], TITLE["I01"]], "next_item": TITLE[TARGETS[u]],
             "methods": {m: {"profile": (EVIL if (u, m) == ("U2", "blue") else f"{m} profile of {u}"),
                             "rank": 0, "top5": [TITLE[i] for i in _top(m, u)[:5]]}
                         for m in ("warmstart", "blue")}}
            for u in USERS
        ]
    (run / "results.json").write_text(json.dumps(results))
    if user_rows:
        for m in ("warmstart", "blue"):
            rows = []
            for u in USERS:
                top = _top(m, u)
                rank = top.index(TARGETS[u]) if TARGETS[u] in top else 17
                rows.append({"user_id": u, "target": TARGETS[u], "rank": rank, "ties": 0, "n_candidates": 28,
                             "target_score": 0.9 - rank * 0.03, "ndcg@10": 0.0, "ndcg@20": 0.0,
                             "top_items": top, "top_scores": [0.9 - k * 0.03 for k in range(10)]})
            # the layout of bluerec.eval.evaluator.save_user_results (not imported: it pulls in torch, ~10 s)
            (run / "eval" / "users").mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(rows), run / "eval" / "users" / f"{m}.full.parquet")
    if train:
        lines = [{"kind": "eval", "step": 0, "eval/ndcg@10": 0.02}]
        for step in range(1, 13):
            row = {"kind": "train", "step": step, "reward": -5 + step * 0.1}
            row.update({f"rewards/{c}/mean": (k - step * 0.01) for k, c in enumerate(COMPONENTS)})
            lines.append(row)
        lines += [{"kind": "eval", "step": 12, "eval/ndcg@10": 0.03}, {"kind": "summary", "step": 12}]
        (run / "train").mkdir()
        (run / "train" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines) + '{"kind": "tr')
    return run


@pytest.fixture(scope="module")
def full_report(tmp_path_factory) -> tuple[Path, str]:
    run = make_run(tmp_path_factory.mktemp("report"))
    path = write_report(run)
    return path, path.read_text(encoding="utf-8")


def _element(html: str, ident: str) -> str:
    """The opening tag with ``id=ident`` and what follows it up to the next section/figure boundary."""
    m = re.search(rf'<(\w+)[^>]*\bid="{re.escape(ident)}"[^>]*>(.*?)</\1>', html, re.S)
    assert m, f"no element with id {ident}"
    return m.group(0)


def _cards(html: str) -> list[str]:
    return re.findall(r'<article class="user-card".*?</article>', html, re.S)


def test_default_path_and_self_contained(full_report):
    path, html = full_report
    assert path.name == "report.html" and path.parent.name == "run"
    assert html.startswith("<!DOCTYPE html>")
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert not list(path.parent.glob(".report.html.*"))  # atomic write left no temp file


@pytest.mark.parametrize("ident", ["reward-curves", "validation-ndcg", "method-bars"])
def test_charts_are_embedded_pngs(full_report, ident):
    block = _element(full_report[1], ident)
    m = re.search(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', block)
    assert m, block[:300]
    assert base64.b64decode(m.group(1))[:8] == b"\x89PNG\r\n\x1a\n"


def test_reward_components_and_method_table(full_report):
    html = full_report[1]
    caption = _element(html, "reward-curves")
    assert all(c in caption for c in COMPONENTS) and "12 steps" in caption  # half-written last line skipped
    table = _element(html, "method-table")
    assert [m for m in re.findall(r'data-method="([^"]+)"', table)] == ["popularity", "warmstart", "blue"]
    assert "0.2500" in table and "full ndcg@10" in table and "sampled ndcg@10" in table
    assert "0.0800" in html and "0.1100" in html  # headline: warm start → BLUE


def test_three_user_cards_with_true_item_marked(full_report):
    cards = _cards(full_report[1])
    assert len(cards) == 3
    for card, user in zip(cards, USERS):
        assert f'data-user-id="{user}"' in card
        assert 'data-method="warmstart"' in card and 'data-method="blue"' in card
        assert card.index('data-method="warmstart"') < card.index('data-method="blue"')  # before, then after
        marked = re.findall(r'<tr class="rec true-item" data-item-id="([^"]+)"><td class="pos">(\d+)</td>', card)
        assert [i for i, _ in marked] == [TARGETS[user]] * 2, card  # once per method
        assert TITLE[TARGETS[user]] in card and TITLE["I00"] in card  # titles, not ids
        assert len(re.findall(r'<tr class="rec', card)) == 2 * 10 + sum(p not in ("1", "3") for _, p in marked)
    u1, u2, u3 = cards
    assert [p for _, p in re.findall(r'true-item" data-item-id="(\w+)"><td class="pos">(\d+)', u1)] == ["1", "3"]
    assert [p for _, p in re.findall(r'true-item" data-item-id="(\w+)"><td class="pos">(\d+)', u2)] == ["18", "18"]
    assert "0.900" in u1 and "similarity" in u1  # scores shown
    assert "#18</b> of 28" in u2


def test_profiles_are_escaped(full_report):
    card = _cards(full_report[1])[1]
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; &amp; &quot;quotes&quot;" in card
    assert "<script>" not in card
    assert "warmstart profile of U2" in card


def test_missing_pieces_render_notes(tmp_path):
    run = make_run(tmp_path, train=False, examples=False)
    html = write_report(run, tmp_path / "out" / "r.html").read_text()
    assert html.count('class="not-available"') >= 3
    assert "no train/metrics.jsonl" in html and "no example users" in html
    assert 'id="method-bars"' in html and 'class="user-card"' not in html

    empty = tmp_path / "empty"
    empty.mkdir()
    html = write_report(empty).read_text()
    assert "no results.json" in html and 'id="reward-curves"' in html and 'id="users"' in html

    with pytest.raises(FileNotFoundError):
        write_report(tmp_path / "nope")


def test_cards_fall_back_to_results_top5(tmp_path):
    run = make_run(tmp_path, train=False, user_rows=False)
    cards = _cards(write_report(run).read_text())
    assert len(cards) == 3
    assert "scores not available" in cards[0]
    assert cards[0].count('class="rec true-item"') == 2  # U1's target is in both top-5s
    assert 'class="rec true-item"' not in cards[1]


def test_cli(tmp_path):
    run = make_run(tmp_path, train=False)
    app = typer.Typer()
    app.command()(report)
    app.command("other")(lambda: None)  # two commands, so `report` is addressed by name as in bluerec
    runner = CliRunner()
    out = tmp_path / "x.html"
    res = runner.invoke(app, ["report", str(run), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert str(out) in res.output and out.is_file()
    res = runner.invoke(app, ["report", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "run folder not found" in res.output


def test_chromium_renders_report(full_report, tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian chromium is not installed: apt-get install chromium")
    path = full_report[0]
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]
    shot = tmp_path / "shot.png"
    subprocess.run(flags + [f"--user-data-dir={tmp_path / 'ud1'}", f"--screenshot={shot}", "--window-size=1280,2000",
                            path.resolve().as_uri()], check=True, timeout=60, capture_output=True)
    assert shot.is_file() and shot.stat().st_size > 20_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dom = subprocess.run(flags + [f"--user-data-dir={tmp_path / 'ud2'}", "--dump-dom", path.resolve().as_uri()],
                         check=True, timeout=60, capture_output=True, text=True).stdout
    for ident in ("reward-curves", "validation-ndcg", "method-bars", "method-table"):
        assert f'id="{ident}"' in dom
    assert dom.count('class="user-card"') == 3
    assert "<script>alert" not in dom  # the escaped profile stayed text


def test_odd_names_and_broken_inputs(tmp_path):
    run = make_run(tmp_path, examples=False)
    results = json.loads((run / "results.json").read_text())
    results["results"]["cost $5 <b>"] = {"full": {"ndcg@10": float("nan")}, "sampled": {"ndcg@10": 0.3}}
    results["results"]["junk"] = "not a dict"
    (run / "results.json").write_text(json.dumps(results))
    with open(run / "train" / "metrics.jsonl", "a") as fh:  # completes the half-written line with a $ name
        fh.write('ain", "step": 13, "reward": 1.0, "rewards/a $x$ b/mean": 0.5}\n')
    html = write_report(run).read_text()
    assert 'data:image/png;base64,' in _element(html, "method-bars")
    assert 'data:image/png;base64,' in _element(html, "reward-curves")
    assert "cost $5 &lt;b&gt;" in _element(html, "method-table") and "cost $5 <b>" not in html

    (run / "results.json").write_text("{not json")
    html = write_report(run).read_text()
    assert "results.json could not be read" in html and 'id="reward-curves"' in html


def test_metric_and_methods_come_from_the_run(tmp_path):
    """Nothing is fixed to ndcg@10 or to the quick start's method names: the run's primary metric, its own compared
    methods (in order) and labels, and the validation rows' primary metric drive the page."""
    from bluerec.report.load import compared_methods, primary_metric

    run = tmp_path / "other"
    run.mkdir()
    res = {
        "split": "valid", "n_users": 3, "n_items": 30, "primary_metric": "recall@10",
        "compare": ["zeroshot", "rlpf"], "method_labels": {"rlpf": "RLPF-trained"},
        "results": {
            "last_item": {"full": {"ndcg@10": 0.9, "recall@10": 0.30, "mrr": 0.2}},
            "zeroshot": {"full": {"ndcg@10": 0.8, "recall@10": 0.20, "mrr": 0.1}},
            "rlpf": {"full": {"ndcg@10": 0.7, "recall@10": 0.25, "mrr": 0.1}},
        },
    }
    (run / "summary.json").write_text(json.dumps(res))
    (run / "train").mkdir()
    evals = [{"kind": "eval", "step": s, "eval/ndcg@10": 0.5, "eval/mrr": 0.1 * s, "primary_metric": "eval/mrr"}
             for s in (0, 5, 10)]
    (run / "train" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in evals))
    html = write_report(run).read_text(encoding="utf-8")
    headline = re.search(r'<p class="headline">(.*?)</p>', html, re.S).group(1)
    assert "Valid recall@10 (full)" in headline and "zeroshot <b>0.2000</b>" in headline
    assert "RLPF-trained <b>0.2500</b>" in headline and "+25%" in headline
    assert "warm" not in html.lower() and "NDCG@10" not in html
    table = _element(html, "method-table")
    assert re.findall(r'<tr class="highlight" data-method="([^"]+)"', table) == ["zeroshot", "rlpf"]
    assert table.index("full recall@10") < table.index("full mrr")
    assert "Validation mrr" in _element(html, "validation-ndcg")
    # older files without the names: the first metric of the results, and the example users' methods
    assert primary_metric({"results": {"a": {"full": {"mrr@5": 1.0, "ndcg@5": 0.5}}}}) == "mrr@5"
    assert compared_methods({"examples": [{"methods": {"x": {}, "y": {}}}]}) == ["x", "y"]
