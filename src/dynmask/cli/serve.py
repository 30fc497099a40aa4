"""``dynmask serve``: a trained run (or its ONNX export) behind an HTTP endpoint."""

from __future__ import annotations

import json
import os
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
    p.add_argument(
        "--workers",
        type=POSITIVE,
        default=None,
        help="server processes sharing the port, each with its own copy of the model, its batches and its queue "
        "(one process's Python runs on one core at a time); default: one per core this process may use",
    )
    p.add_argument(
        "--threads",
        type=POSITIVE,
        default=None,
        help="each process's model threads (PyTorch intra-op, or the onnxruntime session's); default: the "
        "cores shared out over the workers (at least 1)",
    )


def cores() -> int:
    """The cores this process may use: its CPU affinity, a container's CPU quota (cgroups) and
    ``$LOKY_MAX_CPU_COUNT``, the least of them (``joblib.cpu_count``, which the ``serve`` extra installs):
    a container limited to 2 CPUs on a 64-core host gets 2 workers, not 64."""
    return require("joblib").cpu_count()


def processes_and_threads(workers: int | None, threads: int | None, available: int | None = None) -> tuple[int, int]:
    """(worker processes, model threads each) for ``--workers`` / ``--threads`` (None: the default): one
    process per core (SageMaker's and TorchServe's default on CPU), and the cores shared out over them so
    that no process oversubscribes them. On 2 cores two one-thread processes served 1.4x (PyTorch) and
    1.1x (onnxruntime) the requests of one two-thread process at 16 clients
    (``benchmarks/results/serve-options.md``)."""
    available = available or cores()
    workers = workers or available
    return workers, threads or max(1, available // workers)


def _serve(args) -> None:
    uvicorn = require("uvicorn")
    from ..serve.app import ENVIRONMENT, create_app

    options = dict(
        max_batch=args.max_batch, wait_ms=args.wait_ms, max_queue=args.max_queue, max_body=args.max_body,
        timeout_s=args.timeout,
    )  # fmt: skip
    workers, options["threads"] = processes_and_threads(args.workers, args.threads)
    app = create_app(args.model, **options)  # loads the model here: a bad --model fails once, with its message
    where = f"http://{args.host}:{args.port}"
    processes = f" in {workers} process{'es' * (workers > 1)}, {options['threads']} model thread(s) each"
    print(f"serving {args.model} on {where}{processes} (docs: /docs); Ctrl-C stops after in-flight requests")
    run = dict(host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=30)
    if workers == 1:
        uvicorn.run(app, **run)
        return
    del app  # each worker loads its own copy
    os.environ[ENVIRONMENT] = json.dumps({"model": str(args.model.resolve()), **options})
    uvicorn.run("dynmask.serve.app:app_from_environment", factory=True, workers=workers, **run)
