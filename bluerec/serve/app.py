"""The FastAPI app: ``POST /v1/profile``, ``POST /v1/recommend``, ``GET /v1/info``, ``GET /healthz``.

Every error body is an :class:`~bluerec.serve.models.ErrorResponse` (``detail``, per-field ``errors`` naming the
field, ``request_id``); unexpected failures are a generic 500 whose details go only to the server log, under the
same request id (also sent as the ``X-Request-ID`` header). With an API key configured, ``/v1/*`` needs it in the
``X-API-Key`` header (compared in constant time); ``/healthz`` and the OpenAPI schema stay open.

Example::

    from fastapi.testclient import TestClient
    app = create_app(ServingEngine.from_settings(settings), settings)
    with TestClient(app) as client:
        print(client.post("/v1/recommend", json={"profile": "Loves cast iron", "k": 3}).json()["items"])
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import uuid
from collections.abc import Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from starlette.exceptions import HTTPException as StarletteHTTPException

from bluerec.profiler.prompts import HistoryItem
from bluerec.serve.batcher import MicroBatcher, QueueFull
from bluerec.serve.engine import Hits, Query, ServingEngine
from bluerec.serve.models import (
    ErrorResponse,
    HealthResponse,
    HistoryEntry,
    InfoResponse,
    ProfileRequest,
    ProfileResponse,
    RecommendedItem,
    RecommendRequest,
    RecommendResponse,
)
from bluerec.serve.settings import API_KEY_HEADER, LimitSettings, ServeSettings

log = logging.getLogger("bluerec.serve")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
ERRORS = {400: {"model": ErrorResponse}, 401: {"model": ErrorResponse}, 413: {"model": ErrorResponse},
          422: {"model": ErrorResponse}, 500: {"model": ErrorResponse}, 503: {"model": ErrorResponse}}


class ApiError(Exception):
    """An error answered with ``status`` and an :class:`ErrorResponse` (``errors``: ``(loc, msg, type)``)."""

    def __init__(self, status: int, detail: str, errors: Sequence[tuple[tuple[str | int, ...], str, str]] = (),
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.errors, self.headers = status, detail, list(errors), headers


def field_name(loc: Sequence[str | int]) -> str:
    """``("body", "history", 3, "text")`` → ``history[3].text``."""
    out = ""
    for part in loc:
        if part == "body" and not out:
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _error_body(detail: str, errors: Sequence[tuple[Sequence[str | int], str, str]], request_id: str) -> dict:
    return {"detail": detail, "request_id": request_id,
            "errors": [{"field": field_name(loc), "loc": list(loc), "msg": msg, "type": typ} for loc, msg, typ in errors]}


def _request_id(scope_or_request: Any) -> str:
    scope = getattr(scope_or_request, "scope", scope_or_request)
    return str(scope.get("state", {}).get("request_id", "-"))


class RequestGuard:
    """Pure ASGI middleware: gives every request an id (``X-Request-ID``, echoed when the client sent a sane one),
    refuses bodies over ``max_bytes`` with 413 before the app sees them (checked on ``Content-Length`` and on
    the bytes actually received, so a chunked upload cannot get around it), and answers an unexpected failure with
    a generic 500 (details to the log) without letting it reach the server, which would drop the connection."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        given = headers.get("x-request-id", "")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = rid

        started = False

        async def send_with_id(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                await self._reply(send_with_id, 400, "invalid Content-Length header", "content_length", rid)
                return
            if int(length) > self.max_bytes:
                await self._reply(send_with_id, 413, f"request body over {self.max_bytes} bytes", "body_too_large", rid)
                return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._reply(send_with_id, 413, f"request body over {self.max_bytes} bytes", "body_too_large", rid)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        try:
            await self.app(scope, replay, send_with_id)
        except Exception as err:  # noqa: BLE001 - answered here, so the server keeps the connection alive
            log.error("request %s %s %s failed", rid, scope.get("method"), scope.get("path"), exc_info=err)
            if started:
                raise
            body = json.dumps(_error_body("internal server error", [], rid)).encode()
            await send_with_id({"type": "http.response.start", "status": 500,
                                "headers": [(b"content-type", b"application/json"),
                                            (b"content-length", str(len(body)).encode())]})
            await send_with_id({"type": "http.response.body", "body": body})

    @staticmethod
    async def _reply(send: Any, status: int, detail: str, typ: str, rid: str) -> None:
        body = json.dumps(_error_body(detail, [(("body",), detail, typ)], rid)).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


# -- request checks -------------------------------------------------------------------------------------------


class ResolvedHistory:
    """A request's history checked against the limits and the catalogue."""

    def __init__(self, items: list[HistoryItem], known: list[int], unknown: list[str]) -> None:
        self.items, self.known, self.unknown = items, known, unknown


def check_history(history: list[HistoryEntry], engine: ServingEngine, limits: LimitSettings,
                  *, need_known: bool) -> ResolvedHistory:
    """Apply the history limits; map item ids to the catalogue. Unknown ids are counted, not dropped silently; if
    ``need_known`` and nothing usable remains, that is a 422."""
    if len(history) > limits.max_history:
        raise ApiError(422, "history too long", [(("body", "history"),
                       f"at most {limits.max_history} entries, got {len(history)}", "too_long")])
    problems = []
    for i, entry in enumerate(history):
        for name in ("text", "review"):
            value = getattr(entry, name)
            if value is not None and len(value) > limits.max_text_chars:
                problems.append((("body", "history", i, name),
                                 f"at most {limits.max_text_chars} characters, got {len(value)}", "too_long"))
    if problems:
        raise ApiError(422, "text too long", problems)
    catalogue, field = engine.catalogue, engine.prompt.item_field
    items: list[HistoryItem] = []
    known: list[int] = []
    unknown: list[str] = []
    for entry in history:
        if entry.item_id is not None:
            idx = catalogue.index.get(entry.item_id)
            if idx is None:
                unknown.append(entry.item_id)
                continue
            known.append(idx)
            items.append(HistoryItem(catalogue.prompt_text(idx, field), entry.rating, entry.review))
        else:
            items.append(HistoryItem(entry.text or "", entry.rating, entry.review))
    if need_known and not items:
        raise ApiError(422, "no usable history", [(("body", "history"),
                       f"none of the {len(unknown)} item ids is in the catalogue (unknown: {unknown[:10]})",
                       "unknown_items")])
    return ResolvedHistory(items, known, unknown)


def check_k(k: int | None, limits: LimitSettings) -> int:
    k = limits.default_k if k is None else k
    if not 1 <= k <= limits.max_k:
        raise ApiError(422, "k out of range", [(("body", "k"), f"must lie in [1, {limits.max_k}], got {k}", "range")])
    return k


def check_candidates(candidates: list[str] | None, engine: ServingEngine,
                     limits: LimitSettings) -> tuple[tuple[int, ...] | None, list[str]]:
    if candidates is None:
        return None, []
    if len(candidates) > limits.max_candidates:
        raise ApiError(422, "too many candidates", [(("body", "candidates"),
                       f"at most {limits.max_candidates} items, got {len(candidates)}", "too_long")])
    index = engine.catalogue.index
    known = tuple(index[c] for c in candidates if c in index)
    unknown = [c for c in candidates if c not in index]
    if not known:
        raise ApiError(422, "no known candidates", [(("body", "candidates"),
                       f"none of the {len(unknown)} candidate ids is in the catalogue (unknown: {unknown[:10]})",
                       "unknown_items")])
    return known, unknown


def _hits_to_items(hits: Hits, engine: ServingEngine) -> list[RecommendedItem]:
    cat = engine.catalogue
    return [RecommendedItem(item_id=cat.ids[i], score=round(float(s), 6), title=cat.titles[i], text=cat.texts[i])
            for i, s in zip(hits.indices, hits.scores)]


# -- the app --------------------------------------------------------------------------------------------------


def create_app(engine: ServingEngine, settings: ServeSettings) -> FastAPI:
    """The FastAPI app serving ``engine`` under ``settings`` (limits, batching, API key)."""
    limits, batching = settings.limits, settings.batching
    api_key = settings.effective_api_key()
    generator: MicroBatcher[list[HistoryItem], str] = MicroBatcher(
        engine.profile_batch, max_batch_size=batching.max_batch_size, max_wait_ms=batching.max_wait_ms,
        enabled=batching.enabled, max_queue=batching.max_queue, name="generate")
    retriever: MicroBatcher[Query, Hits] = MicroBatcher(
        engine.retrieve_batch, max_batch_size=batching.max_batch_size, max_wait_ms=batching.max_wait_ms,
        enabled=batching.enabled, max_queue=batching.max_queue, name="retrieve")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        generator.close()
        retriever.close()

    app = FastAPI(
        title="bluerec",
        version=_version(),
        summary="Readable user profiles from interaction histories, and the items they retrieve.",
        description=(f"Limits: history ≤ {limits.max_history} entries, texts ≤ {limits.max_text_chars} characters, "
                     f"k in [1, {limits.max_k}], candidates ≤ {limits.max_candidates}, body ≤ {limits.max_body_bytes} "
                     f"bytes. {'An API key is required in the X-API-Key header.' if api_key else ''}"),
        lifespan=lifespan,
    )
    app.state.engine, app.state.generator, app.state.retriever = engine, generator, retriever
    key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                              description="Required when the server has an API key.")

    def require_key(given: str | None = Depends(key_header)) -> None:
        if api_key is None:
            return
        if given is None or not secrets.compare_digest(given.encode("utf-8"), api_key.encode("utf-8")):
            raise ApiError(401, f"missing or wrong API key (header {API_KEY_HEADER})",
                           headers={"WWW-Authenticate": API_KEY_HEADER})

    # -- error handlers: one body format, never a stack trace ------------------------------------------
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, err: ApiError) -> JSONResponse:
        return JSONResponse(_error_body(err.detail, err.errors, _request_id(request)), err.status, headers=err.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        # The input is not echoed back: it may be large, and it is the client's own.
        errors = [(tuple(e.get("loc", ())), str(e.get("msg", "")), str(e.get("type", ""))) for e in err.errors()]
        return JSONResponse(_error_body("invalid request", errors, _request_id(request)), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException) -> JSONResponse:
        detail = err.detail if isinstance(err.detail, str) else "error"
        errors = [(("body",), detail, "parse_error")] if err.status_code == 400 else []  # e.g. JSON nested too deep
        return JSONResponse(_error_body(detail, errors, _request_id(request)), err.status_code,
                            headers=getattr(err, "headers", None))

    @app.exception_handler(QueueFull)
    async def _busy(request: Request, err: QueueFull) -> JSONResponse:
        return JSONResponse(_error_body("server busy, retry later", [], _request_id(request)), 503,
                            headers={"Retry-After": "1"})

    @app.exception_handler(Exception)  # a fallback: RequestGuard answers the app's own failures
    async def _crash(request: Request, err: Exception) -> JSONResponse:
        rid = _request_id(request)
        log.error("request %s %s %s failed", rid, request.method, request.url.path, exc_info=err)
        return JSONResponse(_error_body("internal server error", [], rid), 500, headers={"X-Request-ID": rid})

    # -- endpoints --------------------------------------------------------------------------------------
    @app.get("/healthz", response_model=HealthResponse, tags=["ops"])
    async def healthz() -> HealthResponse:
        """Liveness: the server is up and its models are loaded (no API key needed)."""
        return HealthResponse(status="ok")

    @app.get("/v1/info", response_model=InfoResponse, responses=ERRORS, tags=["ops"],
             dependencies=[Depends(require_key)])
    async def info() -> InfoResponse:
        """Models, catalogue size, index type, batching counters and limits."""
        d = engine.describe()
        return InfoResponse(**d, batching={"generate": generator.describe(), "retrieve": retriever.describe()},
                            limits=limits.model_dump())

    @app.post("/v1/profile", response_model=ProfileResponse, responses=ERRORS, tags=["api"],
              dependencies=[Depends(require_key)])
    async def profile(body: ProfileRequest, request: Request) -> ProfileResponse:
        """A history (catalogue ids or free texts, oldest first, optional ratings) → the profile text."""
        if engine.profiler is None:
            raise ApiError(503, "this server has no profiler; send a ready profile to /v1/recommend")
        hist = check_history(body.history, engine, limits, need_known=True)
        text = await generator.submit(hist.items)
        return ProfileResponse(profile=text, model=engine.profiler_info() or {}, generation=engine.generation_info() or {},
                               n_history_used=len(hist.items), unknown_item_ids=hist.unknown,
                               n_unknown=len(hist.unknown), request_id=_request_id(request))

    @app.post("/v1/recommend", response_model=RecommendResponse, responses=ERRORS, tags=["api"],
              dependencies=[Depends(require_key)])
    async def recommend(body: RecommendRequest, request: Request) -> RecommendResponse:
        """A history (profiled first) or a ready profile → the top-K catalogue items with scores, the history's
        items excluded, optionally only among ``candidates``."""
        k = check_k(body.k, limits)
        if body.profile is not None and len(body.profile) > limits.max_text_chars:
            raise ApiError(422, "text too long", [(("body", "profile"),
                           f"at most {limits.max_text_chars} characters, got {len(body.profile)}", "too_long")])
        need_generation = body.profile is None
        if need_generation and engine.profiler is None:
            raise ApiError(503, "this server has no profiler; send a ready profile")
        hist = (check_history(body.history, engine, limits, need_known=need_generation)
                if body.history is not None else ResolvedHistory([], [], []))
        candidates, unknown_candidates = check_candidates(body.candidates, engine, limits)
        text = body.profile if body.profile is not None else await generator.submit(hist.items)
        exclude = tuple(dict.fromkeys(hist.known)) if body.exclude_history else ()
        hits = await retriever.submit(Query(text, k, exclude, candidates))
        return RecommendResponse(items=_hits_to_items(hits, engine), k=k, profile=text,
                                 profile_generated=need_generation, n_excluded=len(exclude),
                                 unknown_item_ids=hist.unknown, n_unknown=len(hist.unknown),
                                 unknown_candidate_ids=unknown_candidates,
                                 n_unknown_candidates=len(unknown_candidates), request_id=_request_id(request))

    app.add_middleware(RequestGuard, max_bytes=limits.max_body_bytes)
    return app


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("bluerec")
    except Exception:  # noqa: BLE001 - running from a source tree
        return "0"
