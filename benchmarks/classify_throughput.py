"""Training throughput (samples/s) of the text classifier: dynmask vs a same-size ``nn.TransformerEncoder``
model, on the very same batches (Rotten Tomatoes, 30% of tokens made missing, re-drawn every batch).

The torch model: token embedding + sinusoidal positions + ``nn.TransformerEncoder`` (pre-norm, same
width, heads, layers, feed-forward) with ``src_key_padding_mask`` = missing or padding, masked mean
pooling, linear head. Stock ``nn.TransformerEncoderLayer`` applies its ``dropout`` to the attention
probabilities too, which forces SDPA's slow kernel on CPU, so it is run with dropout 0.1 (stock) and 0;
dynmask (dropout on residual and feed-forward paths only) with 0.1 and 0. Dropout itself (``bernoulli_``)
is about a quarter of a step's time at this size on CPU.

    python benchmarks/classify_throughput.py   # writes benchmarks/results/classify_throughput.{json,md}
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dynmask import SinusoidalPositions, masked_mean
from dynmask.data.text import load_text_dataset
from dynmask.data.tokenizer import TextTokenizer
from dynmask.models import ClassifierConfig, TextClassifier
from dynmask.tasks.classify.task import MissingSpec, TextClassificationTask

RESULTS = Path(__file__).resolve().parent / "results"


class TorchClassifier(nn.Module):
    def __init__(
        self, vocab: int, classes: int, d: int, heads: int, layers: int, ff: int, dropout: float, max_len: int
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.pos = SinusoidalPositions(d, max_len)
        layer = nn.TransformerEncoderLayer(d, heads, ff, dropout=dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d), enable_nested_tensor=False)
        self.head = nn.Linear(d, classes)
        self.scale = d**0.5

    def forward(self, ids, mask):
        b, length = ids.shape
        x = self.embed(ids) * self.scale + self.pos(torch.arange(length).expand(b, length))
        h = self.encoder(x, src_key_padding_mask=~mask.observed)
        return self.head(masked_mean(h, mask))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--missing", type=float, default=0.3)
    p.add_argument("--out", type=Path, default=RESULTS / "classify_throughput")
    args = p.parse_args()

    splits = load_text_dataset("rotten_tomatoes")
    tok = TextTokenizer.train([e.text for e in splits.train], vocab_size=8000, max_len=64)
    task = TextClassificationTask(splits, tok, MissingSpec(args.missing), seed=0)
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(task.num_train(), generator=g).tolist()
    batches = [task.train_batch(order[i * args.batch_size : (i + 1) * args.batch_size], i) for i in range(args.steps)]
    d, heads, ff = args.d_model, 4, 2 * args.d_model
    models = {
        "dynmask dynamic (auto)": TextClassifier(
            ClassifierConfig(tok.vocab_size, 2, d_model=d, n_heads=heads, n_layers=args.layers, d_ff=ff, max_len=64)
        ),
        "dynmask dynamic (auto), dropout 0": TextClassifier(
            ClassifierConfig(
                tok.vocab_size, 2, d_model=d, n_heads=heads, n_layers=args.layers, d_ff=ff, max_len=64, dropout=0.0
            )
        ),
        "dynmask static": TextClassifier(
            ClassifierConfig(
                tok.vocab_size, 2, method="static", d_model=d, n_heads=heads, n_layers=args.layers, d_ff=ff, max_len=64
            )
        ),
        "torch TransformerEncoder, dropout 0.1": TorchClassifier(tok.vocab_size, 2, d, heads, args.layers, ff, 0.1, 64),
        "torch TransformerEncoder, dropout 0": TorchClassifier(tok.vocab_size, 2, d, heads, args.layers, ff, 0.0, 64),
    }
    params = {name: sum(p.numel() for p in m.parameters()) for name, m in models.items()}
    optims = {name: torch.optim.AdamW(m.parameters(), lr=1e-3) for name, m in models.items()}
    elapsed = {name: 0.0 for name in models}
    samples = 0
    for i, (ids, mask, labels) in enumerate(batches):
        for name, model in models.items():  # interleaved: every model sees the same batch in turn
            model.train()
            t0 = time.perf_counter()
            loss = F.cross_entropy(model(ids, mask), labels)
            optims[name].zero_grad()
            loss.backward()
            optims[name].step()
            if i >= 3:  # warm-up steps not timed
                elapsed[name] += time.perf_counter() - t0
        if i >= 3:
            samples += ids.shape[0]
    observed = float(torch.cat([b[1].observed.sum(1).float() for b in batches]).mean())
    valid = float(torch.cat([b[1].valid.sum(1).float() for b in batches]).mean())
    rows = [{"model": name, "parameters": params[name], "samples_per_s": samples / elapsed[name]} for name in models]
    ref = next(r["samples_per_s"] for r in rows if r["model"] == "torch TransformerEncoder, dropout 0.1")
    for r in rows:
        r["relative_to_torch_stock"] = r["samples_per_s"] / ref
    meta = {
        "batch_size": args.batch_size,
        "timed_steps": args.steps - 3,
        "d_model": d,
        "layers": args.layers,
        "heads": heads,
        "d_ff": ff,
        "train_missing": args.missing,
        "mean_valid_tokens": valid,
        "mean_observed_tokens": observed,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [
        f"Text classifier training throughput, Rotten Tomatoes, batch {args.batch_size}, d={d}, "
        f"{args.layers} layers, {heads} heads, ff={ff}, {args.missing:.0%} tokens missing (dynamic); "
        f"mean {valid:.1f} tokens per text, {observed:.1f} observed; same batches for every model.",
        "",
        "| model | parameters | samples/s | vs stock torch |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['model']} | {r['parameters']:,} | {r['samples_per_s']:.0f} | {r['relative_to_torch_stock']:.2f}× |"
        for r in rows
    ]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
