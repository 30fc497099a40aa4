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

import copy
import json
import shutil
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .errors import DataError
from .masks import Mask
from .methods import get_method

__all__ = [
    "TextClassifierGraph",
    "SeriesGraph",
    "export_run",
    "OnnxTextClassifier",
    "OnnxSeriesModel",
    "load_onnx",
    "is_onnx",
]

ASSETS_SUFFIX = ".assets"


def _with_backend(model: nn.Module, backend: str) -> nn.Module:
    """A copy of ``model`` whose Transformer stacks run ``backend``."""
    from .layers import _Stack

    model = copy.deepcopy(model).eval()
    for module in model.modules():
        if isinstance(module, _Stack):
            module.backend = backend
    return model


class TextClassifierGraph(nn.Module):
    """ids int64[B, L] -> logits float[B, C], the mask built from the ids (True = observed)."""

    def __init__(self, model: nn.Module, missing_ids: Sequence[int], pad_id: int) -> None:
        super().__init__()
        self.model, self.missing_ids, self.pad_id = model, [int(i) for i in missing_ids], int(pad_id)

    def forward(self, ids: Tensor) -> Tensor:
        return self.model(ids, Mask.from_tokens(ids, missing=self.missing_ids, pad=self.pad_id))


class SeriesGraph(nn.Module):
    """values float[B, L, F] (NaN = missing) -> the imputer's filled values or the classifier's logits."""

    def __init__(self, model: nn.Module, impute: bool) -> None:
        super().__init__()
        self.model, self.impute = model, impute

    def forward(self, values: Tensor) -> Tensor:
        mask = Mask.from_nan(values)
        return self.model.impute(values, mask) if self.impute else self.model(values, mask)


def _check_series_arch(model) -> None:
    if model.config.arch != "transformer":
        raise DataError(
            f"export covers Transformer series models; this run's arch is {model.config.arch!r} "
            "(recurrent models pack sequences on the CPU, which does not trace)"
        )


def export_run(run: Path, output: Path, backend: str = "dense", opset: Optional[int] = None) -> Path:
    """Export a training run (its ``best/`` model) to ``output`` (.onnx) plus ``output.assets/``."""
    from torch.export import Dim

    from .training import load_run_model  # noqa: F401  (the loaders below validate the folder)

    if backend not in ("dense", "compact"):
        raise ValueError(f"backend must be 'dense' or 'compact', got {backend!r}")
    run, output = Path(run), Path(output)
    if output.suffix != ".onnx":
        raise DataError(f"--output {output} should end in .onnx")
    from .training.run_folders import task_of

    task = task_of(run)
    assets = output.with_name(output.name + ASSETS_SUFFIX)
    if task == "classify":
        from .tasks.classify_text import load_classifier

        model, tokenizer, labels = load_classifier(run)
        if model.__class__.__name__ == "TextClassifier" and model.config.arch != "transformer":
            raise DataError(f"export covers Transformer text classifiers; this run's arch is {model.config.arch!r}")
        if get_method(model.config.method).deletes:
            raise DataError(
                "a 'delete' model renumbers tokens by a data-dependent plan that export does not cover; "
                "export a dynamic run"
            )
        missing = [tokenizer.unk_id, tokenizer.missing_id] if hasattr(tokenizer, "missing_id") else []
        missing = sorted({i for i in missing if i is not None})
        graph = TextClassifierGraph(_with_backend(model, backend), missing, tokenizer.pad_id).eval()
        example = tokenizer.pad(tokenizer.encode(["an example text with a ??? hole", "another one"]))
        folder = run / "best" if (run / "best" / "config.json").exists() else run
        meta = {
            "task": "classify",
            "labels": labels,
            "input": "ids",
            "missing_ids": missing,
            "pad_id": tokenizer.pad_id,
            "tokenizer": "pretrained" if model.__class__.__name__ == "PretrainedClassifier" else "dynmask",
        }
        copy_files = [
            p
            for p in folder.iterdir()
            if p.name.startswith(("tokenizer", "special_tokens", "vocab", "merges", "dynmask_tokenizer"))
        ]
    elif task in ("impute", "classify-series"):
        if task == "impute":
            from .tasks.series import load_imputer

            trained = load_imputer(run)
            model, features = trained.model, trained.model.config.num_features
            meta = {"task": "impute", "window": trained.window, "column_names": trained.column_names}
        else:
            from .models.series import SeriesClassifier, SeriesConfig
            from .training import load_run_model
            from .training.run_folders import config_from_dict

            model, _, _ = load_run_model(
                run,
                lambda c: SeriesClassifier(config_from_dict(SeriesConfig, c, "config.json")),
                expect_task="classify-series",
            )
            features = model.config.num_features
            meta = {"task": "classify-series"}
        _check_series_arch(model)
        graph = SeriesGraph(_with_backend(model, backend), impute=task == "impute").eval()
        example = torch.randn(2, 8, features)
        example[0, 1] = float("nan")
        example[1, 3, 0] = float("nan")
        folder = run / "best" if (run / "best" / "config.json").exists() else run
        optional = (folder / "fallback.json", folder / "calibration.json")
        copy_files = [folder / "series.json"] + [p for p in optional if p.exists()]
        meta["input"] = "values (standard units, NaN = missing)"
    else:
        raise DataError(f"export covers classify, impute and classify-series runs; {run} is a {task!r} run")
    output.parent.mkdir(parents=True, exist_ok=True)
    dims = {0: Dim("batch"), 1: Dim("length", min=2, max=65_536)}
    kwargs = {} if opset is None else {"opset_version": opset}
    with torch.no_grad():
        program = torch.onnx.export(
            graph,
            (example,),
            str(output),
            dynamo=True,
            dynamic_shapes=(dims,),
            input_names=["input"],
            output_names=["output"],
            verbose=False,
            **kwargs,
        )
    del program
    shutil.rmtree(assets, ignore_errors=True)
    assets.mkdir(parents=True)
    for path in copy_files:
        shutil.copy(path, assets / path.name)
    (assets / "export.json").write_text(
        json.dumps({**meta, "backend": backend, "source_run": str(run.resolve())}, indent=2)
    )
    return output


def is_onnx(path) -> bool:
    return str(path).endswith(".onnx")


class _Session:
    def __init__(self, path: Path, threads: Optional[int] = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise DataError("running an .onnx model needs onnxruntime: pip install dynmask[onnx]") from None
        if not Path(path).is_file():
            raise DataError(f"--model {path} does not exist")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.name = self.session.get_inputs()[0].name
        assets = Path(str(path) + ASSETS_SUFFIX)
        if not (assets / "export.json").is_file():
            raise DataError(f"{assets / 'export.json'} is missing: export with `dynmask export` to get the assets")
        self.assets, self.meta = assets, json.loads((assets / "export.json").read_text())

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.name: x})[0]


class OnnxTextClassifier(_Session):
    """An exported text classifier: ``predict(texts)`` gives the rows ``dynmask predict`` prints."""

    def __init__(self, path: Path, threads: Optional[int] = None) -> None:
        super().__init__(path, threads)
        if self.meta["tokenizer"] == "pretrained":
            from .hf import PretrainedTokenizer

            self.tokenizer = PretrainedTokenizer.load(self.assets)
        else:
            from .data.tokenizer import TextTokenizer

            self.tokenizer = TextTokenizer.load(self.assets)
        self.labels = self.meta["labels"]

    def logits(self, ids: Tensor) -> np.ndarray:
        if ids.shape[1] < 2:  # the graph takes lengths >= 2: one more padding position changes nothing
            ids = torch.cat([ids, torch.full((ids.shape[0], 2 - ids.shape[1]), self.tokenizer.pad_id)], 1)
        return self.run(ids.numpy())

    def predict(self, texts: Sequence[str]) -> list[dict]:
        ids = self.tokenizer.pad(self.tokenizer.encode(texts))
        observed = self.tokenizer.observed_text_tokens(ids)
        logits = torch.from_numpy(self.logits(ids))
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


def load_onnx(path, threads: Optional[int] = None):
    """The right runner for an exported file, by its assets' task."""
    meta_path = Path(str(path) + ASSETS_SUFFIX) / "export.json"
    if not meta_path.is_file():
        raise DataError(f"{meta_path} is missing: export with `dynmask export` to get the assets")
    task = json.loads(meta_path.read_text())["task"]
    return OnnxTextClassifier(path, threads) if task == "classify" else OnnxSeriesModel(path, threads)
