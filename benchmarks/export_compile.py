"""Deployment speed: the same trained-size encoder classifier run by PyTorch eager, by onnxruntime
(exported by ``dynmask export``'s route: the mask built inside the graph, attention as onnxruntime's fused
MultiHeadAttention; sessions flush denormals; worker threads spin between calls, onnxruntime's default and
what PyTorch's OpenMP threads do too), and by torch.compile (inductor),
at 0 / 50 / 75% of positions missing. Runs are interleaved in one process; each runner's turn is a
pause (the previous runtime's threads stop spinning), an untimed call (its own threads wake), then
``TIMED`` timed calls in a row; medians of all timed calls; ratios against eager PyTorch (dense) side by
side.

    python benchmarks/export_compile.py --with-plain    # benchmarks/results/export-compile.{json,md}

``--with-plain`` adds the same graphs exported by a plain ``torch.onnx.export`` and run in a default
onnxruntime session (what dynmask exported before it fused attention and flushed denormals).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch

from dynmask.export import OnnxSession, export_graph
from dynmask.graph import compile as dm_compile
from dynmask.layers import with_backend
from dynmask.models import ClassifierConfig, TextClassifier
from dynmask.traced import TextClassifierGraph

OUT = Path(__file__).resolve().parent / "results"
# Each runner's turn starts with a pause and an untimed call: the runtime that ran before leaves its worker
# threads spinning for a while (onnxruntime's pools, PyTorch's OpenMP), and on 2 cores they would take this
# one's cores; its own threads may be parked. Then TIMED calls in a row are timed (a runtime under steady
# load, as in a batch job: one runtime per process).
TIMED = 3
PAUSE_S = 0.05  # longer than any runtime's spin after its last call


def _runner(session):
    return lambda ids: session.run(None, {session.get_inputs()[0].name: ids.numpy()})[0]


def classifier_graphs(d_model: int = 64, length: int = 256) -> dict[str, TextClassifierGraph]:
    """The benchmark's 2-layer text classifier (weights seeded), as its dense and compact graphs."""
    torch.manual_seed(0)
    config = ClassifierConfig(8000, 2, d_model=d_model, n_heads=4, n_layers=2, d_ff=2 * d_model, max_len=length)
    model = TextClassifier(config).eval()
    return {b: TextClassifierGraph(with_backend(model, b), [1, 2], 0).eval() for b in ("dense", "compact")}


def export_inputs():
    """(example args, dynamic shapes) every graph here is exported with: a [2, 16] batch with one missing id,
    batch and length dynamic. Draws the example from the global generator: call it once, after
    :func:`classifier_graphs`."""
    from torch.export import Dim

    example = torch.randint(5, 8000, (2, 16))
    example[0, 3] = 1
    return (example,), ({0: Dim("batch"), 1: Dim("length", min=2, max=65_536)},)


def batch_at(missing: float, batch: int = 16, length: int = 256) -> torch.Tensor:
    """The timed batch at this missing rate: [batch, length] ids, each position missing (id 1) with
    probability ``missing``; seeded by the rate."""
    g = torch.Generator().manual_seed(int(missing * 100))
    ids = torch.randint(5, 8000, (batch, length), generator=g)
    ids[torch.rand(ids.shape, generator=g) < missing] = 1
    return ids


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--length", type=int, default=256)
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--repeats", type=int, default=31)
    p.add_argument(
        "--with-plain",
        action="store_true",
        help="also time a plain torch.onnx.export of the same graphs in a default onnxruntime session",
    )
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    import onnxruntime as ort

    graphs = classifier_graphs(args.d_model, args.length)
    example, dims = export_inputs()
    runners = {"eager dense": lambda ids: graphs["dense"](ids), "eager compact": lambda ids: graphs["compact"](ids)}
    tmp = Path(tempfile.mkdtemp())
    threads = torch.get_num_threads()
    for backend, graph in graphs.items():
        path = tmp / f"{backend}.onnx"
        export_graph(graph, example, path, dims)
        onnx = OnnxSession(path, threads)  # its own thread (flush-to-zero stays there); threads spin, as eager's
        runners[f"onnxruntime {backend}"] = lambda ids, s=onnx: s.run({s.get_inputs()[0].name: ids.numpy()})[0]
        if args.with_plain:  # the exporter's own decomposition, a default session (how dynmask exported before)
            plain = tmp / f"{backend}-plain.onnx"
            with torch.no_grad():
                torch.onnx.export(graph, example, str(plain), dynamo=True, verbose=False, dynamic_shapes=dims)
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            session = ort.InferenceSession(str(plain), options, providers=["CPUExecutionProvider"])
            runners[f"plain export {backend}"] = _runner(session)
    for backend in ("dense", "compact"):
        runners[f"torch.compile {backend}"] = dm_compile(graphs[backend], dynamic=True)
    rows = []
    for missing in (0.0, 0.5, 0.75):
        ids = batch_at(missing, args.batch, args.length)
        with torch.no_grad():
            reference = graphs["dense"](ids)
            for name, fn in runners.items():  # warm-up (and compilation), and a parity check
                out = torch.as_tensor(fn(ids))
                assert (out - reference).abs().max() <= 1e-4, (name, missing)
            times = {name: [] for name in runners}
            for r in range(args.repeats):
                order = list(runners) if r % 2 == 0 else list(reversed(runners))
                for name in order:
                    time.sleep(PAUSE_S)
                    runners[name](ids)
                    for _ in range(TIMED):
                        start = time.perf_counter()
                        runners[name](ids)
                        times[name].append(time.perf_counter() - start)
        medians = {name: statistics.median(t) * 1000 for name, t in times.items()}
        base = medians["eager dense"]
        same_path = {b: medians[f"eager {b}"] / medians[f"onnxruntime {b}"] for b in ("dense", "compact")}
        rows.append(
            {
                "missing": missing,
                "ms": medians,
                "speedup_vs_eager_dense": {k: base / v for k, v in medians.items()},
                "onnxruntime_vs_eager_same_path": same_path,
                "onnxruntime_compact_vs_dense": medians["onnxruntime dense"] / medians["onnxruntime compact"],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    meta = {
        "batch": args.batch,
        "length": args.length,
        "d_model": args.d_model,
        "layers": 2,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
    }
    (OUT / "export-compile.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    names = list(rows[0]["ms"])
    lines = [
        f"B={args.batch}, L={args.length}, d={args.d_model}, 2 layers, {meta['threads']} threads; ms per batch "
        "(speed-up vs eager dense)",
        "",
        "| missing | " + " | ".join(names) + " |",
        "|" + " --- |" * (len(names) + 1),
    ]
    for row in rows:
        lines.append(
            f"| {row['missing']:.0%} | "
            + " | ".join(f"{row['ms'][n]:.1f} ({row['speedup_vs_eager_dense'][n]:.2f}×)" for n in names)
            + " |"
        )
    lines += [
        "",
        "onnxruntime against PyTorch eager on the same path, and compact against dense within onnxruntime "
        "(speed-ups: > 1 is faster)",
        "",
        "| missing | onnxruntime / eager, dense | onnxruntime / eager, compact | onnxruntime compact / dense |",
        "| --- | --- | --- | --- |",
    ]
    for row in rows:
        same = row["onnxruntime_vs_eager_same_path"]
        lines.append(
            f"| {row['missing']:.0%} | {same['dense']:.2f}× | {same['compact']:.2f}× | "
            f"{row['onnxruntime_compact_vs_dense']:.2f}× |"
        )
    (OUT / "export-compile.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
