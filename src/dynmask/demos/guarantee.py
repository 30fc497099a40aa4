"""``dynmask guarantee``: the guarantee per variant on a NaN batch, and the compaction speed-up."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from .. import __version__
from ..layers import Encoder
from ..masks import Mask
from ..methods import method_names


def _batch(batch: int, length: int, d_model: int, missing: float, seed: int) -> tuple[torch.Tensor, Mask]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, d_model, generator=g)
    holes = torch.rand(batch, length, generator=g) < missing
    holes[:, 0] = False
    x = torch.where(holes.unsqueeze(-1), float("nan"), x)  # NaN marks missing, as in real data
    return x, Mask.from_nan(x)


def _guarantee_row(variant: str, x: torch.Tensor, mask: Mask, seed: int) -> dict:
    torch.manual_seed(seed)
    enc = Encoder(x.shape[-1], 4, 2, dropout=0.0, method=variant).eval()
    filled = {}
    with torch.no_grad():
        for name, value in (("zero", 0.0), ("1e30", 1e30), ("nan", float("nan"))):
            xi = torch.where(mask.missing.unsqueeze(-1), value, torch.nan_to_num(x, nan=0.0))
            filled[name] = enc(xi, mask)
        alone = torch.zeros_like(filled["zero"])
        for b in range(x.shape[0]):
            keep = mask.observed[b]
            alone[b, keep] = enc(torch.nan_to_num(x)[b : b + 1, keep], Mask.full(1, int(keep.sum())))[0]
    keep = mask.observed.unsqueeze(-1)
    obs = lambda t: torch.where(keep, t, 0.0)
    finite = lambda v: v if v == v and abs(v) != float("inf") else str(v)  # JSON has no NaN
    return {
        "variant": variant,
        "max_change_zero_to_1e30": finite(float((obs(filled["zero"]) - obs(filled["1e30"])).abs().max())),
        "nan_outputs_with_nan_inputs": int(torch.isnan(obs(filled["nan"])).sum()),
        "max_diff_vs_observed_tokens_alone": finite(float((obs(filled["zero"]) - obs(alone)).abs().max())),
    }


def _speed_rows(batch: int, length: int, d_model: int, repeats: int, seed: int) -> list[dict]:
    rows = []
    for missing in (0.0, 0.5, 0.75):
        x, mask = _batch(batch, length, d_model, missing, seed)
        x = torch.nan_to_num(x)
        torch.manual_seed(seed)
        enc = Encoder(d_model, 4, 1, dropout=0.0).train()
        times = {}
        for backend in ("dense", "compact"):
            runs = []
            for i in range(repeats + 1):
                xi = x.clone().requires_grad_()
                t0 = time.perf_counter()
                enc(xi, mask, backend=backend).square().mean().backward()
                if i:  # the first run warms up
                    runs.append((time.perf_counter() - t0) * 1e3)
            times[backend] = sorted(runs)[len(runs) // 2]
        rows.append(
            {
                "missing": missing,
                "dense_ms": times["dense"],
                "compact_ms": times["compact"],
                "speedup": times["dense"] / times["compact"],
            }
        )
    return rows


def guarantee_demo(output: Path, quick: bool, seed: int) -> dict:
    batch, length, d_model = (8, 64, 32) if quick else (32, 256, 128)
    x, mask = _batch(8, 24, 32, 0.4, seed)
    print(f"dynmask {__version__} guarantee check (torch {torch.__version__}, {torch.get_num_threads()} threads)\n")
    print("1. The guarantee. A batch with 40% of its steps NaN; observed outputs of a 2-layer encoder when")
    print("   the missing values are 0, 1e30 or NaN, and against running on the observed tokens alone:\n")
    header = f"   {'variant':<13} {'max change 0→1e30':>18} {'NaN outputs':>12} {'max diff vs alone':>18}"
    print(header)
    guarantee = [_guarantee_row(v, x, mask, seed) for v in method_names("stack")]
    for r in guarantee:
        change, alone = (float(r[k]) for k in ("max_change_zero_to_1e30", "max_diff_vs_observed_tokens_alone"))
        print(f"   {r['variant']:<13} {change:>18.3g} {r['nan_outputs_with_nan_inputs']:>12d} {alone:>18.3g}")
    print(
        f"\n2. Cost. One encoder layer, training step, B={batch}, L={length}, d={d_model}: "
        "dense (full length, masked) vs compact (observed tokens only):\n"
    )
    speed = _speed_rows(batch, length, d_model, 1 if quick else 3, seed)
    print(f"   {'missing':>8} {'dense ms':>9} {'compact ms':>11} {'speed-up':>9}")
    for r in speed:
        print(f"   {r['missing']:>8.2f} {r['dense_ms']:>9.1f} {r['compact_ms']:>11.1f} {r['speedup']:>8.2f}×")
    result = {
        "version": __version__,
        "torch": torch.__version__,
        "guarantee": guarantee,
        "speed": {"batch": batch, "length": length, "d_model": d_model, "rows": speed},
    }
    output.mkdir(parents=True, exist_ok=True)
    (output / "guarantee.json").write_text(json.dumps(result, indent=2))
    print(f"\nwrote {output / 'guarantee.json'}")
    return result
