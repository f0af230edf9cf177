"""``bluerec serve``: the HTTP API on uvicorn (see :mod:`bluerec.serve`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from bluerec.cli._common import friendly_errors, say


def serve(
    profiler: Optional[str] = typer.Option(None, "--profiler", help="Profiler folder (a run's final/ or any save_pretrained folder) or model name; omit to serve ready profiles only."),
    dataset: Optional[Path] = typer.Option(None, "--dataset", "-d", help="Prepared-dataset folder, or an item file (.jsonl/.parquet with item_id, text[, title])."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML ServeSettings (limits, batching, embedder, api_key); options below override it."),
    host: Optional[str] = typer.Option(None, help="Interface to listen on (default 127.0.0.1, loopback only)."),
    port: Optional[int] = typer.Option(None, help="Port (default 8000; 0 picks a free one)."),
    index: Optional[str] = typer.Option(None, help="Item index: exact (torch) or faiss (IndexFlatIP)."),
    embedder: Optional[str] = typer.Option(None, help="Embedding model (default minilm = all-MiniLM-L6-v2, offline)."),
    cache_dir: Optional[Path] = typer.Option(None, help="Item-embedding cache folder (default .cache/embeddings)."),
    max_new_tokens: Optional[int] = typer.Option(None, help="Longest profile in tokens (greedy)."),
    batching: Optional[bool] = typer.Option(None, "--batching/--no-batching", help="Micro-batch requests that arrive together (default on)."),
    max_batch_size: Optional[int] = typer.Option(None, help="Most requests per generate/retrieval call (default 16)."),
    max_wait_ms: Optional[float] = typer.Option(None, help="Longest wait of a batch's first request, ms (default 10)."),
    device: Optional[str] = typer.Option(None, help="Profiler device: cpu (default), cuda, auto."),
    threads: Optional[int] = typer.Option(None, help="Torch threads (default: torch's)."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Serve POST /v1/profile, POST /v1/recommend, GET /v1/info and GET /healthz (OpenAPI at /docs).
    The API key, if any, comes from the config file or $BLUEREC_API_KEY (never the command line)."""
    import yaml

    from bluerec.config import parse_config, set_dotted
    from bluerec.serve.settings import ServeSettings

    overrides: dict[str, Any] = {
        "profiler": profiler, "catalogue": None if dataset is None else str(dataset), "host": host, "port": port,
        "index": index, "embedder.model": embedder, "embedder.cache_dir": None if cache_dir is None else str(cache_dir),
        "max_new_tokens": max_new_tokens, "batching.enabled": batching, "batching.max_batch_size": max_batch_size,
        "batching.max_wait_ms": max_wait_ms, "device": device, "num_threads": threads,
    }
    with friendly_errors():
        data: dict[str, Any] = {}
        if config is not None:
            from bluerec.config import ConfigError

            try:
                data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError) as err:
                raise ConfigError(f"{config}: {err}") from None
        for key, value in overrides.items():
            if value is not None:
                set_dotted(data, key, value)
        settings = parse_config(ServeSettings, data, str(config or "command line"))
        run_server(settings, log_level)


def run_server(settings: Any, log_level: str = "info") -> None:
    """Load the engine and run uvicorn until interrupted."""
    import uvicorn

    from bluerec.serve import ServingEngine, create_app

    engine = ServingEngine.from_settings(settings, say=say)
    app = create_app(engine, settings)
    if settings.host not in ("127.0.0.1", "localhost", "::1"):
        say(f"[yellow]listening on {settings.host}: reachable from other machines"
            f"{'' if settings.effective_api_key() else ' and no API key is set'}[/]")
    say(f"serving on http://{settings.host}:{settings.port} (OpenAPI: /docs)")
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=log_level, access_log=False)
