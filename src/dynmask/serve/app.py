"""The HTTP app: ``GET /health``, ``POST /predict`` (text classifiers: the rows ``dynmask predict`` prints),
``POST /impute`` and ``POST /forecast`` (series runs: JSON rows in, JSON rows out), OpenAPI docs at ``/docs``.

Texts from concurrent requests are micro-batched (:class:`MicroBatcher`) and run off the event loop. Bad
requests get a 4xx and one line of detail, never a 5xx or a hang: malformed JSON or wrong types 422, an
empty list 422, a body over ``max_body`` bytes 413, a full queue 503 with ``Retry-After``, a request that
waits longer than ``timeout_s`` 503. Shutting down answers every accepted request first.
"""

# no `from __future__ import annotations`: FastAPI reads the request models of the endpoints below from
# their annotations, which must be the classes themselves (they are defined inside create_app)

import asyncio
import json
import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Optional

from ..errors import DataError
from ..extras import require
from .batcher import MicroBatcher, QueueFull
from .body_limit import BodyLimit
from .models import ServedModel

__all__ = ["create_app", "app_from_environment", "ENVIRONMENT"]

MAX_TEXTS = 10_000  # texts in one request
MAX_ROWS = 100_000  # series rows in one request
ENVIRONMENT = "DYNMASK_SERVE"  # create_app's arguments as JSON, for the worker processes of `serve --workers N`


def create_app(
    model: "Path | ServedModel",
    *,
    max_batch: int = 64,
    wait_ms: float = 0.0,
    max_queue: int = 4096,
    max_body: int = 2**20,
    timeout_s: float = 30.0,
    threads: Optional[int] = None,
):
    """A FastAPI app serving ``model`` (a run folder, an ``.onnx`` export, or a loaded :class:`ServedModel`);
    ``threads``: the model's intra-op threads (None: the runtime's default)."""
    fastapi = require("fastapi")
    from fastapi import Request
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, Field

    served = model if isinstance(model, ServedModel) else ServedModel(Path(model), threads)
    texts = MicroBatcher(served.predict, max_batch=max_batch, wait_ms=wait_ms, max_queue=max_queue)
    series = MicroBatcher(
        lambda calls: [call() for call in calls], max_batch=1, wait_ms=0, max_queue=max(1, max_queue // 64)
    )

    class PredictRequest(BaseModel):
        texts: list[str] = Field(min_length=1, max_length=MAX_TEXTS)
        confidences: Optional[list[Optional[list[Optional[float]]]]] = None

    class SeriesRequest(BaseModel):
        rows: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_ROWS)
        time_column: Optional[str] = None
        interval: bool = False

    @asynccontextmanager
    async def lifespan(app):
        texts.start()
        series.start()
        yield
        await texts.close()  # answer what was accepted, then stop
        await series.close()

    app = fastapi.FastAPI(
        title="dynmask", description="Transformers over sequences with missing values", lifespan=lifespan
    )
    app.state.served, app.state.batchers = served, {"texts": texts, "series": series}

    app.add_middleware(BodyLimit, max_body=max_body)  # 413 before parsing (plain ASGI: see body_limit)

    @app.exception_handler(DataError)
    async def bad_input(request: Request, e: DataError):
        return JSONResponse({"detail": str(e).splitlines()[0]}, status_code=422)

    @app.exception_handler(QueueFull)
    async def busy(request: Request, e: QueueFull):
        return JSONResponse({"detail": f"busy: {e}; retry shortly"}, status_code=503, headers={"Retry-After": "1"})

    async def _wait(coro):
        try:
            return await asyncio.wait_for(coro, timeout_s)
        except asyncio.TimeoutError:
            raise QueueFull(f"no answer within {timeout_s:g} s") from None

    @app.get("/health")
    async def health() -> dict:
        stats = {k: b.stats() for k, b in app.state.batchers.items()}  # this worker process's
        return {"status": "ok", **served.describe(), "pid": os.getpid(), **stats}

    @app.post("/predict")
    async def predict(body: PredictRequest) -> dict:
        if served.task != "classify":
            raise DataError(f"/predict labels texts; this server runs a {served.task!r} model (use /{served.task})")
        confidences = body.confidences or [None] * len(body.texts)
        if len(confidences) != len(body.texts):
            raise DataError(
                f"{len(confidences)} confidence lists for {len(body.texts)} texts; give one per text (or null)"
            )
        items = [(text, served.read_text(text, conf)) for text, conf in zip(body.texts, confidences)]
        # a response as is: FastAPI would validate and re-encode the dict the annotation (for /docs) names
        return JSONResponse({"predictions": await _wait(texts.submit(items))})

    @app.post("/impute")
    async def impute(body: SeriesRequest) -> dict:
        if served.task != "impute":
            raise DataError(f"/impute fills series; this server runs a {served.task!r} model")
        (rows,) = await _wait(series.submit([lambda: served.impute(body.rows, body.time_column)]))
        return {"rows": rows}

    @app.post("/forecast")
    async def forecast(body: SeriesRequest) -> dict:
        if served.task != "forecast":
            raise DataError(f"/forecast forecasts series; this server runs a {served.task!r} model")
        (rows,) = await _wait(series.submit([lambda: served.forecast(body.rows, body.time_column, body.interval)]))
        return {"rows": rows}

    return app


def app_from_environment():
    """The app of one worker process of ``dynmask serve --workers N`` (uvicorn imports it by name in each
    worker): :func:`create_app` with the arguments the command put in ``$DYNMASK_SERVE`` as JSON."""
    options = json.loads(os.environ[ENVIRONMENT])
    return create_app(Path(options.pop("model")), **options)
