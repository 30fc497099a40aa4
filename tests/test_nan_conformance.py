"""The NaN-conformance suite (benchmarks/nan_conformance.py): the masked-attention failures users reported
against PyTorch and Hugging Face, replayed on dynmask. dynmask must pass every case in every dtype; the
suite must still see the failures it was built from (else it checks nothing)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import nan_conformance as nc  # noqa: E402


def _impl(name):
    return next(i for i in nc.implementations(quick=False) if i.name == name)


@pytest.mark.parametrize("name", ["dynmask Encoder (dense)", "dynmask Encoder (compact)"])
@pytest.mark.parametrize("case", list(nc.CASES))
@pytest.mark.parametrize("dtype", list(nc.DTYPES))
def test_dynmask_passes_every_reported_case(name, case, dtype):
    result = nc.check(_impl(name), case, dtype)
    assert result is not None and not result["failed"], result


def test_keras_layer_passes_every_case():
    pytest.importorskip("keras")
    impl = _impl("dynmask Keras MaskedEncoderLayer (torch backend)")
    for case in nc.CASES:
        result = nc.check(impl, case, "fp32")
        assert result is None or not result["failed"], (case, result)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dynmask Encoder (torch.compile)", "dynmask Encoder (ONNX, onnxruntime)"])
def test_compiled_and_exported_dynmask_pass_every_case(name):
    pytest.importorskip("onnxruntime")
    impl = _impl(name)
    for case in nc.CASES:
        result = nc.check(impl, case, "fp32")
        assert result is not None and not result["failed"], (case, result)


def test_the_suite_sees_the_reported_failures():
    """The reports reproduce on the reference implementations, so a pass means something."""
    nan_input = nc.check(_impl("torch sdpa (bool mask)"), "nan_at_masked", "fp32")
    assert nan_input["failed"] and not nan_input["finite"]  # pytorch#101967
    additive = nc.check(_impl("torch sdpa (additive finfo.min mask)"), "fully_masked_row", "fp32")
    assert additive["failed"] and not additive["invariant"]  # pytorch#109517: averages the masked values
    weights = nc.check(_impl("torch nn.MultiheadAttention need_weights=True"), "fully_masked_row", "fp32")
    assert weights["failed"] and not weights["finite"]  # pytorch#160064 / #103749
