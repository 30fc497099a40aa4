"""The most a server of this machine's cores can answer, against the one-request-at-a-time loop: issue 40's
goal (16 clients at 4x the loop) checked against measured costs, not guessed.

Three measurements, one after another in this process (nothing else should run):

- the loop: serve_load.py's in-process loop (the model called with one text at a time, 2 threads), per
  runtime, 50% of the words missing;
- the model's own cost per text in batches of 4 to 16 (one thread, as each of serve's default workers
  runs it), its cheapest batch taken: the most micro-batching can save;
- HTTP's own cost: the same app (``create_app``, serve's default workers and options) around a model that
  costs nothing (it answers a stored row), under 16 clients: the server's and the clients' CPU seconds per
  good request, and its requests per second, which no served model can beat.

A request then costs at least model + HTTP CPU seconds, so the cores answer at most cores / (model +
HTTP) requests per second; that over the loop is the most any server of this app can reach here.

    python benchmarks/serve_budget.py   # benchmarks/results/serve-budget.{json,md}
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import batch_ceiling as bc  # benchmarks/, beside this script
import serve_load as sl

GOAL = 4.0  # issue 40: 16 clients at 4x the one-at-a-time loop
CLIENTS = 16
BATCHES = (4, 8, 16)  # at 16 clients over serve's workers, no worker is handed more than 16 texts at once
ROW = "DYNMASK_BUDGET_ROW"  # the row the free model answers, as JSON


def free_app():
    """The app of ``dynmask serve`` around a model that costs nothing: every text gets the row in ``$ROW``
    (a real answer of the real model, so responses are as long). uvicorn's workers import it by name."""
    from dynmask.serve.app import create_app
    from dynmask.serve.models import ServedModel

    row = json.loads(os.environ[ROW])

    class FreeModel(ServedModel):
        def __init__(self) -> None:  # nothing loaded: the endpoint, the batcher and HTTP are all that run
            self.path, self.threads, self.task = Path("free"), 1, "classify"
            self.threshold = self.lexicon = None
            self._predict = lambda texts: [dict(row) for _ in texts]

    return create_app(FreeModel())


def _free_server(port: int, workers: int, row: dict) -> subprocess.Popen:
    """uvicorn with serve's default workers running :func:`free_app`, once its /health answers."""
    here = Path(__file__).resolve().parent
    env = {**os.environ, ROW: json.dumps(row), "PYTHONPATH": os.pathsep.join([str(sl.ROOT / "src"), str(here)])}
    code = ("import uvicorn; uvicorn.run('serve_budget:free_app', factory=True, host='127.0.0.1', "
            f"port={port}, workers={workers}, log_level='warning')")  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return sl._when_healthy(proc, port)


def http_cost(row: dict, texts: list[str], workers: int, requests: int) -> dict:
    """The free app under 16 clients (after serve_load's warm-up): requests per second and CPU seconds per good
    request."""
    (load,) = sl.load_server(lambda port: _free_server(port, workers, row), texts, (CLIENTS,), requests)
    assert load["errors"] == 0, load
    load["cpu_ms_per_request"] = 1000 * (load["server_cores"] + load["client_cores"]) / load["good_per_s"]
    load["server_cpu_ms_per_request"] = 1000 * load["server_cores"] / load["good_per_s"]
    return load


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=8000, help="requests of the free app's load (default: %(default)s)")
    p.add_argument("--seconds", type=float, default=2.0, help="per batch-size measurement (default: %(default)s)")
    p.add_argument("--table", action="store_true", help="only rewrite the .md from the .json")
    args = p.parse_args()
    if args.table:
        return write_table()
    import torch

    from dynmask.cli.serve import cores, processes_and_threads
    from dynmask.serve.models import ServedModel

    n_cores = cores()
    workers, threads = processes_and_threads(None, None, n_cores)
    run, onnx = sl._model()
    texts = sl._texts(0.5, 2000)
    rows, row = [], None
    for name, model in (("pytorch", run), ("onnxruntime", onnx)):
        torch.set_num_threads(2)  # the loop as serve_load.py runs it (the ServedModel below sets 1)
        loop = sl._loop(model, texts, 500)
        served = ServedModel(model, threads)  # as each of serve's default workers holds it
        rates = {b: bc.texts_per_second(served, texts, b, args.seconds) for b in BATCHES}
        row = row or served.predict([(texts[0], texts[0])])[0]
        best = max(rates, key=rates.get)
        rows.append({"model": name, "loop_per_s": loop, "texts_per_s_by_batch": rates, "best_batch": best,
                     "model_cpu_ms_per_text": 1000 * threads / rates[best]})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    http = http_cost(row, texts, workers, args.requests)
    print(json.dumps(http), flush=True)
    for r in rows:
        r["bound_per_s"] = n_cores / ((r["model_cpu_ms_per_text"] + http["cpu_ms_per_request"]) / 1000)
        r["bound_vs_loop"] = r["bound_per_s"] / r["loop_per_s"]
        # the clients on another machine: only the server's share of HTTP on these cores
        server_only = n_cores / ((r["model_cpu_ms_per_text"] + http["server_cpu_ms_per_request"]) / 1000)
        r["bound_server_only_vs_loop"] = server_only / r["loop_per_s"]
        r["free_vs_loop"] = http["good_per_s"] / r["loop_per_s"]
    meta = {"torch": torch.__version__, "cores": n_cores, "workers": workers, "model_threads": threads,
            "clients": CLIENTS, "missing": 0.5, "goal_vs_loop": GOAL}  # fmt: skip
    sl.OUT.mkdir(parents=True, exist_ok=True)
    (sl.OUT / "serve-budget.json").write_text(json.dumps({"meta": meta, "http": http, "results": rows}, indent=2))
    write_table()


def write_table() -> None:
    data = json.loads((sl.OUT / "serve-budget.json").read_text())
    meta, http = data["meta"], data["http"]
    lines = ["| model | loop req/s | 4x the loop | model ms a text (best batch) | HTTP ms a request | at most req/s "
             "| at most / loop | same, clients elsewhere | a free model / loop |", "|---" * 9 + "|"]  # fmt: skip
    for r in data["results"]:
        lines.append(
            f"| {r['model']} | {r['loop_per_s']:.0f} | {meta['goal_vs_loop'] * r['loop_per_s']:.0f} "
            f"| {r['model_cpu_ms_per_text']:.2f} ({r['best_batch']}) | {http['cpu_ms_per_request']:.2f} "
            f"| {r['bound_per_s']:.0f} | {r['bound_vs_loop']:.2f}x | {r['bound_server_only_vs_loop']:.2f}x "
            f"| {r['free_vs_loop']:.2f}x |"
        )
    md = (
        f"{meta['cores']} cores, serve's default ({meta['workers']} workers, {meta['model_threads']} model thread "
        f"each), {meta['clients']} clients, {meta['missing']:.0%} of the words missing. CPU milliseconds, server "
        "and clients together; *at most* = cores / (model + HTTP); *clients elsewhere*: the server's share of HTTP "
        "only.\n\n" + "\n".join(lines) + "\n\n"
        f"HTTP alone (the app around a model that costs nothing): {http['good_per_s']:.0f} requests/s at "
        f"{meta['clients']} clients, server {http['server_cores']:.2f} cores, clients {http['client_cores']:.2f} "
        f"cores, {http['errors']} errors in {http['requests']:,} requests.\n"
    )
    (sl.OUT / "serve-budget.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
