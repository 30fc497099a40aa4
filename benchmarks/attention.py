"""One encoder layer's training step (forward + backward), dynmask vs torch, side by side in one process.

B=32, d=256, 4 heads, ff=1024, dropout 0 on both sides, pre-norm with a final LayerNorm
(``nn.TransformerEncoder(layer, 1, norm=LayerNorm)``; dynmask's Encoder loads the same weights).
Missing positions are drawn independently per position. Methods:

* ``torch_padded``: the torch stack at full length with ``src_key_padding_mask`` (missing = padding);
* ``oracle``: the same torch stack on inputs that already hold only the observed tokens
  (compacted outside the timed region, padded to the longest sample);
* ``dynmask_auto`` / ``dynmask_dense`` / ``dynmask_compact``: dynmask's Encoder on the full batch.

Each step's time is the median of ``--repeats`` runs after one warm-up, methods interleaved.
Memory: bytes of tensors saved for backward (activation memory, deduplicated by storage),
measured with ``torch.autograd.graph.saved_tensors_hooks``.

    python benchmarks/attention.py            # writes benchmarks/results/attention.{json,md}
    python benchmarks/attention.py --device cuda --out benchmarks/results/attention-cuda
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn

import dynmask as dm

RESULTS = Path(__file__).resolve().parent / "results"


def saved_bytes(step) -> int:
    seen: dict[tuple, int] = {}

    def pack(t):
        try:
            key = (t.untyped_storage().data_ptr(), t.device.type)
            seen[key] = max(seen.get(key, 0), t.untyped_storage().nbytes())
        except (RuntimeError, NotImplementedError):
            pass
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step(backward=False)
    return sum(seen.values())


def build(batch: int, length: int, d: int, heads: int, ff: int, missing: float, seed: int, device: str = "cpu"):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, d, generator=g)
    observed = torch.rand(batch, length, generator=g) >= missing
    observed[:, 0] = True  # every sample keeps at least one token (torch's path NaNs on empty rows)
    mask = dm.Mask(observed, torch.ones_like(observed))

    torch.manual_seed(seed)
    layer = nn.TransformerEncoderLayer(d, heads, ff, dropout=0.0, batch_first=True, norm_first=True)
    ref = nn.TransformerEncoder(layer, 1, norm=nn.LayerNorm(d), enable_nested_tensor=False).train()
    ours = dm.Encoder(d, heads, 1, d_ff=ff, dropout=0.0).train()
    ours.load_state_dict(ref.state_dict(), strict=False)

    x, mask, ref, ours = x.to(device), mask.to(device), ref.to(device), ours.to(device)
    plan = dm.Compaction.plan(mask.observed)
    x_oracle = plan.gather(x).contiguous()  # (B, N, D): only observed tokens, padded to the longest
    oracle_pad = ~plan.valid
    return x, mask, ref, ours, x_oracle, oracle_pad


def make_steps(x, mask, ref, ours, x_oracle, oracle_pad):
    def torch_padded(backward=True):
        xi = x.detach().requires_grad_()
        out = ref(xi, src_key_padding_mask=~mask.observed)
        loss = torch.where(mask.observed.unsqueeze(-1), out, 0.0).square().mean()
        if backward:
            loss.backward()

    def oracle(backward=True):
        xi = x_oracle.detach().requires_grad_()
        out = ref(xi, src_key_padding_mask=oracle_pad)
        loss = torch.where(oracle_pad.unsqueeze(-1), 0.0, out).square().mean()
        if backward:
            loss.backward()

    def ours_with(backend):
        def step(backward=True):
            xi = x.detach().requires_grad_()
            out = ours(xi, mask, backend=backend)
            loss = out.square().mean()
            if backward:
                loss.backward()

        return step

    return {
        "torch_padded": torch_padded,
        "oracle": oracle,
        "dynmask_auto": ours_with("auto"),
        "dynmask_dense": ours_with("dense"),
        "dynmask_compact": ours_with("compact"),
    }


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_steps(steps: dict, repeats: int, device: str = "cpu") -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in steps}
    for name, step in steps.items():  # warm-up
        step()
    _sync(device)
    for _ in range(repeats):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            _sync(device)  # GPU work is asynchronous: time it to completion
            times[name].append((time.perf_counter() - t0) * 1e3)
    return {name: statistics.median(ts) for name, ts in times.items()}


def check_agreement(x, mask, ref, ours) -> float:
    with torch.no_grad():
        a = ref(x, src_key_padding_mask=~mask.observed)
        b = ours(x, mask, backend="compact")
        keep = mask.observed.unsqueeze(-1)
        return float(torch.where(keep, a - b, 0.0).abs().max())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[128, 512])
    p.add_argument("--missing", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--ff", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS / "attention")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    args = p.parse_args()

    rows = []
    for length in args.lengths:
        for missing in args.missing:
            parts = build(args.batch, length, args.d_model, args.heads, args.ff, missing, args.seed, args.device)
            steps = make_steps(*parts)
            ms = time_steps(steps, args.repeats, args.device)
            mem = {name: saved_bytes(step) / 2**20 for name, step in steps.items()}
            x, mask = parts[0], parts[1]
            row = {
                "length": length,
                "missing": missing,
                "observed_fraction": float(mask.observed.float().mean()),
                "compact_width": int(mask.lengths().max()),
                "ms": ms,
                "saved_mib": mem,
                "max_abs_diff_vs_torch": check_agreement(x, mask, parts[2], parts[3]),
                "auto_speedup_vs_torch_padded": ms["torch_padded"] / ms["dynmask_auto"],
                "auto_over_oracle": ms["dynmask_auto"] / ms["oracle"],
            }
            rows.append(row)
            print(
                f"L={length} missing={missing:.2f} "
                + " ".join(f"{k}={v:.3g}ms" for k, v in ms.items())
                + f"  speedup={row['auto_speedup_vs_torch_padded']:.2f}x  /oracle={row['auto_over_oracle']:.2f}",
                flush=True,
            )

    meta = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "batch": args.batch,
        "d_model": args.d_model,
        "heads": args.heads,
        "ff": args.ff,
        "repeats": args.repeats,
        "seed": args.seed,
        "dropout": 0.0,
        "device": args.device,
        "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    args.out.with_suffix(".md").write_text(to_markdown(meta, rows))
    print(to_markdown(meta, rows))


def to_markdown(meta: dict, rows: list[dict]) -> str:
    lines = [
        f"One encoder layer (+ final LayerNorm), training step forward+backward, B={meta['batch']}, "
        f"d={meta['d_model']}, {meta['heads']} heads, ff={meta['ff']}, dropout 0, torch {meta['torch']}, "
        f"{meta.get('device', 'cpu')} ({meta.get('device_name') or meta['processor']}), "
        f"{meta['threads']} threads; median of {meta['repeats']} runs, ms. Memory: MiB saved for backward.",
        "",
        "| L | missing | torch padded | oracle | dynmask auto | dense | compact | auto speed-up vs padded "
        "| auto / oracle | saved MiB: padded / oracle / auto |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        ms, mem = r["ms"], r["saved_mib"]
        lines.append(
            f"| {r['length']} | {r['missing']:.2f} | {ms['torch_padded']:.3g} | {ms['oracle']:.3g} | "
            f"{ms['dynmask_auto']:.3g} | {ms['dynmask_dense']:.3g} | {ms['dynmask_compact']:.3g} | "
            f"{r['auto_speedup_vs_torch_padded']:.2f}× | {r['auto_over_oracle']:.2f} | "
            f"{mem['torch_padded']:.0f} / {mem['oracle']:.0f} / {mem['dynmask_auto']:.0f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
