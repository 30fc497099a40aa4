"""Export (ONNX, the mask built inside the graph) and torch.compile: parity with eager PyTorch on
batches unlike the export example (another compact width, a fully missing row, nothing missing,
NaN / inf at missing positions), no NaN out of the graph, graph breaks and recompiles counted."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import small_classify_args

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from textdata import write_sentiment_csv  # noqa: E402

import dynmask as dm  # noqa: E402
from dynmask.cli import main  # noqa: E402
from dynmask.export import OnnxSeriesModel, OnnxTextClassifier  # noqa: E402
from dynmask.models.series import SeriesClassifier, SeriesConfig, SeriesImputer  # noqa: E402
from dynmask.tasks.classify.task import load_classifier  # noqa: E402

SMALL = small_classify_args(layers=2, max_len=24, test_missing="0")
warnings.filterwarnings("ignore", category=DeprecationWarning)


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("text")
    data = write_sentiment_csv(folder / "d.csv", n=160)
    assert (
        main(["train", "classify", "--data", str(data), "--output", str(folder / "run"), "--epochs", "1", *SMALL]) == 0
    )
    return folder / "run"


def _hostile_ids(tok):
    """A batch whose compact width differs from the export example's: long and short rows, a fully
    missing row, a row with nothing missing, padding."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, tok.vocab_size, (5, 21), generator=g)
    ids[0, ::3] = tok.missing_id  # scattered holes
    ids[1] = tok.unk_id  # nothing observed
    ids[3, 9:] = tok.pad_id  # short row, nothing missing
    ids[4, 2:6] = tok.missing_id
    ids[4, 15:] = tok.pad_id
    return ids


@pytest.mark.parametrize("backend", ["dense", "compact"])
def test_text_classifier_exports_with_the_mask_inside(text_run, tmp_path, backend, capsys):
    out = tmp_path / f"model-{backend}.onnx"
    assert main(["export", "--model", str(text_run), "--output", str(out), "--backend", backend]) == 0
    model, tok, labels = load_classifier(text_run)
    runner = OnnxTextClassifier(out)
    ids = _hostile_ids(tok)
    mask = tok.mask(ids)
    with torch.no_grad():
        reference = model(ids, mask).numpy()
    got = runner.logits(ids)
    assert np.isfinite(got).all() and np.abs(got - reference).max() <= 1e-5
    other = torch.where(mask.missing, torch.full_like(ids, tok.unk_id), ids)  # another id at missing positions
    assert np.array_equal(runner.logits(other), got)
    full = ids[3:4, :9]  # nothing missing, no padding
    with torch.no_grad():
        assert np.abs(runner.logits(full) - model(full, tok.mask(full)).numpy()).max() <= 1e-5
    capsys.readouterr()
    texts = ["the movie was ??? fun", "???", "a dull and boring plot with actors"]
    assert main(["predict", "--model", str(out), *sum((["--text", t] for t in texts), [])]) == 0
    exported = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert main(["predict", "--model", str(text_run), *sum((["--text", t] for t in texts), [])]) == 0
    eager = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["label"] for r in exported] == [r["label"] for r in eager]


def _series_run(tmp_path, kind):
    torch.manual_seed(0)
    if kind == "impute":
        model = SeriesImputer(SeriesConfig(3, d_model=16, n_heads=2, n_layers=2, d_ff=32, max_len=64))
    else:
        model = SeriesClassifier(SeriesConfig(3, num_classes=4, d_model=16, n_heads=2, n_layers=2, d_ff=32, max_len=64))
    return model.eval()


@pytest.mark.parametrize("fused", [True, False], ids=["dynmask-export", "plain-torch-onnx-export"])
@pytest.mark.parametrize("kind", ["impute", "classify-series"])
@pytest.mark.parametrize("backend", ["dense", "compact"])
def test_series_models_export_with_the_nan_mask_inside(tmp_path, kind, backend, fused):
    """Both routes keep the guarantee: dynmask's (fused attention, rows zeroed by multiplying) and a user's
    own ``torch.onnx.export`` of the same graph (the exporter's decomposition, ``where`` everywhere)."""
    from torch.export import Dim

    from dynmask.export import OnnxSession, export_graph
    from dynmask.layers import with_backend
    from dynmask.traced import SeriesGraph

    model = _series_run(tmp_path, kind)
    graph = SeriesGraph(with_backend(model, backend), impute=kind == "impute").eval()
    example = torch.randn(2, 8, 3)
    example[0, 1] = float("nan")
    path = tmp_path / "series.onnx"
    dims = ({0: Dim("batch"), 1: Dim("length", min=2, max=4096)},)
    if fused:
        export_graph(graph, (example,), path, dims)
    else:
        with torch.no_grad():
            torch.onnx.export(graph, (example,), str(path), dynamo=True, verbose=False, dynamic_shapes=dims)
    import onnx

    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert ("MultiHeadAttention" in ops) == fused and ("Softmax" in ops) != fused
    session = OnnxSession(path)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 19, 3, generator=g)
    x[0, ::2] = float("nan")  # whole steps missing
    x[1] = float("nan")  # nothing observed
    x[2, 3:7, 1] = float("inf")  # single values missing
    run = lambda v: session.run({session.get_inputs()[0].name: v.numpy()})[0]
    with torch.no_grad():
        reference = graph(x).numpy()
    got = run(x)
    assert np.isfinite(got).all() and np.abs(got - reference).max() <= 1e-5
    poisoned = torch.where(torch.isfinite(x), x, torch.full_like(x, float("-inf")))
    assert np.array_equal(run(poisoned), got)
    clean = torch.randn(3, 11, 3)
    with torch.no_grad():
        assert np.abs(run(clean) - graph(clean).numpy()).max() <= 1e-5


@pytest.mark.parametrize(  # residual: the default
    "variant", [["--no-residual"], ["--normalize", "window"], ["--residual-gate"]]
)
def test_exported_imputer_fills_a_csv_like_the_run(tmp_path, variant):
    rng = np.random.default_rng(0)
    values = np.sin(np.arange(200)[:, None] / 7 + np.arange(3)) + rng.normal(0, 0.1, (200, 3))
    values[rng.random(values.shape) < 0.2] = np.nan
    frame = pd.DataFrame(values, columns=["a", "b", "c"])
    frame.insert(0, "t", range(200))
    frame.to_csv(tmp_path / "in.csv", index=False)
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "impute",
                "--data",
                str(tmp_path / "in.csv"),
                "--output",
                str(run),
                "--window",
                "12",
                "--epochs",
                "2",
                "--d-model",
                "16",
                "--heads",
                "2",
                "--layers",
                "1",
                "--no-progress",
                *variant,  # the interpolation and the window statistics go into the graph too
            ]
        )
        == 0
    )
    assert main(["export", "--model", str(run), "--output", str(tmp_path / "imp.onnx"), "--backend", "compact"]) == 0
    for model, name in ((run, "eager.csv"), (tmp_path / "imp.onnx", "onnx.csv")):
        assert (
            main(
                [
                    "impute",
                    "--model",
                    str(model),
                    "--input",
                    str(tmp_path / "in.csv"),
                    "--output",
                    str(tmp_path / name),
                    "--use-model",
                ]  # the model itself, whatever the validation fallback (the export carries it too)
            )
            == 0
        )
    eager, onnx = pd.read_csv(tmp_path / "eager.csv"), pd.read_csv(tmp_path / "onnx.csv")
    assert np.abs(eager[["a", "b", "c"]].to_numpy() - onnx[["a", "b", "c"]].to_numpy()).max() <= 1e-4
    assert isinstance(OnnxSeriesModel(tmp_path / "imp.onnx").impute(torch.randn(1, 12, 3)), torch.Tensor)
    for model, name in ((run, "eager-default.csv"), (tmp_path / "imp.onnx", "onnx-default.csv")):
        assert (
            main(
                ["impute", "--model", str(model), "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / name)]
            )
            == 0
        )
    assert pd.read_csv(tmp_path / "eager-default.csv").equals(pd.read_csv(tmp_path / "onnx-default.csv"))


def test_export_refuses_what_it_cannot_trace(tmp_path, capsys):
    data = write_sentiment_csv(tmp_path / "d.csv", n=80)
    run = tmp_path / "lstm"
    assert (
        main(
            ["train", "classify", "--data", str(data), "--output", str(run), "--epochs", "1", "--arch", "lstm", *SMALL]
        )
        == 0
    )
    assert main(["export", "--model", str(run), "--output", str(tmp_path / "x.onnx")]) == 2
    assert "arch is 'lstm'" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------- torch.compile
def _encoder_and_batches():
    torch.manual_seed(0)
    enc = dm.Encoder(16, 2, 2, d_ff=32, positional="sinusoidal", max_len=64).eval()
    batches = []
    for i, (b, length, p) in enumerate([(3, 12, 0.3), (3, 12, 0.6), (5, 20, 0.5), (2, 9, 0.2), (4, 17, 0.7)]):
        g = torch.Generator().manual_seed(i)
        x = torch.randn(b, length, 16, generator=g)
        observed = torch.rand(b, length, generator=g) > p
        observed[0, :2] = True
        batches.append((x, dm.Mask(observed, torch.ones(b, length, dtype=torch.bool))))
    return enc, batches


def test_compile_dense_is_one_graph_and_agrees():
    enc, batches = _encoder_and_batches()
    torch._dynamo.reset()
    fn = lambda x, observed, valid: enc(x, dm.Mask(observed, valid), backend="dense")
    x, mask = batches[0]
    explained = torch._dynamo.explain(fn)(x, mask.observed, mask.valid)
    assert explained.graph_break_count == 0 and explained.graph_count == 1
    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager", dynamic=True)
    with torch.no_grad():
        for x, mask in batches:
            assert (compiled(x, mask.observed, mask.valid) - enc(x, mask, backend="dense")).abs().max() <= 1e-5


def test_compile_compact_breaks_only_at_the_width_and_never_recompiles():
    from torch._dynamo.testing import CompileCounter

    from dynmask.graph import compile as dm_compile

    enc, batches = _encoder_and_batches()
    torch._dynamo.reset()
    fn = lambda x, observed, valid: enc(x, dm.Mask(observed, valid), backend="compact")
    x, mask = batches[0]
    explained = torch._dynamo.explain(fn)(x, mask.observed, mask.valid)  # plain torch.compile settings
    sites = {(frame.filename, frame.lineno) for b in explained.break_reasons for frame in b.user_stack[-1:]}
    assert len(sites) == 1 and all("item()" in b.reason for b in explained.break_reasons)  # one break: the width
    torch._dynamo.reset()
    counter = CompileCounter()
    compiled = dm_compile(fn, backend=counter, dynamic=True, fullgraph=True)  # the width inside the graph
    counts = []
    with torch.no_grad():
        for x, mask in batches:
            assert (compiled(x, mask.observed, mask.valid) - enc(x, mask, backend="compact")).abs().max() <= 1e-5
            counts.append(counter.frame_count)
    assert counts[2:] == [counts[1]] * (len(counts) - 2), counts  # widths and lengths change, nothing recompiles


@pytest.mark.parametrize("backend", ["dense", "compact"])
def test_a_confidence_input_exports_and_matches_pytorch(text_run, tmp_path, backend):
    """--confidence-input: the graph takes a confidence per token; 0 is missing, others a log-prior on
    attention, equal to PyTorch with Mask.from_confidence(soft=True); ones equal the one-input graph."""
    from dynmask.data.confidence import soft_mask
    from dynmask.export import load_onnx

    out = tmp_path / f"conf-{backend}.onnx"
    assert main(["export", "--model", str(text_run), "--output", str(out), "--backend", backend,
                 "--confidence-input"]) == 0  # fmt: skip
    runner = load_onnx(out)
    model, tok, labels = load_classifier(text_run)
    texts = ["the movie was great fun", "a dull and boring plot", "witty"]
    confidences = [[0.9, 0.05, 0.7, 0.3, 1.0], [1.0, 0.6, 0.2, 0.0, 0.8], [0.4]]
    encoded, piece_conf = tok.encode_with_confidences(texts, confidences)
    ids = tok.pad(encoded)
    for threshold in (0.0, 0.25):
        mask = soft_mask(tok.mask(ids), piece_conf, threshold)
        conf = torch.ones(ids.shape)
        for row, values in enumerate(piece_conf):
            c = torch.tensor(values)
            conf[row, : len(values)] = torch.where(c >= threshold, c, 0.0)
        with torch.no_grad():
            reference = model(ids, mask).numpy()
        got = runner.logits(ids, conf)
        assert np.isfinite(got).all() and np.abs(got - reference).max() <= 1e-5
        rows = runner.predict(texts, confidences, threshold=threshold, soft=True)
        assert [r["label"] for r in rows] == [labels[int(i)] for i in reference.argmax(-1)]
    plain = load_onnx(tmp_path / "plain.onnx") if (tmp_path / "plain.onnx").exists() else None
    assert (
        main(["export", "--model", str(text_run), "--output", str(tmp_path / "plain.onnx"), "--backend", backend]) == 0
    )
    plain = load_onnx(tmp_path / "plain.onnx")
    assert np.abs(runner.logits(ids) - plain.logits(ids)).max() <= 1e-5  # no confidences: the one-input graph
    hard = runner.predict(texts, confidences, threshold=0.5)  # words below 0.5 missing, the rest read as usual
    marked = [
        " ".join(w if c >= 0.5 else "[missing]" for w, c in zip(t.split(), cs)) for t, cs in zip(texts, confidences)
    ]
    keys = lambda rows: [(r["label"], r["observed_tokens"], r.get("probabilities")) for r in rows]
    assert keys(hard) == keys(plain.predict(marked))  # "witty" (0.4): nothing observed, no label


def test_exported_labels_must_match_the_logits(text_run, tmp_path):
    """export.json naming another number of labels than the graph's logits dropped one silently (issue 35,
    low); duplicate names collapsed two classes. Both are refused when the model is loaded."""
    from dynmask.errors import DataError
    from dynmask.export import load_onnx

    out = tmp_path / "m.onnx"
    assert main(["export", "--model", str(text_run), "--output", str(out)]) == 0
    meta_path = tmp_path / "m.onnx.assets" / "export.json"
    meta = json.loads(meta_path.read_text())
    for labels, message in ((meta["labels"] + ["extra"], "labels but the graph gives"), (["pos", "pos"], "distinct")):
        meta_path.write_text(json.dumps({**meta, "labels": labels}))
        with pytest.raises(DataError, match=message):
            load_onnx(out)


@pytest.mark.parametrize("backend", ["dense", "compact"])
def test_ids_outside_the_vocabulary_are_missing_in_the_graph(text_run, tmp_path, backend):
    """A negative id was taken by the graph's Gather as a real token counted from the end (issue 35,
    low): the graph cannot raise, so an id outside [0, vocab) is missing, exactly like the missing id."""
    out = tmp_path / "m.onnx"
    assert main(["export", "--model", str(text_run), "--output", str(out), "--backend", backend]) == 0
    _, tok, _ = load_classifier(text_run)
    runner = OnnxTextClassifier(out)
    ids = _hostile_ids(tok)
    holes = ids.clone()
    holes[2, 4], holes[2, 7], holes[0, 1] = -1, -(10**9), tok.vocab_size + 7
    marked = ids.clone()
    marked[2, 4], marked[2, 7], marked[0, 1] = tok.missing_id, tok.missing_id, tok.missing_id
    assert np.array_equal(runner.logits(holes), runner.logits(marked))
    assert not np.array_equal(runner.logits(holes)[2], runner.logits(ids)[2])  # the holes do change the row


def test_a_successful_export_prints_one_line_naming_every_file(text_run, tmp_path):
    """export printed eight lines of its dependencies' warnings and never named X.onnx.data (issue 38, item 6)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "m.onnx"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    done = subprocess.run([sys.executable, "-m", "dynmask", "export", "--model", str(text_run), "--output", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "" and len(done.stdout.strip().splitlines()) == 1, (done.stdout, done.stderr)
    if Path(str(out) + ".data").exists():
        assert "m.onnx.data" in done.stdout


def test_an_int8_export_is_one_quantized_file_that_answers_like_float32(text_run, tmp_path, capsys):
    """Issue 40: `export --quantize int8` stores the matrix weights as int8 (onnxruntime's dynamic
    quantization) in the graph file itself; its labels match the float32 export's on these texts."""
    import json

    import onnx

    fp32, int8 = tmp_path / "f.onnx", tmp_path / "q.onnx"
    assert main(["export", "--model", str(text_run), "--output", str(fp32)]) == 0
    assert main(["export", "--model", str(text_run), "--output", str(int8), "--quantize", "int8"]) == 0
    assert "int8 weights" in capsys.readouterr().out and not (tmp_path / "q.onnx.data").exists()
    ops = {node.op_type for node in onnx.load(str(int8)).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} & ops, ops
    texts = ["a great film", "dull ??? boring", "the plot was [missing] and superb", "???"]
    rows = {}
    for name, path in (("fp32", fp32), ("int8", int8)):
        assert main(["predict", "--model", str(path), *[a for t in texts for a in ("--text", t)]]) == 0
        rows[name] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["label"] for r in rows["int8"]] == [r["label"] for r in rows["fp32"]]
    assert rows["int8"][3]["label"] is None  # nothing observed: no label, as float32


def test_sessions_flush_denormals_and_a_servers_threads_sleep_between_calls(text_run, tmp_path):
    """Every session dynmask opens flushes denormals (a masked key's weight underflows, and onnxruntime's
    exponential is ~15x slower on denormal results); a server's lets its threads sleep between calls."""
    from dynmask.serve.models import ServedModel

    out = tmp_path / "m.onnx"
    assert main(["export", "--model", str(text_run), "--output", str(out)]) == 0
    entry = lambda session, key: session.get_session_options().get_session_config_entry(key)
    runner = OnnxTextClassifier(out)
    assert entry(runner.session, "session.set_denormal_as_zero") == "1"
    served = ServedModel(out)._predict.__self__  # the runner behind /predict
    assert entry(served.session, "session.set_denormal_as_zero") == "1"
    assert entry(served.session, "session.intra_op.allow_spinning") == "0"


def test_a_session_leaves_the_callers_subnormal_numbers_alone(text_run, tmp_path):
    """onnxruntime flushes denormals on the thread that creates a session with set_denormal_as_zero, for
    good; dynmask's sessions live on a thread of their own, so the caller's arithmetic is untouched."""
    out = tmp_path / "m.onnx"
    assert main(["export", "--model", str(text_run), "--output", str(out)]) == 0
    tiny = np.float64(5e-324)  # the smallest subnormal double
    runner = OnnxTextClassifier(out)
    runner.predict(["a fine film", "???"])
    assert tiny * 1.0 > 0 and np.float32(1e-45) * np.float32(1) > 0


@pytest.mark.parametrize("backend", ["dense", "compact"])
def test_the_fused_export_selects_no_activation_rows_with_where(text_run, tmp_path, backend):
    """onnxruntime's ``Where`` over [B, L, D] with a [B, L, 1] condition runs ~5x slower than a ``Mul``
    (0.21 vs 0.04 ms at [16, 256, 64], 2 threads): dynmask's export writes none. The ``Where``s left
    select ids and masks, rank 2 at most; the embedding's missing vector is the folded table's last row."""
    import onnx

    out = tmp_path / f"m-{backend}.onnx"
    assert main(["export", "--model", str(text_run), "--output", str(out), "--backend", backend]) == 0
    graph = onnx.shape_inference.infer_shapes(onnx.load(str(out))).graph
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in [*graph.value_info, *graph.output]}
    wheres = [n for n in graph.node if n.op_type == "Where"]
    assert wheres and all(ranks[n.output[0]] <= 2 for n in wheres), [(n.name, ranks[n.output[0]]) for n in wheres]


class _FromNaN(torch.nn.Module):
    """values float[B, L, D] (NaN or inf = missing) -> a dynmask stack's output and its masked mean, as a
    user's own module would call them: the values reach the stack as they came."""

    def __init__(self, backend: str):
        super().__init__()
        self.encoder = dm.Encoder(16, 2, 2, d_ff=32, dropout=0.0, backend=backend)
        self.attention = dm.MaskedMultiheadAttention(16, 2)

    def forward(self, x):
        observed = torch.isfinite(x).all(-1)  # bool[B, L], True = observed
        mask = dm.Mask(observed, torch.ones_like(observed))
        h = self.encoder(x, mask)  # (B, L, D)
        a = self.attention(x, key_keep=observed)  # (B, L, D)
        return torch.cat([h, a, dm.masked_mean(x, mask).unsqueeze(1)], dim=1)  # (B, 2L + 1, D)


@pytest.mark.parametrize("backend", ["dense", "compact"])
def test_a_users_module_exported_keeps_the_guarantee_with_nan_and_inf_handed_in(tmp_path, backend):
    """A stack, an attention layer and a pooling handed a user's values (NaN or inf at missing positions)
    inside an exported graph (``export_graph``: fused attention, rows zeroed by multiplies where the model
    computed them): the outputs at observed positions and the pooled rows are finite and equal eager
    PyTorch's on the same values with zeros there. (A multiply cleaned these inputs before: 0 x NaN.)"""
    from dynmask.export import OnnxSession, export_graph

    torch.manual_seed(0)
    module = _FromNaN(backend).eval()
    path = tmp_path / "module.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_graph(module, (torch.randn(3, 8, 16),), path, None)
    session = OnnxSession(path)
    x = torch.randn(3, 8, 16)
    observed = torch.rand(3, 8) < 0.6
    observed[:, 0] = True  # every row keeps a key
    clean = torch.where(observed[..., None], x, torch.zeros(()))
    with torch.no_grad():
        expected = module(torch.where(observed[..., None], x, torch.full((), float("nan"))))
    keep = torch.cat([observed, observed, torch.ones(3, 1, dtype=torch.bool)], dim=1)  # (B, 2L + 1)
    for fill in (float("nan"), float("inf"), -float("inf")):
        values = torch.where(observed[..., None], x, torch.full((), fill))
        out = torch.from_numpy(session.run({session.get_inputs()[0].name: values.numpy()})[0])
        assert torch.isfinite(out[keep]).all(), fill
        torch.testing.assert_close(out[keep], expected[keep], atol=1e-4, rtol=1e-4)
    assert torch.isfinite(expected[keep]).all() and not torch.equal(clean, x)


class _Gathered(torch.nn.Module):
    """values float[B, L, D] (NaN = missing) -> each row's observed values first, zeros after (a user's
    own use of :class:`dynmask.Compaction`, exported)."""

    def forward(self, x):
        from dynmask.graph import traced_width

        observed = torch.isfinite(x).all(-1)  # bool[B, L], True = observed
        return dm.Compaction.plan(observed, width=traced_width(observed)).gather(x)  # (B, N, D)


def test_an_exported_compaction_gives_zero_filler_slots_whatever_the_dropped_values_hold(tmp_path):
    """``Compaction.gather`` in an exported graph: the slots after a row's observed values are zero, as in
    eager PyTorch, whatever NaN or inf the dropped positions hold (a multiply gave NaN there: 0 x NaN)."""
    from dynmask.export import OnnxSession, export_graph

    path = tmp_path / "gather.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_graph(_Gathered(), (torch.randn(2, 6, 4),), path, None)
    session = OnnxSession(path)
    x = torch.randn(2, 6, 4)
    observed = torch.tensor([[1, 0, 1, 0, 0, 1], [0, 1, 1, 1, 1, 0]], dtype=torch.bool)
    for fill in (float("nan"), float("inf")):
        values = torch.where(observed[..., None], x, torch.full((), fill))
        out = torch.from_numpy(session.run({session.get_inputs()[0].name: values.numpy()})[0])
        torch.testing.assert_close(out, _Gathered()(values))  # eager: observed values first, then zeros
        assert torch.isfinite(out).all() and out[0, 3:].eq(0).all() and out[1, 4:].eq(0).all()
