"""Hostile use of the command line, each case a real subprocess (``python -m bluerec.cli.main``).

Every case must end with exit code 2 and exactly one line on stderr that names the option, field or path at
fault; no traceback unless ``--debug``; and every file that existed before is byte-identical after.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest
import yaml

from support.cli import assert_one_line_error, run_cli, snapshot


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A tiny synthetic raw set, its prepared dataset, and previous outputs that failures must not touch."""
    root = tmp_path_factory.mktemp("hostile")
    from bluerec.data.config import PrepareConfig
    from bluerec.data.prepare import prepare_dataset
    from bluerec.data.synth import SynthConfig, write_synth

    write_synth(SynthConfig(n_users=120, n_items=60, n_interests=6, seed=1), root / "raw")
    source = {"format": "amazon2023", "reviews": [str(root / "raw/amazon/All_Beauty.jsonl.gz")],
              "meta": [str(root / "raw/amazon/meta_All_Beauty.jsonl.gz")]}
    (root / "prepare.yaml").write_text(yaml.safe_dump({"source": source, "k_core": 0}))
    prepare_dataset(PrepareConfig.model_validate({"source": source, "k_core": 0}), root / "data")
    # previous outputs
    prev = root / "prev"
    (prev / "eval" / "users").mkdir(parents=True)
    (prev / "eval" / "summary.json").write_text('{"results": {"popularity": {"full": {"ndcg@10": 0.1}}}}\n')
    (prev / "eval" / "users" / "popularity.full.parquet").write_bytes(b"PAR1 old rows PAR1")
    (prev / "profiles.jsonl").write_text('{"user_id": "u", "profile": "old"}\n')
    (prev / "a_file").write_text("not a folder\n")
    # bad configs
    (root / "bad_template.yaml").write_text(yaml.safe_dump({"source": source, "item_text": {"template": "{title} {colour}"}}))
    (root / "bad_memory.yaml").write_text(yaml.safe_dump({"source": source, "memory_limit": "lots"}))
    (root / "binary.yaml").write_bytes(gzip.compress(b"source: {}\n" * 20))
    # broken datasets
    import shutil

    for name in ("bad_manifest", "bad_parquet"):
        shutil.copytree(root / "data", root / name)
    (root / "bad_manifest" / "manifest.json").write_text('{"format_version": 1, "counts": ')
    items = root / "bad_parquet" / "items.parquet"
    items.write_bytes(items.read_bytes()[: items.stat().st_size // 2])
    # model folders that must be refused
    pickled = root / "pickled_model"
    pickled.mkdir()
    (pickled / "config.json").write_text('{"model_type": "gpt2"}')
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x02pickle")
    remote = root / "remote_code_model"
    remote.mkdir()
    (remote / "config.json").write_text('{"model_type": "x", "auto_map": {"AutoModelForCausalLM": "m.M"}}')
    (remote / "model.safetensors").write_bytes(b"{}")
    return root


def case(world: Path, *args: str, **kw) -> tuple[subprocess.CompletedProcess[str], bool]:
    """Run one case; returns the process and whether every file under ``world`` is unchanged."""
    before = snapshot(world)
    proc = run_cli(*[a.replace("{w}", str(world)) for a in args], cwd=world, **kw)
    return proc, snapshot(world) == before


EVAL = ("evaluate", "-d", "{w}/data", "-m", "popularity", "--cache-dir", "{w}/cache")

CASES = {
    # option ranges and choices
    "evaluate --max-users 0": ((*EVAL, "--out", "{w}/prev/eval", "--max-users", "0"), ["--max-users", ">= 1"]),
    "evaluate --max-users -5": ((*EVAL, "--out", "{w}/prev/eval", "--max-users", "-5"), ["--max-users"]),
    "evaluate --protocol fullx": ((*EVAL, "--out", "{w}/prev/eval", "--protocol", "fullx"), ["protocol", "fullx", "full", "sampled"]),
    "evaluate --split bogus": ((*EVAL, "--out", "{w}/prev/eval", "--split", "bogus"), ["split", "bogus"]),
    "evaluate unknown option": ((*EVAL, "--out", "{w}/prev/eval", "--bogus"), ["--bogus"]),
    "profile --max-users -5": (("profile", "--profiler", "{w}/pickled_model", "-d", "{w}/data", "--out",
                                "{w}/prev/profiles.jsonl", "--max-users", "-5"), ["--max-users", "-5"]),
    "profile --max-users 0": (("profile", "--profiler", "{w}/pickled_model", "-d", "{w}/data", "--out",
                               "{w}/prev/profiles.jsonl", "--max-users", "0"), ["--max-users"]),
    # outputs that cannot be written
    "evaluate --out existing file": ((*EVAL, "--out", "{w}/prev/a_file"), ["--out", "a_file", "existing file"]),
    "evaluate --out below a file": ((*EVAL, "--out", "{w}/prev/a_file/eval"), ["--out", "a_file"]),
    "prepare --out existing file": (("data", "prepare", "-c", "{w}/prepare.yaml", "--out", "{w}/prev/a_file"), ["a_file"]),
    # sampled protocol asked for explicitly on a catalogue too small for it: refused at once, with the numbers
    "evaluate --protocol sampled, small catalogue": (
        (*EVAL, "--out", "{w}/prev/eval", "--protocol", "sampled"), ["sampled", "num_negatives=99", "60 items"]),
    # bad configs
    "unknown template placeholder": (("data", "prepare", "-c", "{w}/bad_template.yaml", "--out", "{w}/new"),
                                     ["item_text.template", "colour"]),
    "memory_limit: lots": (("data", "prepare", "-c", "{w}/bad_memory.yaml", "--out", "{w}/new"), ["memory_limit", "lots"]),
    "binary YAML config": (("data", "prepare", "-c", "{w}/binary.yaml", "--out", "{w}/new"), ["binary.yaml"]),
    "missing config": (("data", "prepare", "-c", "{w}/nope.yaml", "--out", "{w}/new"), ["nope.yaml"]),
    # damaged prepared datasets
    "manifest.json not JSON": (("evaluate", "-d", "{w}/bad_manifest", "--out", "{w}/prev/eval", "-m", "popularity"),
                               ["manifest.json", "JSON"]),
    "truncated Parquet": (("evaluate", "-d", "{w}/bad_parquet", "--out", "{w}/prev/eval", "-m", "popularity"),
                          ["items.parquet", "Parquet"]),
    "dataset folder missing": (("evaluate", "-d", "{w}/nowhere", "--out", "{w}/prev/eval"), ["nowhere"]),
    # models
    "profiler path that does not exist": (("profile", "--profiler", "{w}/runs/x/final", "-d", "{w}/data", "--out",
                                           "{w}/prev/profiles.jsonl"), ["--profiler", "runs/x/final", "no such model folder"]),
    "hub id offline": (("profile", "--profiler", "nobody-xyz/not-a-model", "-d", "{w}/data", "--out",
                        "{w}/prev/profiles.jsonl"), ["nobody-xyz/not-a-model", "offline", "HF_HUB_OFFLINE"]),
    "pickle-only model": (("profile", "--profiler", "{w}/pickled_model", "-d", "{w}/data", "--out",
                           "{w}/prev/profiles.jsonl"), ["pickled_model", "pickle", "safetensors"]),
    "auto_map model": (("evaluate", "-d", "{w}/data", "--out", "{w}/prev/eval", "--profiler", "{w}/remote_code_model"),
                       ["remote_code_model", "auto_map"]),
    "report on a missing folder": (("report", "{w}/no_run"), ["no_run", "not found"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_case_is_one_clear_line(world: Path, name: str) -> None:
    args, names = CASES[name]
    proc, unchanged = case(world, *args)
    message = assert_one_line_error(proc, *names)
    assert unchanged, f"{name}: files changed ({message})"
    assert not (world / "new").exists()


def test_debug_shows_the_traceback(world: Path) -> None:
    proc, unchanged = case(world, "--debug", *EVAL, "--out", "{w}/prev/eval", "--max-users", "0")
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "UserError" in proc.stderr
    proc, _ = case(world, *EVAL, "--out", "{w}/prev/eval", "--max-users", "0", env={"BLUEREC_DEBUG": "1"})
    assert "Traceback" in proc.stderr
    assert unchanged


def test_disk_full_during_prepare_leaves_the_old_dataset(world: Path) -> None:
    """ENOSPC (injected where the finished files are flushed to disk) is one line; the old output is untouched."""
    inject = ("import errno, os\n"
              "def full(fd):\n    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))\n"
              "os.fsync = full\n")
    before = snapshot(world)
    proc = run_cli("data", "prepare", "-c", str(world / "prepare.yaml"), "--out", str(world / "data"), cwd=world,
                   code=inject)
    assert_one_line_error(proc, "disk full")
    assert snapshot(world) == before


def test_concurrent_writer_is_refused_naming_the_other(world: Path) -> None:
    """A live lock (this test process holds it) refuses a second prepare at once, naming pid and command."""
    from bluerec.io import output_lock

    before = snapshot(world)
    with output_lock(world / "data"):
        proc = run_cli("data", "prepare", "-c", str(world / "prepare.yaml"), "--out", str(world / "data"), cwd=world)
    line = assert_one_line_error(proc, "another run is writing it", f"pid {os.getpid()}")
    assert "since" in line
    assert snapshot(world) == before
