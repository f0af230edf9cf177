"""Profiles from any server that speaks the OpenAI ``/v1/chat/completions`` API (vLLM, llama.cpp,
OpenAI itself), with the standard library's ``urllib`` only.

The API key is read from an environment variable at each request and sent as a bearer token; it is
never stored on the object, never part of its ``repr`` and never logged. Requests time out, and 429,
5xx and connection errors are retried with exponential backoff (honouring ``Retry-After``).

Example::

    profiler = OpenAICompatProfiler("http://127.0.0.1:8000", model="google/gemma-3-1b-it", api_key_env="VLLM_KEY")
    outs = profiler.generate([messages], num_samples=4, max_new_tokens=128, seed=0)
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class OpenAICompatError(RuntimeError):
    """The server refused a request or kept failing after all retries."""


class OpenAICompatProfiler:
    """A :class:`~bluerec.profiler.backends.base.ProfilerBackend` over an OpenAI-compatible server.

    Args:
        base_url: server root (``http://host:8000``) or API root (``http://host:8000/v1``).
        model: the ``model`` field of each request.
        api_key_env: environment variable holding the API key; unset means no ``Authorization`` header.
        timeout: seconds per HTTP request.
        max_retries: retries after the first attempt for 429/5xx/connection errors.
        backoff: first retry delay in seconds; doubles each retry, capped at ``max_backoff``, plus up to
            10% jitter.
        concurrency: requests in flight at once (one request per prompt).
        chars_per_token: for :meth:`count_tokens`, which can only estimate.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        *,
        max_backoff: float = 30.0,
        concurrency: int = 4,
        chars_per_token: float = 3.5,
        sleep: Callable[[float], None] = time.sleep,
    ):
        base = base_url.rstrip("/")
        self.endpoint = f"{base}/chat/completions" if base.endswith("/v1") else f"{base}/v1/chat/completions"
        self.base_url = base
        self.model = model
        self.api_key_env = api_key_env
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.concurrency = max(1, concurrency)
        self.chars_per_token = chars_per_token
        self._sleep = sleep
        self.retries = 0  # retries made so far (for monitoring and tests)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"OpenAICompatProfiler(base_url={self.base_url!r}, model={self.model!r}, "
                f"api_key_env={self.api_key_env!r}, timeout={self.timeout}, max_retries={self.max_retries})")

    __str__ = __repr__

    # -- protocol --------------------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        """An estimate (characters / ``chars_per_token``): the server's tokenizer is not available here."""
        return int(len(text) / self.chars_per_token) + 16

    def describe(self) -> dict[str, Any]:
        return {"backend": "openai_compat", "model": self.model, "base_url": self.base_url}

    def generate(
        self,
        prompts_messages: list[list[dict]],
        *,
        num_samples: int = 1,
        max_new_tokens: int = 128,
        temperature: float = 1.0,
        top_p: float = 1.0,
        do_sample: bool = True,
        seed: int | None = 0,
    ) -> list[list[str]]:
        """One request per prompt (``n = num_samples``; topped up with more requests if a server returns
        fewer choices). Greedy decoding sends ``temperature: 0``."""
        def one(idx_messages: tuple[int, list[dict]]) -> list[str]:
            idx, messages = idx_messages
            texts: list[str] = []
            attempt = 0
            while len(texts) < num_samples:
                body: dict[str, Any] = {
                    "model": self.model,
                    "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
                    "max_tokens": max_new_tokens,
                    "n": num_samples - len(texts) if do_sample else 1,
                    "temperature": temperature if do_sample else 0.0,
                    "top_p": top_p if do_sample else 1.0,
                }
                if seed is not None:
                    body["seed"] = seed + idx * 1000 + attempt
                choices = self._post(body).get("choices") or []
                got = [str((c.get("message") or {}).get("content") or "").strip() for c in choices]
                if not got:
                    raise OpenAICompatError(f"{self.endpoint}: response without choices")
                if not do_sample:
                    return got[:1] * num_samples
                texts.extend(got)
                attempt += 1
            return texts[:num_samples]

        if not prompts_messages:
            return []
        jobs = list(enumerate(prompts_messages))
        if self.concurrency == 1 or len(jobs) == 1:
            return [one(j) for j in jobs]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(jobs))) as pool:
            return list(pool.map(one, jobs))

    # -- HTTP ------------------------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(self.max_backoff, max(0.0, float(retry_after)))
            except ValueError:
                pass
        base = min(self.max_backoff, self.backoff * (2**attempt))
        return base + random.uniform(0, 0.1 * base)

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body).encode("utf-8")
        last_problem = ""
        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(self.endpoint, data=data, headers=self._headers(), method="POST")
            retry_after = None
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as err:
                detail = _short(err.read())
                if err.code not in RETRY_STATUS:
                    raise OpenAICompatError(f"{self.endpoint}: HTTP {err.code}: {detail}") from None
                last_problem = f"HTTP {err.code}: {detail}"
                retry_after = err.headers.get("Retry-After") if err.headers else None
            except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError) as err:
                reason = getattr(err, "reason", err)
                last_problem = f"{type(err).__name__}: {reason}"
            except json.JSONDecodeError as err:
                raise OpenAICompatError(f"{self.endpoint}: response is not JSON: {err}") from None
            if attempt < self.max_retries:
                delay = self._delay(attempt, retry_after)
                with self._lock:
                    self.retries += 1
                log.warning("%s: %s; retry %d/%d in %.2fs", self.endpoint, last_problem, attempt + 1,
                            self.max_retries, delay)
                self._sleep(delay)
        raise OpenAICompatError(f"{self.endpoint}: giving up after {self.max_retries + 1} attempts: {last_problem}")


def _short(raw: bytes, limit: int = 300) -> str:
    text = raw.decode("utf-8", errors="replace").strip()
    return text if len(text) <= limit else text[:limit] + "…"
