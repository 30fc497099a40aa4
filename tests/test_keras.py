"""dynmask.keras: the guarantee for the Keras 3 layers, PyTorch <-> Keras weight parity, Keras' mask
propagation, and a small Keras model trained on gappy text.

The backend is ``KERAS_BACKEND`` (torch unless set). ``pytest -m tensorflow`` re-runs this module on
the TensorFlow backend in a fresh process (it needs ``tensorflow-cpu``; skipped without it)."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

keras = pytest.importorskip("keras")
import torch  # noqa: E402
from keras import ops  # noqa: E402

import dynmask as dm  # noqa: E402
from dynmask.keras import (  # noqa: E402
    MaskedEncoder,
    MaskedGlobalAveragePooling1D,
    MaskedGlobalMaxPooling1D,
    MaskedMultiHeadAttention,
    from_torch,
    mask_from_lengths,
    mask_from_nan,
    mask_from_tokens,
    masked_mae,
    masked_mse,
    masked_sparse_categorical_crossentropy,
    to_torch,
)

BACKEND = keras.backend.backend()
HOSTILE = [0.0, 1e30, -1e30, float("nan"), float("inf"), float("-inf")]


def test_the_backend_is_the_requested_one():
    assert BACKEND == os.environ["KERAS_BACKEND"]


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def _value_and_input_grad(layer, x, mask):
    """(outputs, d(sum of observed outputs)/dx, parameter gradients) on any backend."""
    observed = mask
    if BACKEND == "torch":
        xt = torch.tensor(x, requires_grad=True)
        out = layer(xt, mask=torch.tensor(observed), training=False)
        loss = torch.where(torch.tensor(observed)[..., None], out, torch.zeros_like(out)).sum()
        params = [v.value for v in layer.trainable_variables]
        grads = torch.autograd.grad(loss, [xt, *params], allow_unused=True)
        return out.detach().numpy(), grads[0].numpy(), [None if g is None else g.numpy() for g in grads[1:]]
    if BACKEND == "tensorflow":
        import tensorflow as tf

        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            out = layer(xt, mask=tf.constant(observed), training=False)
            loss = tf.reduce_sum(tf.where(tf.constant(observed)[..., None], out, tf.zeros_like(out)))
        grads = tape.gradient(loss, [xt, *layer.trainable_variables])
        return out.numpy(), grads[0].numpy(), [None if g is None else g.numpy() for g in grads[1:]]
    pytest.skip(f"gradients are checked on torch and tensorflow, not {BACKEND}")


@st.composite
def batches(draw, d=8):
    batch, length = draw(st.integers(1, 3)), draw(st.integers(1, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    x = rng.standard_normal((batch, length, d)).astype("float32")
    observed = rng.random((batch, length)) >= draw(st.sampled_from([0.0, 0.3, 0.7, 1.0]))
    if draw(st.booleans()) and batch > 1:
        observed[-1] = False  # an empty sample
    return x, observed


def _check(layer, x, observed):
    base_out, _, base_grads = _value_and_input_grad(layer, x, observed)
    for fill in HOSTILE:
        poisoned = np.where(observed[..., None], x, np.float32(fill)).astype("float32")
        out, grad_x, grads = _value_and_input_grad(layer, poisoned, observed)
        assert np.array_equal(out[observed], base_out[observed]), fill  # bitwise
        assert not np.isnan(out).any() and np.isfinite(out).all()
        assert np.array_equal(out[~observed], np.zeros_like(out[~observed]))  # missing and empty rows: zeros
        assert np.array_equal(grad_x[~observed], np.zeros_like(grad_x[~observed]))
        for a, b in zip(grads, base_grads):
            assert (a is None and b is None) or np.array_equal(a, b)


@settings(max_examples=25, deadline=None)
@given(batches())
def test_guarantee_attention(batch):
    x, observed = batch
    keras.utils.set_random_seed(0)
    layer = MaskedMultiHeadAttention(8, 2)
    _check(layer, x, observed)


@settings(max_examples=20, deadline=None)
@given(batches(), st.booleans())
def test_guarantee_encoder(batch, norm_first):
    x, observed = batch
    keras.utils.set_random_seed(0)
    layer = MaskedEncoder(8, 2, 2, d_ff=12, dropout=0.0, norm_first=norm_first, positional="sinusoidal", max_len=16)
    _check(layer, x, observed)


def test_from_torch_parity_and_back():
    torch.manual_seed(0)
    for kw in (
        dict(positional="sinusoidal"),
        dict(positional="learned", norm_first=False, activation="gelu"),
        dict(positional=None),
    ):
        enc = dm.Encoder(16, 4, 2, d_ff=24, max_len=32, **kw).eval()
        x = torch.randn(4, 9, 16)
        observed = torch.rand(4, 9) > 0.4
        observed[3] = False
        mask = dm.Mask(observed, torch.ones(4, 9, dtype=torch.bool))
        poisoned = torch.where(observed[..., None], x, torch.full_like(x, float("nan")))
        with torch.no_grad():
            reference = enc(poisoned, mask, backend="dense").numpy()
        layer = from_torch(enc)
        out = _np(layer(ops.convert_to_tensor(poisoned.numpy()), mask=ops.convert_to_tensor(observed.numpy())))
        assert np.abs(out - reference).max() <= 1e-5 and not np.isnan(out).any()
        back = to_torch(layer).eval()
        with torch.no_grad():
            assert (back(poisoned, mask) - torch.from_numpy(reference)).abs().max() <= 1e-5
    with pytest.raises(ValueError, match="queries='observed'"):
        from_torch(dm.Encoder(16, 4, 1, queries="all"))


def test_masks_from_data():
    x = np.array([[[1.0, np.nan], [np.nan, np.nan], [np.inf, 2.0]]], dtype="float32")
    observed, per_value = mask_from_nan(ops.convert_to_tensor(x))
    assert _np(observed).tolist() == [[True, False, True]]
    assert _np(per_value).tolist() == [[[True, False], [False, False], [False, True]]]
    observed, valid = mask_from_tokens(ops.convert_to_tensor(np.array([[5, 1, 7, 0]])), missing_ids=[1], pad_id=0)
    assert _np(observed).tolist() == [[True, False, True, False]] and _np(valid).tolist() == [[True, True, True, False]]
    assert _np(mask_from_lengths(ops.convert_to_tensor(np.array([2, 0])), 3)).tolist() == [
        [True, True, False],
        [False, False, False],
    ]


def test_pooling_and_losses_ignore_missing_values():
    x = np.array([[[1.0], [np.nan], [3.0]], [[np.inf], [np.nan], [-1e30]]], dtype="float32")
    mask = np.array([[True, False, True], [False, False, False]])
    mean = _np(MaskedGlobalAveragePooling1D()(ops.convert_to_tensor(x), mask=ops.convert_to_tensor(mask)))
    peak = _np(MaskedGlobalMaxPooling1D()(ops.convert_to_tensor(x), mask=ops.convert_to_tensor(mask)))
    assert mean.tolist() == [[2.0], [0.0]] and peak.tolist() == [[3.0], [0.0]]
    truth = np.array([[1.0, np.nan, 2.0]], dtype="float32")
    pred = np.array([[2.0, 5.0, 2.0]], dtype="float32")
    keep = np.array([[True, False, True]])
    t, p, k = (ops.convert_to_tensor(a) for a in (truth, pred, keep))
    assert float(_np(masked_mse(t, p, k))) == 0.5 and float(_np(masked_mae(t, p, k))) == 0.5
    logits = ops.convert_to_tensor(np.array([[[0.0, 0.0], [np.nan, 1.0]]], dtype="float32"))
    loss = masked_sparse_categorical_crossentropy(
        ops.convert_to_tensor(np.array([[1, 7]])), logits, ops.convert_to_tensor(np.array([[True, False]]))
    )
    assert abs(float(_np(loss)) - np.log(2)) < 1e-6


def test_keras_mask_propagation_and_the_leaks_it_fixes():
    """Embedding(mask_zero=True) -> attention -> pooling: Keras' own layers give NaN for an empty row;
    dynmask's give zeros, and NaN at a masked key leaks into nothing."""
    ids = np.array([[3, 4, 5, 0], [0, 0, 0, 0]])
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,), dtype="int32")
    h = keras.layers.Embedding(10, 8, mask_zero=True)(inputs)
    h = MaskedEncoder(8, 2, 1, d_ff=16, dropout=0.0)(h)  # gets the Embedding's mask
    out = MaskedGlobalAveragePooling1D()(h)
    model = keras.Model(inputs, out)
    pooled = _np(model(ops.convert_to_tensor(ids)))
    assert np.isfinite(pooled).all() and np.array_equal(pooled[1], np.zeros(8))
    # Keras' MultiHeadAttention: NaN at a masked key poisons every output
    x = np.random.default_rng(0).standard_normal((1, 4, 8)).astype("float32")
    x[0, 2] = np.nan
    keep = np.array([[True, True, False, True]])
    theirs = keras.layers.MultiHeadAttention(2, 4)
    leaked = _np(theirs(x, x, attention_mask=keep[:, None, :]))
    assert np.isnan(leaked[0, keep[0]]).all()
    ours = _np(MaskedMultiHeadAttention(8, 2)(ops.convert_to_tensor(x), key_mask=ops.convert_to_tensor(keep)))
    assert np.isfinite(ours).all()


def test_a_keras_model_learns_gappy_text():
    """The README's example: classify token sequences with holes (id 1) and padding (id 0)."""
    rng = np.random.default_rng(0)
    n, length = 256, 12
    labels = rng.integers(0, 2, n)
    ids = rng.integers(4, 30, (n, length))
    ids[np.arange(n), rng.integers(0, length, n)] = 2 + labels  # the cue word: 2 or 3
    ids[rng.random((n, length)) < 0.2] = 1  # missing words (the cue is sometimes hidden)
    ids[:, 10:] = 0  # padding
    keras.utils.set_random_seed(0)
    inputs = keras.Input((length,), dtype="int32")
    observed, _ = mask_from_tokens(inputs, missing_ids=[1], pad_id=0)
    h = keras.layers.Embedding(30, 16)(inputs)
    h = MaskedEncoder(16, 2, 1, d_ff=32, positional="sinusoidal", max_len=64)(h, mask=observed)
    outputs = keras.layers.Dense(2)(MaskedGlobalAveragePooling1D()(h, mask=observed))
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(ids, labels, epochs=15, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.75


@pytest.mark.tensorflow
def test_the_same_tests_on_the_tensorflow_backend():
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("tensorflow is not installed: pip install tensorflow-cpu")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not tensorflow", str(Path(__file__))],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert re.search(r"\b8 passed\b", summary) and " failed" not in summary, summary


def test_float_masks_and_float_ids_are_refused():
    """A float mask was cast to bool (0.3 -> observed) and float ids accepted (issue 35, low)."""
    x = ops.convert_to_tensor(np.zeros((1, 3, 8), "float32"))
    layer = MaskedMultiHeadAttention(8, 2)
    with pytest.raises(TypeError, match="mask must be bool"):
        layer(x, mask=ops.convert_to_tensor(np.array([[1.0, 0.3, 0.0]], "float32")))
    assert layer(x, mask=ops.convert_to_tensor(np.array([[1, 1, 0]], "int32"))).shape == (1, 3, 8)
    with pytest.raises(TypeError, match="ids must be integer"):
        mask_from_tokens(ops.convert_to_tensor(np.array([[5.0, 1.0]], "float32")), missing_ids=[1])


@pytest.mark.skipif(BACKEND != "torch", reason="reads the gradient with torch.autograd")
def test_an_encoder_layer_on_its_own_gives_zero_gradient_to_nan_inputs():
    """MaskedEncoderLayer used without MaskedEncoder let NaN at missing rows reach its norms: the outputs
    were right but the gradient into those rows was NaN (found by benchmarks/nan_conformance.py)."""
    from dynmask.keras import MaskedEncoderLayer

    layer = MaskedEncoderLayer(8, 2, 16, dropout=0.0)
    x = torch.randn(2, 5, 8)
    observed = torch.tensor([[True, False, True, True, False], [False] * 5])
    x = torch.where(observed[..., None], x, torch.tensor(float("nan"))).requires_grad_(True)
    out = layer(x, mask=observed)
    (grad,) = torch.autograd.grad(torch.where(observed[..., None], out, 0.0).sum(), [x])
    assert torch.isfinite(out).all() and (grad[~observed] == 0).all() and torch.isfinite(grad).all()
