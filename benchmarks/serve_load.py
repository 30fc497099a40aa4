"""Load on ``dynmask serve`` over loopback: 1 / 4 / 16 / 64 concurrent clients, throughput and p50 / p99
latency, for the PyTorch run and its ONNX export, at 0% and 50% of the words missing, against a plain
one-request-at-a-time loop (the same model called in-process, one text per call). One request in ten is a
bad one (malformed JSON, an empty list): it must get its 4xx; an error is any 5xx, a refused connection or
a wrong answer code. Runs one after another in this process (the server in a subprocess), bounded in
count and time.

    python benchmarks/serve_load.py            # benchmarks/results/serve-load.{json,md}
    python benchmarks/serve_load.py --quick    # fewer requests (a smoke test)
    python benchmarks/serve_load.py --wait-ms 5   # a 5 ms batching window: serve-load-wait5.{json,md}
    python benchmarks/serve_load.py --max-batch 1   # no micro-batching, one request at a time: serve-load-batch1
    python benchmarks/serve_load.py --workers 1     # one server process (default: one per core): serve-load-workers1
    python benchmarks/serve_load.py --threads 2     # 2 model threads (default here: 1): serve-load-threads2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"
RUN = ROOT / "runs" / "serve-load"


def _model() -> tuple[Path, Path]:
    """A Rotten Tomatoes classifier of the demo's size (a short training: speed does not depend on it) and
    its ONNX export."""
    from dynmask.cli import main

    if not (RUN / "best" / "model.safetensors").exists():  # one epoch: speed does not depend on accuracy
        argv = ["train", "classify", "--data", "rotten_tomatoes", "--output", str(RUN), "--epochs", "1",
                "--no-progress", "--overwrite", "--test-missing", "0"]  # fmt: skip
        assert main(argv) == 0
    onnx = RUN.parent / "serve-load.onnx"
    if not onnx.exists():
        assert main(["export", "--model", str(RUN), "--output", str(onnx), "--backend", "compact"]) == 0
    return RUN, onnx


def _texts(missing: float, n: int) -> list[str]:
    import random

    from dynmask.data.text import load_text_dataset

    rng = random.Random(0)
    texts = [e.text for e in load_text_dataset("rotten_tomatoes", seed=0).test]
    out = []
    for i in range(n):
        words = texts[i % len(texts)].split()
        out.append(" ".join("???" if rng.random() < missing else w for w in words))
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(model: Path, port: int, wait_ms: float = 0.0, max_batch: int = 64, src: Path = ROOT / "src",
           extra: tuple = ()) -> subprocess.Popen:  # fmt: skip
    """``dynmask serve`` of the code in ``src`` in a subprocess (``extra``: more of its options, e.g.
    ``--workers``, which code before it lacks), once its /health answers."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [
        "serve",
        "--model",
        str(model),
        "--port",
        str(port),
        "--wait-ms",
        str(wait_ms),
        "--max-batch",
        str(max_batch),
    ] + list(extra)
    proc = subprocess.Popen([sys.executable, "-m", "dynmask", *command], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    return _when_healthy(proc, port)


def _when_healthy(proc: subprocess.Popen, port: int) -> subprocess.Popen:
    """``proc`` once the server it runs answers /health on ``port`` (killed, with its last words, if it never does)."""
    import httpx

    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the server did not start: {proc.stderr.read().decode()[-2000:]}")


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds so far of a process and its children (the workers of ``--workers N``;
    Linux /proc; None elsewhere)."""
    try:
        total = 0.0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:  # a process that ended meanwhile
                continue
            if stat.parent.name == str(pid) or fields[1] == str(pid):  # fields[1]: the parent's pid
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total
    except (OSError, ValueError, IndexError):
        return None


async def _load(port: int, texts: list[str], clients: int, requests: int, server_pid: int | None = None) -> dict:
    """``clients`` concurrent keep-alive connections (aiohttp: httpx's async client is much slower under
    concurrency, encode/httpx#3215, and the clients share the server's 2 cores), ``requests`` in all, one
    text each; every tenth a bad one."""
    import aiohttp

    latencies, errors, bad_ok = [], 0, 0
    queue = list(range(requests))

    async def worker(session):
        nonlocal errors, bad_ok
        while queue:
            i = queue.pop()
            bad = i % 10 == 9
            body = (
                (b"{oops" if i % 20 == 19 else b'{"texts": []}')
                if bad
                else json.dumps({"texts": [texts[i % len(texts)]]}).encode()
            )
            t0 = time.perf_counter()
            try:
                async with session.post("/predict", data=body, headers={"content-type": "application/json"}) as r:
                    await r.read()
                    status = r.status
            except (aiohttp.ClientError, asyncio.TimeoutError):
                errors += 1
                continue
            if bad:
                bad_ok += status == 422
                errors += status != 422
            else:
                latencies.append(time.perf_counter() - t0)
                errors += status != 200

    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", connector=connector, timeout=timeout) as session:
        cpu0 = None if server_pid is None else _cpu_seconds(server_pid)
        client0 = time.process_time()  # this process: the clients (all of its threads)
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(clients)))
        wall = time.perf_counter() - t0
        cpu1 = None if server_pid is None else _cpu_seconds(server_pid)
        client_cpu = time.process_time() - client0
    lat = sorted(latencies)
    return {
        "clients": clients,
        "requests": requests,
        "good_per_s": len(lat) / wall,
        "p50_ms": 1000 * statistics.median(lat),
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
        "bad_requests_answered_422": bad_ok,
        "errors": errors,
        # the server's CPU seconds per second of load (2.0 = both cores), None where /proc is not there
        "server_cores": None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) / wall,
        "client_cores": client_cpu / wall,  # the load generator's share of the same 2 cores
    }


def serve_and_load(model: Path, texts: list[str], clients: tuple, requests: int, warmup: int = 300,
                   **serve_options) -> list[dict]:  # fmt: skip
    """A server of ``model`` (``_serve``'s options) under :func:`load_server`."""
    return load_server(lambda port: _serve(model, port, **serve_options), texts, clients, requests, warmup)


def load_server(start, texts: list[str], clients: tuple, requests: int, warmup: int = 300) -> list[dict]:
    """The server ``start(port)`` runs (a process, once it answers), warmed up by ``warmup`` requests from 16
    clients, then one load of ``requests`` per client count; the server stopped whatever happens."""
    port = _free_port()
    proc = start(port)
    try:
        asyncio.run(_load(port, texts, 16, warmup, proc.pid))
        return [asyncio.run(_load(port, texts, n, requests, proc.pid)) for n in clients]
    finally:
        proc.terminate()
        proc.wait(30)


def _loop(model: Path, texts: list[str], requests: int) -> float:
    """Requests per second of a plain loop: the same model, in-process, one text per call."""
    from dynmask.serve.models import ServedModel

    served = ServedModel(model)
    t0 = time.perf_counter()
    for i in range(requests):
        served.predict([(texts[i % len(texts)], texts[i % len(texts)])])
    return requests / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--table", action="store_true", help="only rewrite the .md from the .json")
    p.add_argument("--wait-ms", type=float, default=0.0, help="the server's batching window (default: %(default)s)")
    p.add_argument("--max-batch", type=int, default=64, help="texts per batch at most; 1: no batching (default: 64)")
    p.add_argument("--workers", type=int, default=None, help="server processes (default: serve's, one per core)")
    p.add_argument("--threads", type=int, default=None, help="model threads per server process (default: serve's)")
    args = p.parse_args()
    stem = "serve-load" + ("" if args.wait_ms == 0.0 else f"-wait{args.wait_ms:g}")
    stem += "" if args.max_batch == 64 else f"-batch{args.max_batch}"
    stem += "" if args.workers is None else f"-workers{args.workers}"
    stem += "" if args.threads is None else f"-threads{args.threads}"
    if args.table:
        return write_table(stem)
    import torch

    torch.set_num_threads(2)
    run, onnx = _model()
    extra = [f"--{name}={value}" for name, value in (("workers", args.workers), ("threads", args.threads)) if value]
    per_level = 200 if args.quick else 2000
    results = []
    for name, model in (("pytorch", run), ("onnxruntime", onnx)):
        for missing in (0.0, 0.5):
            texts = _texts(missing, 2000)
            loop = _loop(model, texts, 100 if args.quick else 500)
            port = _free_port()
            proc = _serve(model, port, args.wait_ms, args.max_batch, extra=extra)
            try:
                for clients in (1, 4, 16, 64):
                    row = asyncio.run(_load(port, texts, clients, per_level, proc.pid))
                    row.update(model=name, missing=missing, loop_per_s=loop, vs_loop=row["good_per_s"] / loop)
                    results.append(row)
                    print(json.dumps(row), flush=True)
            finally:
                proc.terminate()
                proc.wait(30)
    OUT.mkdir(parents=True, exist_ok=True)
    import aiohttp
    import uvicorn

    meta = {"torch": torch.__version__, "threads": 2, "requests_per_level": per_level, "bad_share": 0.1,
            "wait_ms": args.wait_ms, "max_batch": args.max_batch, "workers": args.workers or "serve's default",
            "model_threads": args.threads or "serve's default",
            "client": f"aiohttp {aiohttp.__version__}", "uvicorn": uvicorn.__version__,
            "uvicorn_fast_paths": _fast_paths()}  # fmt: skip
    (OUT / f"{stem}.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    write_table(stem)


def _fast_paths() -> list[str]:
    """uvicorn's optional C paths installed here (``uvicorn[standard]``): it uses them when present."""
    import importlib.util

    return [m for m in ("uvloop", "httptools") if importlib.util.find_spec(m) is not None]


def write_table(name: str = "serve-load") -> None:
    """``name``.md from ``name``.json: throughput against one client on the same server (what
    micro-batching adds) and against the in-process loop (what HTTP costs)."""
    results = json.loads((OUT / f"{name}.json").read_text())["results"]
    one = {(r["model"], r["missing"]): r["good_per_s"] for r in results if r["clients"] == 1}
    lines = ["| model | missing | clients | good req/s | vs 1 client | vs in-process loop | p50 ms | p99 ms | errors "
             "| server cores | client cores |", "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        cores = "" if r.get("server_cores") is None else f"{r['server_cores']:.2f}"
        cores += " | " + ("" if r.get("client_cores") is None else f"{r['client_cores']:.2f}")
        lines.append(
            f"| {r['model']} | {r['missing']:.0%} | {r['clients']} | {r['good_per_s']:.0f} "
            f"| {r['good_per_s'] / one[(r['model'], r['missing'])]:.1f}x | {r['vs_loop']:.2f}x "
            f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} "
            f"| {cores} |"
        )
    total = sum(r["requests"] for r in results)
    loops = ", ".join(f"{m} {miss:.0%}: {r:.0f}/s" for (m, miss), r in
                      {(r["model"], r["missing"]): r["loop_per_s"] for r in results}.items())  # fmt: skip
    md = (
        "\n".join(lines)
        + f"\n\n{total:,} requests (10% malformed or empty), {sum(r['errors'] for r in results)} errors. "
    )
    md += f"In-process loop, one text per call: {loops}.\n"
    (OUT / f"{name}.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
