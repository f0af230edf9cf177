"""Run the ``bluerec`` CLI in a child process and check its failures (one line, exit 2, files unchanged)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository root


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, code: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a child process (``code``, when given, runs first: a fault injected in the child)."""
    child_env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                 "COLUMNS": "80", "BLUEREC_DEBUG": ""}
    child_env.update(env or {})
    if code is None:
        cmd = [sys.executable, "-m", "bluerec.cli.main", *args]
    else:
        boot = code + "\nimport sys\nfrom bluerec.cli.main import app\nsys.argv = ['bluerec', *sys.argv[1:]]\napp()\n"
        cmd = [sys.executable, "-c", boot, *args]
    return subprocess.run(cmd, cwd=cwd, env=child_env, capture_output=True, text=True, timeout=timeout)


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (hidden ones too), by relative path."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def error_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("error:")]


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *names: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr[-3000:]
    lines = error_lines(proc)
    assert len(lines) == 1, proc.stderr
    # nothing after the error line: it is the whole message, not the head of a wrapped or multi-line one
    assert proc.stderr.rstrip().splitlines()[-1] == lines[0], proc.stderr
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]
