"""Decoding speed (generated tokens per second) with and without the decoder's key/value cache.

Greedy and beam search over the same sources, same model, side by side in one process. Without
the cache every step re-runs the decoder over the whole prefix; with it, each step runs one position.
The two must produce the same tokens (checked here too). A trained model folder can be given with
``--model``; by default a randomly initialised model of the default training size is used and
decoding is forced to ``--length`` tokens (no early end-of-sequence).

    python benchmarks/decoding.py     # writes benchmarks/results/decoding.{json,md}
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from dynmask import Mask
from dynmask.decoding import beam_search, greedy_decode
from dynmask.models.seq2seq import Seq2Seq, Seq2SeqConfig

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--src-len", type=int, default=64)
    p.add_argument("--length", type=int, default=48, help="tokens generated per source")
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--vocab", type=int, default=8000)
    p.add_argument("--out", type=Path, default=RESULTS / "decoding")
    args = p.parse_args()

    torch.manual_seed(0)
    model = Seq2Seq(
        Seq2SeqConfig(
            args.vocab,
            d_model=args.d_model,
            n_heads=4,
            enc_layers=args.layers,
            dec_layers=args.layers,
            d_ff=4 * args.d_model,
            max_len=512,
        )
    ).eval()
    src = torch.randint(5, args.vocab, (args.batch, args.src_len))
    src[:, ::5] = 2  # a fifth of the source missing
    mask = Mask.from_tokens(src, missing=[1, 2], pad=0)
    eos = -1  # never produced: every hypothesis runs the full length
    rows = []
    for name, run in (
        ("greedy", lambda c: greedy_decode(model, src, mask, bos=3, eos=eos, max_len=args.length, use_cache=c)),
        ("beam 4", lambda c: beam_search(model, src, mask, bos=3, eos=eos, beam=4, max_len=args.length, use_cache=c)),
    ):
        timings, outputs = {}, {}
        for cached in (True, False, True, False):  # interleaved, the second of each kept
            t0 = time.perf_counter()
            out = run(cached)
            timings[cached] = time.perf_counter() - t0
            outputs[cached] = [h.tokens for h in out]
        tokens = sum(len(t) for t in outputs[True])
        rows.append(
            {
                "decoder": name,
                "tokens": tokens,
                "same_tokens": outputs[True] == outputs[False],
                "cached_tokens_per_s": tokens / timings[True],
                "uncached_tokens_per_s": tokens / timings[False],
                "speedup": timings[False] / timings[True],
            }
        )
        print(rows[-1], flush=True)
    meta = {k: getattr(args, k) for k in ("batch", "src_len", "length", "d_model", "layers", "vocab")}
    meta.update(torch=torch.__version__, threads=torch.get_num_threads())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [
        f"Decoding speed, batch {args.batch} sources of {args.src_len} tokens (a fifth missing), "
        f"{args.length} tokens generated each, d={args.d_model}, {args.layers}+{args.layers} layers, vocab "
        f"{args.vocab}, torch {torch.__version__}, {torch.get_num_threads()} threads.",
        "",
        "| decoder | tokens/s with cache | tokens/s without | speed-up | same tokens |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['decoder']} | {r['cached_tokens_per_s']:.0f} | {r['uncached_tokens_per_s']:.0f} | "
        f"{r['speedup']:.2f}× | {r['same_tokens']} |"
        for r in rows
    ]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
