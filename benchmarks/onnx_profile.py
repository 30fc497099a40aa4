"""Where an exported classifier's time goes inside onnxruntime: its own profiler
(``SessionOptions.enable_profiling``) on the export benchmark's graph (B=16, L=256, d=64, 2 layers,
2 threads, 50% of positions missing), dense and compact. Per call: the median ``model_run`` and the
summed kernel time by operator type, plus the compact batch's width.

    python benchmarks/onnx_profile.py      # benchmarks/results/onnx-profile.{json,md}

Used by docs/deploy/onnx.md (why compact stops short of 2x dense at 50%). Relative figures: the profiler
slows every call a little.
"""

from __future__ import annotations

import collections
import json
import statistics
import tempfile
import warnings
from pathlib import Path

from export_compile import batch_at, classifier_graphs, export_inputs  # benchmarks/export_compile.py, beside this

from dynmask.export import export_graph, session_options

OUT = Path(__file__).resolve().parent / "results"
CALLS = 60


def main() -> None:
    import onnxruntime as ort

    warnings.filterwarnings("ignore")
    graphs = classifier_graphs()  # the export benchmark's model, export inputs and batch at 50% missing
    example, dims = export_inputs()
    ids = batch_at(0.5)
    tmp = Path(tempfile.mkdtemp())
    rows = {"width": int((ids != 1).sum(1).max())}  # the compact batch: its fullest row
    for backend, graph in graphs.items():
        path = tmp / f"{backend}.onnx"
        export_graph(graph, example, path, dims)
        options = session_options(2, True)
        options.enable_profiling, options.profile_file_prefix = True, str(tmp / backend)
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: ids.numpy()}
        for _ in range(CALLS):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
        by_op = collections.Counter()
        for e in events:
            if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
                by_op[e["args"]["op_name"]] += e["dur"] / CALLS / 1000  # ms per call
        runs = [e["dur"] / 1000 for e in events if e.get("name") == "model_run"]
        rows[backend] = {"model_run_ms": statistics.median(runs), "kernel_ms": sum(by_op.values()),
                         "kernel_ms_by_op": dict(by_op.most_common())}  # fmt: skip
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "onnx-profile.json").write_text(json.dumps(rows, indent=2))
    d, c = rows["dense"], rows["compact"]
    lines = [
        f"onnxruntime profile, 50% missing (compact width {rows['width']} of 256), ms per call",
        "",
        "| | model_run | kernels | MultiHeadAttention | other kernels |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, r in (("dense", d), ("compact", c)):
        mha = r["kernel_ms_by_op"].get("MultiHeadAttention", 0.0)
        lines.append(
            f"| {name} | {r['model_run_ms']:.2f} | {r['kernel_ms']:.2f} | {mha:.2f} | {r['kernel_ms'] - mha:.2f} |"
        )
    lines.append(
        f"| dense / compact | {d['model_run_ms'] / c['model_run_ms']:.2f}× "
        f"| {d['kernel_ms'] / c['kernel_ms']:.2f}× | | |"
    )
    (OUT / "onnx-profile.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
