"""The six groups of issue 14, each with the issue's own commands (hostile single-line cases, groups 2 and 5,
are in test_hostile_cli.py). Every test here failed on the code before the fix."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from support.cli import ROOT, assert_one_line_error, run_cli, snapshot


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """Item 1's commands: `data synth --users 200 --items 100`, then prepare it with `k_core: 0`."""
    root = tmp_path_factory.mktemp("issue14")
    proc = run_cli("data", "synth", "--out", "raw", "--users", "200", "--items", "100", cwd=root)
    assert proc.returncode == 0, proc.stderr
    (root / "prep.yaml").write_text(yaml.safe_dump({
        "source": {"format": "amazon2023", "reviews": ["raw/amazon/All_Beauty.jsonl.gz"],
                   "meta": ["raw/amazon/meta_All_Beauty.jsonl.gz"]},
        "k_core": 0}))
    proc = run_cli("data", "prepare", "-c", "prep.yaml", "--out", "data", cwd=root)
    assert proc.returncode == 0, proc.stderr
    return root


# ---------------------------------------------------------------------------------------------- group 1


def test_default_evaluate_on_a_small_catalogue_falls_back_and_says_so(small: Path) -> None:
    """`bluerec evaluate -d <it> --out runs/e` used to crash after the full ranking and write nothing. With the
    default protocols the sampled one now uses the largest negative count every user has, says so (with the
    numbers) and records it; disk full while saving then leaves that output byte-identical."""
    proc = run_cli("evaluate", "-d", "data", "--out", "runs/e", cwd=small, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    warning = " ".join(proc.stderr.split())
    assert "fewer than num_negatives=99" in warning and "catalogue of 100 items" in warning
    summary = json.loads((small / "runs/e/summary.json").read_text())
    sampled = [p for p in summary["config"]["protocols"] if p["protocol"] == "sampled"]
    assert sampled and sampled[0]["num_negatives"] < 99
    assert f"using {sampled[0]['num_negatives']} negatives for every user" in warning
    assert {"full", "sampled"} <= set(summary["results"]["popularity"])

    # the same command with the disk full while the results are written: one line, old results untouched
    before = snapshot(small / "runs")
    inject = ("import errno, os\nreal = os.fsync\ncalls = []\n"
              "def fsync(fd):\n    calls.append(fd)\n"
              "    if len(calls) > 2:\n        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))\n"
              "    return real(fd)\nos.fsync = fsync\n")
    proc = run_cli("evaluate", "-d", "data", "--out", "runs/e", "-m", "popularity", "-m", "last_item", cwd=small,
                   code=inject, timeout=300)
    assert_one_line_error(proc, "disk full")
    assert snapshot(small / "runs") == before


# ---------------------------------------------------------------------------------------------- group 2


@pytest.mark.parametrize("value", ["-5", "0"])
def test_profile_max_users_out_of_range_is_refused_before_work(small: Path, value: str) -> None:
    proc = run_cli("profile", "--profiler", "sshleifer/tiny-gpt2", "-d", "data", "--out", "p.jsonl",
                   "--max-users", value, cwd=small)
    assert_one_line_error(proc, "--max-users", value)
    assert not (small / "p.jsonl").exists()


def test_library_refuses_max_users_below_one() -> None:
    from bluerec.errors import UserError
    from bluerec.profiler.profile import generate_profiles

    with pytest.raises(UserError, match="max_users must be >= 1"):
        generate_profiles(None, None, "test", None, None, Path("unused.jsonl"), max_users=-5)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- group 4


def test_killed_prepares_leave_nothing_behind_after_the_next_run(tmp_path: Path) -> None:
    """Item 4: SIGKILL `prepare` while it works, several times; the next run removes the hidden work folders
    (and takes over the dead run's lock), so only the dataset is left."""
    proc = run_cli("data", "synth", "--out", "raw", "--users", "3000", "--items", "800", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "prep.yaml").write_text(yaml.safe_dump({
        "source": {"format": "amazon2023", "reviews": ["raw/amazon/All_Beauty.jsonl.gz"],
                   "meta": ["raw/amazon/meta_All_Beauty.jsonl.gz"]}, "k_core": 0}))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    killed = 0
    for _ in range(3):
        child = subprocess.Popen([sys.executable, "-m", "bluerec.cli.main", "data", "prepare", "-c", "prep.yaml",
                                  "--out", "data"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and child.poll() is None and not list(tmp_path.glob(".data.work-*")):
            time.sleep(0.005)
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            killed += 1
        child.wait()
    assert killed, "prepare finished before it could be killed"
    left = sorted(p.name for p in tmp_path.glob(".data.*"))
    assert left, "the killed runs were expected to leave work folders (else this test proves nothing)"

    proc = run_cli("data", "prepare", "-c", "prep.yaml", "--out", "data", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.glob(".data.*")) == []
    assert (tmp_path / "data" / "manifest.json").is_file()
    if any(name.endswith(".lock") for name in left):
        assert "taking over the lock" in " ".join(proc.stderr.split())


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path: Path, caplog) -> None:
    from bluerec.io import lock_path, output_lock

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    import socket

    lock = lock_path(tmp_path / "data")
    lock.write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "command": "bluerec data prepare",
                                "started": 0}))
    with output_lock(tmp_path / "data"):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not lock.exists()
    assert "taking over the lock" in caplog.text


# ---------------------------------------------------------------------------------------------- group 6


def test_report_counts_skipped_lines_and_reads_an_evaluate_folder(small: Path, tmp_path: Path) -> None:
    # an evaluate output folder: summary.json, not results.json
    ev = tmp_path / "ev"
    (ev / "users").mkdir(parents=True)
    (ev / "summary.json").write_text(json.dumps({
        "dataset": "data", "split": "test", "n_users": 3, "n_items": 9, "embedder": "e",
        "results": {"popularity": {"full": {"ndcg@10": 0.125}, "sampled": {"ndcg@10": 0.25}}}}))
    proc = run_cli("report", str(ev), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    html = (ev / "report.html").read_text()
    assert "no results.json" not in html and "popularity" in html and "0.1250" in html

    # a run whose metrics.jsonl has binary and truncated lines: the report says how many it skipped
    run = tmp_path / "run"
    (run / "train").mkdir(parents=True)
    good = [json.dumps({"step": s, "kind": "train", "reward": 0.1 * s}) for s in range(1, 4)]
    (run / "train" / "metrics.jsonl").write_bytes(
        ("\n".join(good) + "\n").encode() + b"\x00\xff\xfe binary\n" + b'{"step": 4, "rew\n')
    proc = run_cli("report", str(run), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "skipped 2 unreadable line(s)" in " ".join(proc.stderr.split())


def test_prepared_dataset_gets_ordinary_permissions(small: Path) -> None:
    """Output folders follow the umask (mkdtemp alone gives 0700)."""
    umask = os.umask(0o022)
    os.umask(umask)
    mode = stat.S_IMODE((small / "data").stat().st_mode)
    assert mode == 0o777 & ~umask, oct(mode)


def test_model_folder_gets_ordinary_permissions(tmp_path: Path) -> None:
    from bluerec.profiler.checkpoint import save_pretrained_atomic

    class Model:
        def save_pretrained(self, folder: Path) -> None:
            (Path(folder) / "model.safetensors").write_bytes(b"x")

    out = save_pretrained_atomic(Model(), None, tmp_path / "final")
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask
