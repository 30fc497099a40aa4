"""NaN conformance: the masked-attention failures users reported, replayed on PyTorch, Hugging Face and
dynmask, with the failures counted side by side.

The reports replayed (each a case below):

* pytorch#101967: NaN at masked-out positions of the input turns the output NaN;
* pytorch#103749 / #103963: a fully masked row (a sequence with no observed key) returns NaN;
* pytorch#41508: NaN gradients through a fully masked row poison every parameter;
* pytorch#109517: an additive mask of ``finfo.min`` (how Hugging Face builds its masks): a fully masked
  row averages the masked values instead of reading nothing;
* pytorch#160064: ``nn.MultiheadAttention(need_weights=True)`` with a fully masked row: NaN everywhere;
* transformers#31035 and the left-padding reports: BERT under SDPA in bf16 with padding; left padding
  under a causal mask (the first queries have no key).

One batch serves every case: row 0 has scattered holes, row 1 nothing observed, row 2 left padding
(its first three positions missing), row 3 nothing missing. Each implementation is used the way its
documentation says for padding / missing positions. A case **fails** for an implementation and dtype
when any of these is broken (what dynmask guarantees):

* ``finite``: no NaN / inf in any output (a fully masked row included: pooling reads it);
* ``invariant``: outputs at observed positions are the same whatever the missing positions hold
  (0, 1e4, NaN, inf), and a row with nothing observed gives the same output whatever it holds;
* ``gradient``: every parameter gradient finite, and the gradient into missing inputs exactly zero.

    python benchmarks/nan_conformance.py        # benchmarks/results/nan-conformance.{json,md}
    python benchmarks/nan_conformance.py --quick   # no torch.compile, no ONNX (seconds)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Callable, Optional

os.environ.setdefault("KERAS_BACKEND", "torch")

import torch
import torch.nn.functional as F
from torch import Tensor, nn

OUT = Path(__file__).resolve().parent / "results"
B, L, D, H = 4, 6, 16, 2
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
FILLS = [0.0, 1e4, float("nan"), float("inf")]

# the cases: (name, the report it replays, causal?)
CASES = {
    "nan_at_masked": ("NaN / inf / large values at missing positions", "pytorch#101967", False),
    "fully_masked_row": ("a row with nothing observed", "pytorch#103749, #103963, #41508", False),
    "left_padding_causal": ("left padding under a causal mask", "left-padding NaN reports", True),
}


def batch_mask() -> Tensor:
    """bool[B, L], True = observed."""
    observed = torch.ones(B, L, dtype=torch.bool)
    observed[0, [1, 4]] = False  # scattered holes
    observed[1] = False  # nothing observed
    observed[2, :3] = False  # left padding
    return observed


# ------------------------------------------------------------------------------------------ implementations
# Each builds a module (float32, seeded) and returns run(x, observed, causal) -> float[B, L, D] in x's dtype,
# or None when the implementation has no such path (N/A).
class Impl:
    def __init__(self, name: str, build: Callable[[], nn.Module], run: Callable, causal: bool = True, dtypes=DTYPES):
        self.name, self.build, self.run, self.causal, self.dtypes = name, build, run, causal, dtypes


def _causal_allowed(observed: Tensor, causal: bool) -> Tensor:
    allowed = observed[:, None, None, :]  # (B, 1, 1, L)
    if causal:
        allowed = allowed & torch.ones(L, L, dtype=torch.bool).tril()[None, None]  # (B, 1, L, L)
    return allowed


class _SDPA(nn.Module):
    """q = k = v = a projection of x, attention by F.scaled_dot_product_attention."""

    def __init__(self, additive: bool):
        super().__init__()
        self.proj, self.additive = nn.Linear(D, D), additive

    def forward(self, x: Tensor, observed: Tensor, causal: bool) -> Tensor:
        h = self.proj(x).view(B, L, H, D // H).transpose(1, 2)  # (B, H, L, hd)
        allowed = _causal_allowed(observed, causal)
        if self.additive:  # how Hugging Face builds masks: finfo.min where not allowed
            mask = torch.zeros(allowed.shape, dtype=x.dtype).masked_fill(~allowed, torch.finfo(x.dtype).min)
        else:
            mask = allowed
        return F.scaled_dot_product_attention(h, h, h, attn_mask=mask).transpose(1, 2).reshape(B, L, D)


def _mha(need_weights: bool):
    def run(m, x, observed, causal):
        attn_mask = None if not causal else ~torch.ones(L, L, dtype=torch.bool).tril()  # True = not allowed
        out, _ = m(x, x, x, key_padding_mask=~observed, attn_mask=attn_mask, need_weights=need_weights)
        return out

    return run


def _torch_encoder_layer(m, x, observed, causal):
    mask = None if not causal else nn.Transformer.generate_square_subsequent_mask(L, dtype=x.dtype)
    return m(x, src_mask=mask, src_key_padding_mask=~observed, is_causal=causal)


def _bert(impl: str):
    def build():
        from transformers import BertConfig, BertModel

        config = BertConfig(
            vocab_size=32, hidden_size=D, num_hidden_layers=1, num_attention_heads=H, intermediate_size=2 * D,
            max_position_embeddings=L, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        )  # fmt: skip
        config._attn_implementation = impl
        return BertModel(config, add_pooling_layer=False)

    def run(m, x, observed, causal):
        return m(inputs_embeds=x, attention_mask=observed.long()).last_hidden_state

    return build, run


def _dynmask_encoder(backend: str):
    def build():
        from dynmask import Encoder

        return Encoder(D, H, 1, d_ff=2 * D, dropout=0.0, backend=backend)

    def run(m, x, observed, causal):
        from dynmask import Mask

        return m(x, Mask(observed, torch.ones_like(observed)), causal=causal)

    return build, run


def _dynmask_compiled():
    build, run = _dynmask_encoder("dense")
    cache = {}

    def run_compiled(m, x, observed, causal):
        from dynmask import Mask
        from dynmask.graph import compile as dm_compile

        key = (id(m), causal)
        if key not in cache:
            cache[key] = dm_compile(lambda x, mask: m(x, mask, causal=causal), dynamic=False)
        return cache[key](x, Mask(observed, torch.ones_like(observed)))

    return build, run_compiled


class _EncoderGraph(nn.Module):
    """values float[B, L, D] with NaN at missing positions -> the encoder's output (the mask from NaN)."""

    def __init__(self, encoder: nn.Module, causal: bool):
        super().__init__()
        self.encoder, self.causal = encoder, causal

    def forward(self, x: Tensor) -> Tensor:
        from dynmask import Mask

        observed = torch.isfinite(x).all(-1)  # bool[B, L]
        return self.encoder(x, Mask(observed, torch.ones_like(observed)), causal=self.causal)


def _dynmask_onnx():
    build, _ = _dynmask_encoder("dense")
    sessions = {}

    def run(m, x, observed, causal):
        from dynmask.export import OnnxSession, export_graph

        if x.dtype != torch.float32:
            return None  # the export is float32
        key = (id(m), causal)
        if key not in sessions:
            path = Path(tempfile.mkdtemp()) / "encoder.onnx"
            example = torch.randn(B, L, D)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                export_graph(_EncoderGraph(m, causal).eval(), (example,), path, None)  # dynmask export's route
            sessions[key] = OnnxSession(path)
        # the graph reads missing from NaN: missing positions hold NaN, whatever the case filled in
        x = torch.where(observed[..., None], x, torch.full_like(x, float("nan")))
        out = sessions[key].run({sessions[key].get_inputs()[0].name: x.detach().numpy()})[0]
        return torch.from_numpy(out)

    return build, run


def _keras():
    def build():
        from dynmask.keras import MaskedEncoderLayer

        layer = MaskedEncoderLayer(D, H, 2 * D, dropout=0.0)
        layer.build((B, L, D))
        return layer

    def run(m, x, observed, causal):
        return m(x, mask=observed)

    return build, run


def implementations(quick: bool) -> list[Impl]:
    impls = [
        Impl("torch sdpa (bool mask)", lambda: _SDPA(False), lambda m, x, o, c: m(x, o, c)),
        Impl("torch sdpa (additive finfo.min mask)", lambda: _SDPA(True), lambda m, x, o, c: m(x, o, c)),
        Impl("torch nn.MultiheadAttention", lambda: nn.MultiheadAttention(D, H, batch_first=True), _mha(False)),
        Impl(
            "torch nn.MultiheadAttention need_weights=True",
            lambda: nn.MultiheadAttention(D, H, batch_first=True),
            _mha(True),
        ),
        Impl(
            "torch nn.TransformerEncoderLayer",
            lambda: nn.TransformerEncoderLayer(D, H, 2 * D, dropout=0.0, batch_first=True),
            _torch_encoder_layer,
        ),
    ]
    try:
        import transformers  # noqa: F401

        for attn in ("eager", "sdpa"):
            impls.append(Impl(f"transformers BERT ({attn})", *_bert(attn), causal=False))
    except ImportError:
        print("transformers is not installed: its rows are left out", file=sys.stderr)
    impls += [
        Impl("dynmask Encoder (dense)", *_dynmask_encoder("dense")),
        Impl("dynmask Encoder (compact)", *_dynmask_encoder("compact")),
    ]
    if not quick:
        impls.append(Impl("dynmask Encoder (torch.compile)", *_dynmask_compiled(), dtypes={"fp32": torch.float32}))
        try:
            import onnxruntime  # noqa: F401

            impls.append(Impl("dynmask Encoder (ONNX, onnxruntime)", *_dynmask_onnx(), dtypes={"fp32": torch.float32}))
        except ImportError:
            print("onnxruntime is not installed: its row is left out", file=sys.stderr)
    try:
        import keras  # noqa: F401

        impls.append(
            Impl(
                "dynmask Keras MaskedEncoderLayer (torch backend)",
                *_keras(),
                causal=False,
                dtypes={"fp32": torch.float32},
            )
        )
    except ImportError:
        print("keras is not installed: its row is left out", file=sys.stderr)
    return impls


# ------------------------------------------------------------------------------------------ the checks
def _filled(x: Tensor, observed: Tensor, fill: float) -> Tensor:
    return torch.where(observed[..., None], x, torch.full_like(x, fill))


def _same(a: Tensor, b: Tensor, dtype) -> bool:
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    return bool(
        torch.isfinite(a).all() and torch.isfinite(b).all() and torch.allclose(a.float(), b.float(), atol=tol, rtol=tol)
    )


def check(impl: Impl, case: str, dtype_name: str) -> Optional[dict]:
    """{"finite", "invariant", "gradient": bool, "failed": bool} for one implementation, case and dtype;
    None when the implementation has no such path.

    * nan_at_masked: the missing positions hold 0, 1e4, NaN or inf; read at the observed positions of the
      rows that have some (rows 0, 2, 3);
    * fully_masked_row: the missing positions hold finite values (0, 1e4); read everywhere, row 1 included;
    * left_padding_causal: as fully_masked_row, under a causal mask (row 2's first queries have no key)."""
    dtype = impl.dtypes.get(dtype_name)
    causal = CASES[case][2]
    if dtype is None or (causal and not impl.causal):
        return None
    torch.manual_seed(0)
    module = impl.build()
    if isinstance(module, nn.Module):
        module = module.to(dtype).eval()
    observed = batch_mask()
    fills = FILLS if case == "nan_at_masked" else [0.0, 1e4]
    # where each case reads (bool[B, L]): outputs must be finite there, and the same whatever missing
    # positions hold at `same`. Observed positions always; the row with nothing observed as a whole
    # (pooling reads it); under a causal mask, the left-padded row as a whole (out * mask reads it).
    finite, same = observed.clone(), observed.clone()
    if case == "fully_masked_row":
        finite[1] = same[1] = True
    if case == "left_padding_causal":
        finite[2] = True
    x = torch.randn(B, L, D, generator=torch.Generator().manual_seed(1)).to(dtype)
    result = {"finite": True, "invariant": True, "gradient": True}
    try:
        with torch.no_grad():
            outs = [impl.run(module, _filled(x, observed, fill), observed, causal) for fill in fills]
        if any(o is None for o in outs):
            return None
        outs = [torch.as_tensor(o).float() for o in outs]
        result["finite"] = all(bool(torch.isfinite(o[finite]).all()) for o in outs)
        result["invariant"] = all(_same(o[same], outs[0][same], dtype) for o in outs[1:])
        if "ONNX" not in impl.name and "compile" not in impl.name:  # the gradient of eager paths
            xg = _filled(x, observed, fills[-1]).detach().requires_grad_(True)
            out = torch.as_tensor(impl.run(module, xg, observed, causal))
            # the loss reads the observed outputs only, as a masked loss or pooling does (pytorch#41508)
            loss = torch.where(observed[..., None], out, torch.zeros((), dtype=out.dtype)).float().sum()
            params = [p for p in module.parameters() if p.requires_grad]
            grads = torch.autograd.grad(loss, [xg, *params], allow_unused=True)
            finite = all(g is None or bool(torch.isfinite(g.float()).all()) for g in grads[1:])
            result["gradient"] = finite and grads[0] is not None and bool((grads[0][~observed] == 0).all())
    except Exception as e:  # an implementation that raises on the case fails it (with the reason)
        result = {"finite": False, "invariant": False, "gradient": False, "error": f"{type(e).__name__}: {e}"[:200]}
    result["failed"] = not (result["finite"] and result["invariant"] and result["gradient"])
    return result


def run_all(quick: bool = False) -> dict:
    torch.set_num_threads(min(2, torch.get_num_threads()))
    results = {}
    for impl in implementations(quick):
        results[impl.name] = {case: {d: check(impl, case, d) for d in DTYPES} for case in CASES}
    return results


def table(results: dict) -> str:
    """Markdown: one row per implementation, one column per case; a cell names the dtypes that fail and
    which checks they break (f = finite, i = invariant, g = gradient)."""
    header = "| implementation | " + " | ".join(f"{CASES[c][0]} ({CASES[c][1]})" for c in CASES) + " | failures |"
    lines = [header, "|" + "---|" * (len(CASES) + 2)]
    short = {"finite": "f", "invariant": "i", "gradient": "g"}
    for name, cases in results.items():
        cells, total, runs = [], 0, 0
        for case in CASES:
            checked = {d: r for d, r in cases[case].items() if r is not None}
            if not checked:
                cells.append("n/a")
                continue
            failed = {d: "".join(short[k] for k in short if not r[k]) for d, r in checked.items() if r["failed"]}
            cells.append(
                "fails " + ", ".join(f"{d} ({why})" for d, why in failed.items())
                if failed
                else "ok (" + ", ".join(checked) + ")"
            )
            total, runs = total + len(failed), runs + len(checked)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {total} of {runs} |")
    return "\n".join(lines)


DOCS = Path(__file__).resolve().parents[1] / "docs" / "nan-conformance.md"
BEGIN, END = "<!-- nan-conformance table: written by benchmarks/nan_conformance.py -->", "<!-- end of table -->"


def write_docs_table(md: str, meta: dict) -> None:
    """Put the table into the docs page between its markers (the page's prose is left alone)."""
    if not DOCS.is_file():
        return
    page = DOCS.read_text()
    if BEGIN not in page or END not in page:
        return
    stamp = f"torch {meta['torch']}" + (f", transformers {meta['transformers']}" if "transformers" in meta else "")
    block = (
        f"{BEGIN}\n\n{md}\n\n(f = not finite, i = depends on the missing positions, g = gradient; {stamp}.)\n\n{END}"
    )
    DOCS.write_text(page[: page.index(BEGIN)] + block + page[page.index(END) + len(END) :])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="leave out torch.compile and ONNX")
    p.add_argument("--output", type=Path, default=OUT)
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    results = run_all(args.quick)
    args.output.mkdir(parents=True, exist_ok=True)
    meta = {"torch": torch.__version__, "batch": [B, L, D, H], "fills": [str(f) for f in FILLS]}
    try:
        import transformers

        meta["transformers"] = transformers.__version__
    except ImportError:
        pass
    (args.output / "nan-conformance.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    md = table(results)
    (args.output / "nan-conformance.md").write_text(md + "\n")
    if not args.quick and args.output == OUT:
        write_docs_table(md, meta)
    print(md)


if __name__ == "__main__":
    main()
