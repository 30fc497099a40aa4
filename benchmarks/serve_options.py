"""``dynmask serve``'s process and thread options against one process, alternating under the same load: 1,
16 and 64 clients, the PyTorch run and its ONNX export at 50% missing, three rounds (this VM's speed
drifts between runs, so each option is compared with the one process of its own round). The load, the
model and the texts are serve_load.py's. The committed results are from 7d57c4d, where one process was the
default and ``--model-process`` (the model in a child process of its own) existed; it gained nothing and
was removed.

    python benchmarks/serve_options.py   # benchmarks/results/serve-options.{json,md}
"""

from __future__ import annotations

import argparse
import json
import statistics

import serve_load as sl  # benchmarks/serve_load.py, beside this script

BASE = "--workers 1"  # one process, the runtime's model threads
OPTIONS = {  # name: the options given to dynmask serve
    BASE: ("--workers", "1"),
    "--workers 1 --threads 1": ("--workers", "1", "--threads", "1"),
    "--workers 2": ("--workers", "2"),
}
CLIENTS = (1, 16, 64)
KEYS = ("model", "option", "round", "clients", "good_per_s", "p50_ms", "p99_ms", "errors", "server_cores",
        "client_cores")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--requests", type=int, default=2000, help="per client count (default: %(default)s)")
    p.add_argument("--table", action="store_true", help="only rewrite the .md from the .json")
    args = p.parse_args()
    if args.table:
        return write_table()
    run, onnx = sl._model()
    texts = sl._texts(0.5, 2000)
    rows = []
    for rnd in range(args.rounds):
        for name, model in (("pytorch", run), ("onnxruntime", onnx)):
            for option, extra in OPTIONS.items():
                for r in sl.serve_and_load(model, texts, CLIENTS, args.requests, extra=extra):
                    r.update(model=name, option=option, round=rnd)
                    rows.append({k: r[k] for k in KEYS})
                    print(json.dumps(rows[-1]), flush=True)
    sl.OUT.mkdir(parents=True, exist_ok=True)
    meta = {"rounds": args.rounds, "requests_per_level": args.requests, "missing": 0.5, "options": OPTIONS}
    (sl.OUT / "serve-options.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    write_table()


def write_table() -> None:
    """Median requests/s over the rounds, each option's ratio to one process in the same round (median
    and range), and p99 latency."""
    rows = json.loads((sl.OUT / "serve-options.json").read_text())["results"]
    options = list(dict.fromkeys(r["option"] for r in rows))  # as run (one no longer in OPTIONS included)
    at = {(r["model"], r["option"], r["clients"], r["round"]): r for r in rows}
    rounds = sorted({r["round"] for r in rows})
    lines = ["| model | option | clients | req/s (median) | vs one process, same round (median; range) "
             "| p99 ms (median) | server cores |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for model in ("pytorch", "onnxruntime"):
        for option in options:
            for clients in CLIENTS:
                mine = [at[(model, option, clients, k)] for k in rounds if (model, option, clients, k) in at]
                if not mine:
                    continue
                base = [at[(model, BASE, clients, r["round"])]["good_per_s"] for r in mine]
                ratios = [r["good_per_s"] / b for r, b in zip(mine, base)]
                cores = [r["server_cores"] for r in mine if r["server_cores"] is not None]
                lines.append(
                    f"| {model} | {option} | {clients} | {statistics.median(r['good_per_s'] for r in mine):.0f} "
                    f"| {statistics.median(ratios):.2f}x; {min(ratios):.2f}-{max(ratios):.2f} "
                    f"| {statistics.median(r['p99_ms'] for r in mine):.1f} "
                    f"| {statistics.median(cores):.2f} |"
                    if cores
                    else "| |"
                )
    errors = sum(r["errors"] for r in rows)
    md = "\n".join(lines) + f"\n\n{sum(1 for _ in rows)} loads, 50% missing, {errors} errors.\n"
    (sl.OUT / "serve-options.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
