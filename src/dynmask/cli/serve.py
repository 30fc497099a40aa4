"""``dynmask serve``: a trained run (or its ONNX export) behind an HTTP endpoint."""

from __future__ import annotations

from pathlib import Path

from ..extras import require
from ..tasks.arguments import POSITIVE, number


def register(sub) -> None:
    p = sub.add_parser("serve", help="serve a run over HTTP: /predict, /impute or /forecast, /health, /docs")
    p.set_defaults(handler=_serve)
    p.add_argument("--model", type=Path, required=True, help="a run folder (classify, impute, forecast) or its .onnx")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on: this machine only unless changed (default: %(default)s)",
    )
    p.add_argument("--port", type=number(int, 0, 65_535), default=8000, help="(default: %(default)s)")
    p.add_argument("--max-batch", type=POSITIVE, default=64, help="texts run together at most (default: %(default)s)")
    p.add_argument(
        "--wait-ms",
        type=number(float, 0, 1000),
        default=0.0,
        help="how long a batch waits to fill after its first request; 0: run what is queued at once, and "
        "batches form from what queues while the model runs (default: %(default)s)",
    )
    p.add_argument(
        "--max-queue", type=POSITIVE, default=4096, help="texts waiting at most; then 503 (default: %(default)s)"
    )
    p.add_argument(
        "--max-body", type=POSITIVE, default=2**20, help="request body limit in bytes; then 413 (default: %(default)s)"
    )
    p.add_argument(
        "--timeout",
        type=number(float, 0.1, 3600),
        default=30.0,
        help="seconds a request may wait (default: %(default)s)",
    )


def _serve(args) -> None:
    uvicorn = require("uvicorn")
    from ..serve import create_app

    app = create_app(
        args.model, max_batch=args.max_batch, wait_ms=args.wait_ms, max_queue=args.max_queue,
        max_body=args.max_body, timeout_s=args.timeout,
    )  # fmt: skip
    print(
        f"serving {args.model} on http://{args.host}:{args.port} (docs: /docs); Ctrl-C stops after in-flight requests"
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=30)
