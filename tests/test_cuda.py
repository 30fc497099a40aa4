"""The guarantee and the backends on a CUDA device (skipped where there is none).

The same properties as on CPU, on the GPU kernels (SDPA's flash / memory-efficient paths, cuDNN RNNs,
atomics in index_put): outputs at observed positions bitwise equal whatever the missing values hold,
gradients into missing inputs exactly zero, no NaN; dense == compact; GPU == CPU within float
tolerance; and the same under bf16 autocast. Deterministic algorithms are switched on so that two
runs' parameter gradients can be compared bit for bit.
"""

import os

import pytest
import torch
from guarantee import check_guarantee, masked_batches
from hypothesis import given, settings
from hypothesis import strategies as st

from dynmask import Decoder, Encoder, Mask
from dynmask.models.series import SERIES_ARCHS, SeriesClassifier, SeriesConfig, SeriesImputer
from dynmask.rnn import GRUD, MaskedGRU, MaskedLSTM

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

D, H, FF = 16, 2, 32
CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def _deterministic():
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(False)


def _on_cuda(batch):
    x, mask = batch
    return x.to(CUDA), mask.to(CUDA)


@settings(max_examples=15, deadline=None)
@given(
    batch=masked_batches(d_model=D, max_len=24),
    causal=st.booleans(),
    backend=st.sampled_from(["dense", "compact", "auto"]),
    queries=st.sampled_from(["observed", "all"]),
)
def test_cuda_guarantee_encoder(batch, causal, backend, queries):
    x, mask = _on_cuda(batch)
    torch.manual_seed(3)
    enc = Encoder(D, H, 2, d_ff=FF, dropout=0.1, queries=queries, positional="sinusoidal").to(CUDA).train()
    rows = mask.observed if queries == "observed" else mask.valid

    def run(xi):
        torch.manual_seed(0)  # same dropout draws in both runs
        return enc(xi, mask, causal=causal, backend=backend)

    out = check_guarantee(run, list(enc.parameters()), x, mask, check_rows=rows, empty_is_zero=queries == "observed")
    assert out.device.type == "cuda"


@settings(max_examples=10, deadline=None)
@given(batch=masked_batches(d_model=D, max_len=24), backend=st.sampled_from(["dense", "compact"]))
def test_cuda_guarantee_encoder_bf16_autocast(batch, backend):
    x, mask = _on_cuda(batch)
    torch.manual_seed(3)
    enc = Encoder(D, H, 2, d_ff=FF, dropout=0.0).to(CUDA)

    def run(xi):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return enc(xi, mask, backend=backend).float()

    check_guarantee(run, list(enc.parameters()), x, mask)


@settings(max_examples=10, deadline=None)
@given(batch=masked_batches(d_model=D, max_len=16), backend=st.sampled_from(["dense", "compact"]))
def test_cuda_guarantee_decoder_memory(batch, backend):
    memory, memory_mask = _on_cuda(batch)
    torch.manual_seed(4)
    dec = Decoder(D, H, 2, d_ff=FF, dropout=0.0).to(CUDA).eval()
    tgt = torch.randn(memory.shape[0], 5, D, device=CUDA)
    tgt_mask = Mask.full(memory.shape[0], 5).to(CUDA)
    check_guarantee(
        lambda m: dec(tgt, m, tgt_mask, memory_mask, backend=backend),
        list(dec.parameters()),
        memory,
        memory_mask,
        check_rows=torch.ones_like(memory_mask.observed),
        empty_is_zero=False,
    )


@settings(max_examples=10, deadline=None)
@given(batch=masked_batches(d_model=D, max_len=16), cell=st.sampled_from(["lstm", "gru"]))
def test_cuda_guarantee_masked_rnn(batch, cell):
    x, mask = _on_cuda(batch)
    torch.manual_seed(0)
    model = (MaskedLSTM if cell == "lstm" else MaskedGRU)(D, 8, num_layers=2, bidirectional=True).to(CUDA)
    check_guarantee(lambda xi: model(xi, mask)[0], list(model.parameters()), x, mask)


@settings(max_examples=8, deadline=None)
@given(batch=masked_batches(d_model=3, max_len=12))
def test_cuda_guarantee_grud(batch):
    x, mask = _on_cuda(batch)
    torch.manual_seed(0)
    model = GRUD(3, 5, x_mean=torch.tensor([0.1, -0.2, 0.3])).to(CUDA)
    per_value = Mask(mask.observed, mask.valid, mask.observed.unsqueeze(-1).expand(*mask.shape, 3).clone())
    check_guarantee(
        lambda xi: model(xi, per_value)[0],
        list(model.parameters()),
        x,
        per_value,
        check_rows=mask.valid,
        empty_is_zero=False,
    )


@pytest.mark.parametrize("arch", SERIES_ARCHS)
def test_cuda_series_models_ignore_missing_values(arch):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 12, 5, generator=g)
    x[torch.rand(x.shape, generator=g) < 0.4] = float("nan")
    x[1, 8:] = float("nan")
    x = x.to(CUDA)
    mask = Mask.from_nan(x)
    torch.manual_seed(0)
    imputer = SeriesImputer(SeriesConfig(5, arch=arch, d_model=16, n_heads=2, n_layers=1, d_ff=32)).to(CUDA).eval()
    classifier = (
        SeriesClassifier(SeriesConfig(5, 3, arch=arch, d_model=16, n_heads=2, n_layers=1, d_ff=32)).to(CUDA).eval()
    )
    missing = torch.isnan(x)
    for fill in (0.0, 1e30, float("inf")):
        other = torch.where(missing, torch.full_like(x, fill), x)
        assert torch.equal(imputer(x, mask), imputer(other, mask))
        assert torch.equal(classifier(x, mask), classifier(other, mask))
        filled = imputer.impute(other, mask)
        assert torch.isfinite(filled).all()
        assert torch.equal(filled[~missing], x[~missing])  # observed values never overwritten


@pytest.mark.parametrize("queries", ["observed", "all"])
def test_cuda_dense_compact_and_cpu_agree(queries):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 40, D, generator=g)
    valid = torch.arange(40).unsqueeze(0) < torch.tensor([[40], [33], [20], [40]])
    mask = Mask((torch.rand(4, 40, generator=g) > 0.5) & valid, valid)
    torch.manual_seed(1)
    enc = Encoder(D, H, 2, d_ff=FF, dropout=0.0, queries=queries)
    expected = enc(x, mask, backend="dense")
    enc.to(CUDA)
    rows = (mask.observed if queries == "observed" else mask.valid).to(CUDA).unsqueeze(-1)
    for backend in ("dense", "compact"):
        got = enc(x.to(CUDA), mask.to(CUDA), backend=backend)
        torch.testing.assert_close(
            torch.where(rows, got, 0.0).cpu(), torch.where(rows.cpu(), expected, 0.0), atol=1e-4, rtol=1e-4
        )


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_cuda_masked_rnn_under_bf16_autocast(cell):
    # cuDNN RNNs run in half precision under autocast; compaction's scatter must take it as it is
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 10, D, generator=g).to(CUDA)
    mask = Mask(torch.rand(3, 10, generator=g) > 0.4, torch.ones(3, 10, dtype=torch.bool)).to(CUDA)
    torch.manual_seed(0)
    model = (MaskedLSTM if cell == "lstm" else MaskedGRU)(D, 8, bidirectional=True).to(CUDA)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(x, mask)[0]
    assert out.dtype in (torch.float16, torch.bfloat16) and torch.isfinite(out.float()).all()
    assert torch.equal(out[~mask.observed], torch.zeros_like(out[~mask.observed]))
    with torch.no_grad():
        full = model(x, mask)[0]
    torch.testing.assert_close(out.float(), full, atol=3e-2, rtol=3e-2)


def test_cuda_torchrun_with_more_processes_than_gpus_is_a_clear_error(tmp_path):
    import subprocess
    import sys

    from textdata import write_sentiment_csv

    data = write_sentiment_csv(tmp_path / "d.csv", n=40)
    n = torch.cuda.device_count() + 1
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={n}",
        "-m",
        "dynmask.cli",
        "train",
        "classify",
        "--data",
        str(data),
        "--output",
        str(tmp_path / "run"),
        "--epochs",
        "1",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert f"torchrun started {n} processes on this node but it has" in done.stderr


def test_cuda_recurrent_model_checkpoint_round_trip(tmp_path):
    # on a GPU cuDNN keeps an RNN's weights in one flat buffer; the trainer must still save them
    from safetensors.torch import save_model

    from dynmask.models.classifier import ClassifierConfig, TextClassifier
    from dynmask.training import load_weights, savable

    torch.manual_seed(0)
    model = TextClassifier(ClassifierConfig(50, 2, arch="lstm", d_model=16, n_layers=2)).to(CUDA)
    save_model(savable(model), str(tmp_path / "m.safetensors"))
    torch.manual_seed(1)
    other = TextClassifier(ClassifierConfig(50, 2, arch="lstm", d_model=16, n_layers=2)).to(CUDA)
    load_weights(other, tmp_path / "m.safetensors", CUDA)
    for (name, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        assert torch.equal(a, b), name
