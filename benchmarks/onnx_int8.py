"""int8 ONNX exports (``dynmask export --quantize int8``, onnxruntime's dynamic quantization): what they cost
in accuracy and what they gain in speed and size, beside the float32 export and PyTorch eager.

A Rotten Tomatoes classifier of the demo's size (4 epochs, 30% training holes) is exported dense and
compact, float32 and int8. Accuracy: the 1,302 test reviews with 0% and 50% of their words replaced by
``???`` (seeded), labels by each runner, and how often int8 agrees with float32. Speed: the graphs on the
same id batches (B=16, L=256, random ids, 0 / 50 / 75% missing), interleaved in one process, medians.

    python benchmarks/onnx_int8.py          # benchmarks/results/onnx-int8.{json,md}
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"
RUN = ROOT / "runs" / "onnx-int8"


def _run_and_exports() -> dict:
    from dynmask.cli import main

    if not (RUN / "best" / "model.safetensors").exists():
        argv = ["train", "classify", "--data", "rotten_tomatoes", "--output", str(RUN), "--epochs", "4",
                "--train-missing", "0.3", "--no-progress", "--overwrite", "--test-missing", "0"]  # fmt: skip
        assert main(argv) == 0
    paths = {}
    for backend in ("dense", "compact"):
        for kind in ("float32", "int8"):
            path = RUN.parent / f"onnx-int8-{backend}-{kind}.onnx"
            if not path.exists():
                extra = ["--quantize", "int8"] if kind == "int8" else []
                assert main(["export", "--model", str(RUN), "--output", str(path), "--backend", backend, *extra]) == 0
            paths[(backend, kind)] = path
    return paths


def _gappy(texts: list, missing: float) -> list:
    rng = random.Random(int(missing * 100))
    return [" ".join("???" if rng.random() < missing else w for w in t.split()) for t in texts]


def accuracy(paths: dict) -> list:
    from dynmask.data.text import load_text_dataset
    from dynmask.export import load_onnx
    from dynmask.tasks.classify.task import load_classifier, predict_texts

    test = load_text_dataset("rotten_tomatoes", seed=0).test
    model, tokenizer, labels = load_classifier(RUN)
    gold = [labels[e.label] for e in test]
    runners = {f"onnx {b} {k}": load_onnx(p, threads=torch.get_num_threads()) for (b, k), p in paths.items()}
    rows = []
    for missing in (0.0, 0.5):
        texts = _gappy([e.text for e in test], missing)
        answers = {"eager": [r["label"] for r in predict_texts(model, tokenizer, labels, texts)]}
        for name, runner in runners.items():
            answers[name] = [r["label"] for r in runner.predict(texts)]
        acc = {name: sum(a == g for a, g in zip(got, gold)) / len(gold) for name, got in answers.items()}
        agree = {
            b: sum(x == y for x, y in zip(answers[f"onnx {b} int8"], answers[f"onnx {b} float32"])) / len(gold)
            for b in ("dense", "compact")
        }
        rows.append({"missing": missing, "n": len(gold), "accuracy": acc, "int8_agrees_with_float32": agree})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def speed(paths: dict, batch: int, length: int, repeats: int) -> list:
    import onnxruntime as ort

    from dynmask.layers import with_backend
    from dynmask.tasks.classify.task import load_classifier
    from dynmask.traced import TextClassifierGraph

    model, tokenizer, _ = load_classifier(RUN)
    vocab, max_len = model.config.vocab_size, model.config.max_len
    length = min(length, max_len)
    missing = [tokenizer.unk_id, tokenizer.missing_id]
    graphs = {b: TextClassifierGraph(with_backend(model, b), missing, tokenizer.pad_id, False, vocab).eval()
              for b in ("dense", "compact")}  # fmt: skip
    runners = {f"eager {b}": (lambda g: lambda ids: g(torch.from_numpy(ids)))(g) for b, g in graphs.items()}
    for (b, k), path in paths.items():
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        s = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        runners[f"onnx {b} {k}"] = (lambda s: lambda ids: s.run(None, {s.get_inputs()[0].name: ids})[0])(s)
    rows = []
    for missing in (0.0, 0.5, 0.75):
        g = torch.Generator().manual_seed(int(missing * 100))
        ids = torch.randint(5, vocab, (batch, length), generator=g)
        ids[torch.rand(ids.shape, generator=g) < missing] = tokenizer.missing_id
        ids = ids.numpy()
        times = {name: [] for name in runners}
        with torch.no_grad():
            for fn in runners.values():
                fn(ids)  # warm-up
            for r in range(repeats):
                for name in list(runners) if r % 2 == 0 else list(reversed(runners)):
                    start = time.perf_counter()
                    runners[name](ids)
                    times[name].append(time.perf_counter() - start)
        ms = {name: statistics.median(t) * 1000 for name, t in times.items()}
        rows.append({"missing": missing, "ms": ms})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--length", type=int, default=256)
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args()
    import onnxruntime as ort

    paths = _run_and_exports()
    sizes = {f"{b} {k}": sum(f.stat().st_size for f in path.parent.glob(path.name + "*") if f.is_file())
             for (b, k), path in paths.items()}  # fmt: skip
    acc = accuracy(paths)
    fast = speed(paths, args.batch, args.length, args.repeats)
    meta = {"threads": torch.get_num_threads(), "torch": torch.__version__, "onnxruntime": ort.__version__,
            "batch": args.batch, "length": args.length, "bytes": sizes}  # fmt: skip
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "onnx-int8.json").write_text(json.dumps({"meta": meta, "accuracy": acc, "speed": fast}, indent=2))
    write_table()


def write_table() -> None:
    data = json.loads((OUT / "onnx-int8.json").read_text())
    meta, acc, fast = data["meta"], data["accuracy"], data["speed"]
    names = list(acc[0]["accuracy"])
    lines = [f"Rotten Tomatoes test ({acc[0]['n']:,} reviews), accuracy %; int8 labels equal to float32's, %:", "",
             "| words missing | " + " | ".join(names) + " | int8 = float32 (dense / compact) |",
             "|" + " --- |" * (len(names) + 2)]  # fmt: skip
    for r in acc:
        agree = r["int8_agrees_with_float32"]
        lines.append(f"| {r['missing']:.0%} | " + " | ".join(f"{100 * r['accuracy'][n]:.1f}" for n in names)
                     + f" | {100 * agree['dense']:.1f} / {100 * agree['compact']:.1f} |")  # fmt: skip
    names = list(fast[0]["ms"])
    lines += ["", f"ms per batch (B={meta['batch']}, L={meta['length']}, {meta['threads']} threads; speed-up vs eager "
              "dense):", "", "| missing | " + " | ".join(names) + " |", "|" + " --- |" * (len(names) + 1)]  # fmt: skip
    for r in fast:
        base = r["ms"]["eager dense"]
        lines.append(f"| {r['missing']:.0%} | " + " | ".join(f"{r['ms'][n]:.1f} ({base / r['ms'][n]:.2f}×)"
                     for n in names) + " |")  # fmt: skip
    sizes = ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in meta["bytes"].items())
    lines += ["", f"Files (graph + weights): {sizes}."]
    (OUT / "onnx-int8.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
