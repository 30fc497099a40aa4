"""The server of two code versions under the same load, alternating: an earlier commit's ``src/`` (``git
archive``) against this checkout's, 1 and 16 clients, the PyTorch run and its ONNX export at 50% missing,
two rounds. The load, the model and the texts are serve_load.py's.

    python benchmarks/serve_ab.py --before 087fc1c   # benchmarks/results/serve-ab.{json,md}
    python benchmarks/serve_ab.py --before 31231de --name serve-ab-threads   # serve-ab-threads.{json,md}
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import serve_load as sl  # benchmarks/serve_load.py, beside this script

KEYS = ("model", "code", "round", "clients", "good_per_s", "p50_ms", "p99_ms", "errors", "server_cores", "client_cores")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", required=True, help="the earlier commit")
    p.add_argument("--name", default="serve-ab", help="the output files' stem (default: %(default)s)")
    args = p.parse_args()
    run, onnx = sl._model()
    texts = sl._texts(0.5, 2000)
    rows = []
    with tempfile.TemporaryDirectory() as old:
        archive = subprocess.run(["git", "archive", args.before, "src"], cwd=sl.ROOT, check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", old], input=archive.stdout, check=True)
        for rnd in range(2):
            for name, model in (("pytorch", run), ("onnxruntime", onnx)):
                for code, src in (("before", Path(old) / "src"), ("after", sl.ROOT / "src")):
                    for r in sl.serve_and_load(model, texts, (1, 16), 2000, src=src):
                        r.update(model=name, code=code, round=rnd)
                        rows.append({k: r[k] for k in KEYS})
                        print(json.dumps(rows[-1]), flush=True)
    sl.OUT.mkdir(parents=True, exist_ok=True)
    (sl.OUT / f"{args.name}.json").write_text(json.dumps({"before": args.before, "results": rows}, indent=2))
    write_table(args.name)


def write_table(name: str = "serve-ab") -> None:
    data = json.loads((sl.OUT / f"{name}.json").read_text())
    lines = [f"The server before ({data['before']}) and now, 50% missing, alternating (requests/s; p99 ms)", "",
             "| model | clients | round | before | now | now / before |", "|---|---|---|---|---|---|"]  # fmt: skip
    at = {(r["model"], r["clients"], r["round"], r["code"]): r for r in data["results"]}
    keys = sorted({k[:3] for k in at}, key=lambda k: (k[0] != "pytorch", k[1], k[2]))
    for model, clients, rnd in keys:
        b, a = at[(model, clients, rnd, "before")], at[(model, clients, rnd, "after")]
        ratio = a["good_per_s"] / b["good_per_s"]
        lines.append(f"| {model} | {clients} | {rnd} | {b['good_per_s']:.0f}; {b['p99_ms']:.0f} "
                     f"| {a['good_per_s']:.0f}; {a['p99_ms']:.0f} | {ratio:.2f}x |")  # fmt: skip
    (sl.OUT / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
