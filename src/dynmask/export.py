"""Export trained runs to ONNX with the mask built *inside* the graph, and run them with onnxruntime.

* Text classifier: input ``ids`` int64[B, L] (the tokenizer runs outside); the mask comes from the
  ids in the graph (missing / unknown ids missing, pad padding). Output: logits float[B, C].
* Series imputer: input ``values`` float[B, L, F] in standard units with NaN at holes; the mask comes
  from NaN in the graph. Output: the values with only the holes filled.
* Series classifier: input ``values`` float[B, L, F] in standard units with NaN; output logits.

Batch and length are dynamic (length >= 2). ``backend="dense"`` or ``"compact"``: compact exports its
width as a symbolic size, so one file serves every batch, whatever is missing. The tokenizer, labels
and scaler go beside the file in ``<output>.assets/`` (the graph never needs them).

Needs ``onnx``, ``onnxscript`` and ``onnxruntime`` (``pip install dynmask[onnx]``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from .data.confidence import pad_confidences
from .data.tokenizer import TextTokenizer
from .errors import DataError
from .files import read_json_object
from .hf import PretrainedTokenizer
from .masks import Mask
from .onnx_fusion import fused_attention_export, translations
from .tasks.registry import TASKS, task_of

__all__ = [
    "export_run",
    "export_graph",
    "session_options",
    "OnnxSession",
    "OnnxTextClassifier",
    "OnnxSeriesModel",
    "load_onnx",
    "is_onnx",
]

ASSETS_SUFFIX = ".assets"


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter's own chatter (torchvision ops it skips, deprecation warnings of its dependencies)
    silenced while it runs: a successful export prints one line; its errors still raise."""
    names = ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def export_run(
    run: Path,
    output: Path,
    backend: str = "dense",
    opset: Optional[int] = None,
    confidences: bool = False,
    quantize: Optional[str] = None,
) -> Path:
    """Export a training run (its ``best/`` model) to ``output`` (.onnx) plus ``output.assets/``;
    ``confidences``: a text classifier's graph takes a confidence per token as a second input;
    ``quantize="int8"``: the weights of the matrix products stored as int8 (onnxruntime's dynamic
    quantization: activations quantized at run time), in the graph file itself."""
    from torch.export import Dim

    if backend not in ("dense", "compact"):
        raise ValueError(f"backend must be 'dense' or 'compact', got {backend!r}")
    run, output = Path(run), Path(output)
    if output.suffix != ".onnx":
        raise DataError(f"--output {output} should end in .onnx")
    spec = task_of(run)
    if spec.export is None:
        exportable = ", ".join(name for name, t in TASKS.items() if t.export is not None)
        raise DataError(f"export covers {exportable} runs; {run} is a {spec.name!r} run")
    if confidences and spec.name != "classify":
        raise DataError(f"--confidence-input is for text classifiers; {run} is a {spec.name!r} run")
    if quantize not in (None, "int8"):
        raise DataError(f"--quantize must be int8, got {quantize!r}")
    graph, example, meta, copy_files = spec.export(run, backend, **({"confidences": True} if confidences else {}))
    inputs = example if isinstance(example, tuple) else (example,)
    assets = output.with_name(output.name + ASSETS_SUFFIX)
    output.parent.mkdir(parents=True, exist_ok=True)
    dims = {0: Dim("batch"), 1: Dim("length", min=2, max=65_536)}
    kwargs = {} if opset is None else {"opset_version": opset}
    export_graph(graph, inputs, output, (dims,) * len(inputs), ["input", "confidence"][: len(inputs)], **kwargs)
    if quantize == "int8":
        quantize_int8(output)
    shutil.rmtree(assets, ignore_errors=True)
    assets.mkdir(parents=True)
    for path in copy_files:
        shutil.copy(path, assets / path.name)
    (assets / "export.json").write_text(
        json.dumps({**meta, "backend": backend, "source_run": str(run.resolve())}, indent=2)
    )
    return output


def export_graph(
    graph: torch.nn.Module, inputs: tuple, output: Path, dynamic_shapes, input_names=None, **kwargs
) -> None:
    """``torch.onnx.export`` (dynamo) of ``graph`` with its self-attention layers written as onnxruntime's fused
    ``MultiHeadAttention`` (:mod:`dynmask.onnx_fusion`); ``kwargs`` go to the exporter (``opset_version``)."""
    with torch.no_grad(), _quiet_exporter(), fused_attention_export():
        program = torch.onnx.export(
            graph,
            inputs,
            str(output),
            dynamo=True,
            dynamic_shapes=dynamic_shapes,
            input_names=input_names,
            output_names=["output"],
            custom_translation_table=translations(),
            verbose=False,
            **kwargs,
        )
    del program


def session_options(threads: Optional[int] = None, spinning: bool = True):
    """onnxruntime session options for dynmask graphs: denormals flushed to zero. A masked key's
    softmax weight underflows to 0, and onnxruntime's exponential runs ~15x slower on results in the
    denormal range than on normal ones (measured: a softmax over [16, 4, 256, 256] with half the keys
    masked, 9.4 ms vs 0.6 ms); flushing changes no result above 1e-38. onnxruntime sets flush-to-zero on
    the thread that *creates* the session, for good, and runs are fast only on that thread: use
    :class:`OnnxSession`, which keeps both on a thread of its own, away from the caller's arithmetic.

    ``spinning=False``: worker threads sleep between calls instead of spinning, for a process that has
    other work for the cores between calls (a server's event loop: 283 -> 401 requests/s at 16 clients
    on 2 cores); spinning makes back-to-back calls faster (the export benchmark's 2-layer classifier at 50%
    missing: 12.7 against 14.8 ms dense, 6.7 against 8.5 ms compact)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    return options


class OnnxSession:
    """An onnxruntime session created and run on a thread of its own (see :func:`session_options`): the
    caller's thread keeps its floating-point state (subnormal numbers), the session's runs get the flushed
    thread they need. ``run(feed)`` returns the outputs; ``session`` is the InferenceSession itself."""

    def __init__(self, model, threads: Optional[int] = None, spinning: bool = True) -> None:
        from concurrent.futures import ThreadPoolExecutor

        import onnxruntime as ort

        self._thread = ThreadPoolExecutor(1, thread_name_prefix="dynmask-onnxruntime")
        model = str(model) if isinstance(model, Path) else model  # a path, or the serialized graph
        options = session_options(threads, spinning)
        self.session = self._thread.submit(
            ort.InferenceSession, model, options, providers=["CPUExecutionProvider"]
        ).result()

    def run(self, feed: dict) -> list:
        return self._thread.submit(self.session.run, None, feed).result()

    def get_inputs(self):
        return self.session.get_inputs()

    def get_outputs(self):
        return self.session.get_outputs()


def quantize_int8(path: Path) -> None:
    """Replace the graph ``path`` (and its ``.data`` weights file) by its dynamically quantized form: the
    MatMul / Gemm weights as int8, one file (onnxruntime.quantization)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = Path(path)
    tmp = path.with_name(path.stem + ".int8.tmp.onnx")
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))  # quantize_dynamic logs pre-processing advice to the root logger
    try:
        quantize_dynamic(str(path), str(tmp), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    Path(str(path) + ".data").unlink(missing_ok=True)
    os.replace(tmp, path)


def is_onnx(path) -> bool:
    return str(path).endswith(".onnx")


class _Session:
    def __init__(self, path: Path, threads: Optional[int] = None, spinning: bool = True) -> None:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise DataError("running an .onnx model needs onnxruntime: pip install dynmask[onnx]") from None
        if not Path(path).is_file():
            raise DataError(f"--model {path} does not exist")
        self.onnx = OnnxSession(Path(path), threads, spinning)
        self.name = self.session.get_inputs()[0].name
        assets = Path(str(path) + ASSETS_SUFFIX)
        if not (assets / "export.json").is_file():
            raise DataError(f"{assets / 'export.json'} is missing: export with `dynmask export` to get the assets")
        self.assets, self.meta = assets, read_json_object(assets / "export.json")

    @property
    def session(self):
        """The onnxruntime InferenceSession (created, and run by :meth:`run`, on its own thread)."""
        return self.onnx.session

    def run(self, x: np.ndarray, confidence: Optional[np.ndarray] = None) -> np.ndarray:
        feed = {self.name: x}
        if confidence is not None:
            feed["confidence"] = confidence
        return self.onnx.run(feed)[0]


class OnnxTextClassifier(_Session):
    """An exported text classifier: ``predict(texts)`` gives the rows ``dynmask predict`` prints."""

    def __init__(self, path: Path, threads: Optional[int] = None, spinning: bool = True) -> None:
        super().__init__(path, threads, spinning)
        if self.meta["tokenizer"] == "pretrained":
            self.tokenizer = PretrainedTokenizer.load(self.assets)
        else:
            self.tokenizer = TextTokenizer.load(self.assets)
        from .tasks.common import stored_lexicon

        self.lexicon = stored_lexicon(path)  # the run's, when it reads confidences capped by its lexicon
        self.labels = self.meta["labels"]
        if not isinstance(self.labels, list) or len(set(map(str, self.labels))) != len(self.labels):
            raise DataError(f"{self.assets / 'export.json'}: labels must be a list of distinct names")
        outputs = self.session.get_outputs()[0].shape[-1]
        if isinstance(outputs, int) and outputs != len(self.labels):
            raise DataError(
                f"{self.assets / 'export.json'} names {len(self.labels)} labels but the graph gives {outputs} logits"
            )

    def logits(self, ids: Tensor, confidence: Optional[Tensor] = None) -> np.ndarray:
        if ids.shape[1] < 2:  # the graph takes lengths >= 2: one more padding position changes nothing
            pad = 2 - ids.shape[1]
            ids = torch.cat([ids, torch.full((ids.shape[0], pad), self.tokenizer.pad_id)], 1)
            confidence = None if confidence is None else torch.cat([confidence, torch.ones(ids.shape[0], pad)], 1)
        if self.meta.get("confidence_input"):
            confidence = torch.ones(ids.shape) if confidence is None else confidence
            return self.run(ids.numpy(), confidence.float().numpy())
        if confidence is not None:
            raise DataError("this exported model takes no confidences: export it with --confidence-input")
        return self.run(ids.numpy())

    def predict(
        self,
        texts: Sequence[str],
        confidences: Optional[Sequence[Sequence[float]]] = None,
        threshold: float = 0.0,
        soft: bool = False,
    ) -> list[dict]:
        """Rows as ``dynmask predict`` prints them. ``confidences`` (one per word of each text, a graph
        exported with ``--confidence-input``): pieces of words below ``threshold`` are missing; the
        others are read as usual, or with ``soft`` their confidence is a log-prior on attention. A run that
        reads confidences with its lexicon (its assets' ``lexicon.txt``): a word it lacks counts as 0."""
        confidence = None
        if confidences is None:
            ids = self.tokenizer.pad(self.tokenizer.encode(texts))
        else:
            if self.lexicon is not None:
                confidences = [self.lexicon.cap(t, c) for t, c in zip(texts, confidences, strict=True)]
            encoded, piece_conf = self.tokenizer.encode_with_confidences(texts, confidences)
            ids = self.tokenizer.pad(encoded)
            c = pad_confidences(piece_conf, ids.shape[1]).nan_to_num(0.0)  # padding: 1
            confidence = torch.where(c >= threshold, c if soft else torch.ones_like(c), 0.0)
        observed = self.tokenizer.observed_text_tokens(ids)
        if confidence is not None:
            observed = (self.tokenizer.mask(ids).observed & (confidence > 0)).sum(1)
        logits = torch.from_numpy(self.logits(ids, confidence))
        probs = torch.softmax(logits.float(), -1)
        if not bool(torch.isfinite(probs).all()):
            raise FloatingPointError("the exported model gave non-finite probabilities")
        rows = []
        for text, p, n in zip(texts, probs, observed.tolist()):
            if n == 0:
                rows.append(
                    {
                        "text": text,
                        "label": None,
                        "observed_tokens": 0,
                        "error": "no observed token: the text is empty or holds only missing markers",
                    }
                )
            else:
                rows.append(
                    {
                        "text": text,
                        "label": self.labels[int(p.argmax())],
                        "observed_tokens": n,
                        "probabilities": {k: round(float(v), 6) for k, v in zip(self.labels, p)},
                    }
                )
        return rows


class OnnxSeriesModel(_Session):
    """An exported series imputer (``impute(x, mask)``, as :class:`SeriesImputer`) or classifier."""

    def impute(self, x: Tensor, mask: Optional[Mask] = None) -> Tensor:
        return torch.from_numpy(self.run(x.detach().cpu().float().numpy()))

    def __call__(self, x: Tensor, mask: Optional[Mask] = None) -> Tensor:
        return self.impute(x, mask)


def load_onnx(path, threads: Optional[int] = None, spinning: bool = True):
    """The right runner for an exported file, by its assets' task (``spinning``: :func:`session_options`)."""
    meta_path = Path(str(path) + ASSETS_SUFFIX) / "export.json"
    if not meta_path.is_file():
        raise DataError(f"{meta_path} is missing: export with `dynmask export` to get the assets")
    task = read_json_object(meta_path).get("task")
    kind = OnnxTextClassifier if task == "classify" else OnnxSeriesModel
    return kind(path, threads, spinning)


def load_onnx_imputer(path: Path, spinning: bool = True):
    """A :class:`TrainedImputer` whose model is an exported imputer run by onnxruntime."""
    return onnx_imputer(load_onnx(path, spinning=spinning), path)


def onnx_imputer(runner, path: Path):
    """:func:`load_onnx_imputer` of a runner already loaded from ``path`` (by :func:`load_onnx`)."""
    from .tasks.impute.trained import imputer_from_assets

    if runner.meta["task"] != "impute":
        raise DataError(f"--model {path} is an exported {runner.meta['task']!r} model, not an imputer")
    return imputer_from_assets(runner, runner.assets)


def load_onnx_forecaster(path: Path, spinning: bool = True):
    """A :class:`TrainedForecaster` whose model is an exported forecaster run by onnxruntime."""
    return onnx_forecaster(load_onnx(path, spinning=spinning), path)


def onnx_forecaster(runner, path: Path):
    """:func:`load_onnx_forecaster` of a runner already loaded from ``path`` (by :func:`load_onnx`)."""
    from .tasks.forecast.trained import forecaster_from_assets

    if runner.meta["task"] != "forecast":
        raise DataError(f"--model {path} is an exported {runner.meta['task']!r} model, not a forecaster")
    return forecaster_from_assets(_OnnxModel(runner), runner.assets, len(runner.meta["column_names"]), 1 << 30)


class _OnnxModel:
    """An exported forecaster's graph called as the model is: ``model(x, mask)`` fills the NaN of ``x``
    (the graph rebuilds the mask from the NaN)."""

    interval_head = None

    def __init__(self, runner) -> None:
        self.runner = runner

    def __call__(self, x, mask):
        return self.runner(x, mask)
