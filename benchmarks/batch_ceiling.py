"""How much batching can gain a served model at most: the texts per second the model answers in-process
(tokenizing, running, building the rows ``dynmask predict`` prints) at batch sizes 1 to 64, for the
PyTorch run of serve_load.py and its ONNX export, with 1 and 2 threads, and the best batch's rate over one
text's. A server cannot beat this ratio over a one-request-at-a-time loop of the same model and threads,
whatever its HTTP costs.

    python benchmarks/batch_ceiling.py   # benchmarks/results/batch-ceiling.{json,md}
"""

from __future__ import annotations

import argparse
import json
import time

import serve_load as sl  # benchmarks/serve_load.py, beside this script

BATCHES = (1, 4, 8, 16, 32, 64)


def texts_per_second(served, texts: list[str], batch: int, seconds: float = 1.0) -> float:
    """Texts per second of ``served.predict`` on batches of ``batch`` texts (after a warm-up)."""
    items = [(t, t) for t in texts]
    for _ in range(3):
        served.predict(items[:batch])
    done, start, i = 0, time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        chunk = items[i : i + batch] if i + batch <= len(items) else items[:batch]
        served.predict(chunk)
        done, i = done + len(chunk), (i + batch) % len(items)
    return done / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=2.0, help="per measurement (default: %(default)s)")
    p.add_argument("--table", action="store_true", help="only rewrite the .md from the .json")
    args = p.parse_args()
    if args.table:
        return write_table()
    import torch

    from dynmask.serve.models import ServedModel

    run, onnx = sl._model()
    texts = sl._texts(0.5, 2000)
    rows = []
    for threads in (1, 2):
        for name, model in (("pytorch", run), ("onnxruntime", onnx)):
            served = ServedModel(model, threads)
            for batch in BATCHES:
                rate = texts_per_second(served, texts, batch, args.seconds)
                rows.append({"model": name, "threads": threads, "batch": batch, "texts_per_s": rate})
                print(json.dumps(rows[-1]), flush=True)
    sl.OUT.mkdir(parents=True, exist_ok=True)
    meta = {"torch": torch.__version__, "missing": 0.5, "seconds": args.seconds}
    (sl.OUT / "batch-ceiling.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    write_table()


def write_table() -> None:
    rows = json.loads((sl.OUT / "batch-ceiling.json").read_text())["results"]
    at = {(r["model"], r["threads"], r["batch"]): r["texts_per_s"] for r in rows}
    lines = ["| model | threads | " + " | ".join(f"batch {b}" for b in BATCHES) + " | best / batch 1 |",
             "|---|---|" + "---|" * (len(BATCHES) + 1)]  # fmt: skip
    for name in ("pytorch", "onnxruntime"):
        for threads in (1, 2):
            rates = [at[(name, threads, b)] for b in BATCHES]
            lines.append(f"| {name} | {threads} | " + " | ".join(f"{r:.0f}" for r in rates)
                         + f" | {max(rates) / rates[0]:.1f}x |")  # fmt: skip
    md = "Texts per second in-process, 50% missing, by batch size\n\n" + "\n".join(lines) + "\n"
    (sl.OUT / "batch-ceiling.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
