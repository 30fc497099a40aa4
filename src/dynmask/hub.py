"""Hub-style save and load of trained dynmask models, through ``huggingface_hub``'s :class:`ModelHubMixin`.

Every task's trained model is a :class:`DynmaskModel` subclass (one per task, in :data:`HUB_MODELS`):

    model = dynmask.from_pretrained("runs/rt")          # a run folder, its best/, a saved folder or a hub repo id
    model.predict(["a fine film", "[MISSING] dull"])   # the task's own call: predict / generate / impute / forecast
    model.save_pretrained("my-model")                   # config.json, model.safetensors, README.md (model card), ...
    model.push_to_hub("me/my-model")                    # the same folder, uploaded

A saved folder is a run's ``best/`` plus a model card: ``config.json`` (the run's config, task included),
``model.safetensors`` (the weights as the model holds them now), the task's own files (tokenizer, labels,
scaler, fallback, calibration, confidence threshold), ``test_results.json`` when the run had one, and
``manifest.json`` (the sha256 of every file). Loading treats the folder as untrusted input exactly as
``dynmask predict`` treats a run folder: no pickle, the manifest verified, the config checked before a
model is built, non-finite weights refused; a repo id is downloaded as plain files (no links) first.

Masks follow dynmask's one convention: ``True`` = observed. Values that are NaN / inf, and words marked
``[MISSING]`` (or below the run's confidence threshold), are missing.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, ClassVar, Optional, Sequence

import numpy as np
import torch
from huggingface_hub import ModelCard, ModelCardData, ModelHubMixin

from .errors import DataError, RunFolderError
from .files import as_created, read_json, read_json_object

__all__ = ["DynmaskModel", "HUB_MODELS", "from_pretrained"]

HUB_MODELS: dict[str, type["DynmaskModel"]] = {}  # task name (a run's config.json "task") -> its class
OWN_FILES = ("config.json", "model.safetensors", "manifest.json", "README.md")  # written by save_pretrained
RESULTS_FILE = "test_results.json"


def _folder(path: Path) -> Path:
    """The folder holding a model's ``config.json``: ``path`` itself or a run's ``best/``."""
    path = Path(path)
    if not path.exists():
        raise RunFolderError(f"{path} does not exist; pass a run folder, its best/, a saved model folder or a repo id")
    return path if (path / "config.json").exists() else path / "best"


def _task(folder: Path) -> str:
    config = read_json_object(folder / "config.json") if (folder / "config.json").exists() else None
    if config is None:
        raise RunFolderError(f"no config.json in {folder}; pass a run folder, its best/ or a saved model folder")
    task = config.get("task", "classify")
    if task not in HUB_MODELS:
        raise RunFolderError(f"{folder / 'config.json'}: task {task!r} has no hub model; known: {sorted(HUB_MODELS)}")
    return task


def _download(repo_id: str, **hub) -> Path:
    """A hub repository as plain files (never the cache's symbolic links, which run-folder checks refuse)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.constants import HF_HUB_CACHE

    target = Path(hub.get("cache_dir") or HF_HUB_CACHE) / "dynmask" / repo_id.replace("/", "--")
    path = snapshot_download(
        repo_id,
        revision=hub.get("revision"),
        token=hub.get("token"),
        local_files_only=bool(hub.get("local_files_only")),
        force_download=bool(hub.get("force_download")),
        local_dir=target / (hub.get("revision") or "main"),
    )
    return Path(path)


def _resolve(name_or_path: "str | Path", **hub) -> Path:
    path = Path(name_or_path)
    if path.exists():
        return _folder(path)
    if isinstance(name_or_path, str) and name_or_path.count("/") == 1 and not name_or_path.startswith((".", "/")):
        return _folder(_download(name_or_path, **hub))
    raise RunFolderError(f"{name_or_path} is neither a folder nor a hub repo id (owner/name)")


def from_pretrained(name_or_path: "str | Path", **hub) -> "DynmaskModel":
    """The trained model in a run folder (or its ``best/``), a folder written by ``save_pretrained``, or a
    hub repo id, as the class of its task (:data:`HUB_MODELS`). ``hub``: ``revision``, ``token``,
    ``cache_dir``, ``local_files_only``, ``force_download`` for a repo id."""
    folder = _resolve(name_or_path, **hub)
    return HUB_MODELS[_task(folder)](folder)


class DynmaskModel(
    ModelHubMixin,
    library_name="dynmask",
    tags=["dynmask", "missing-values", "dynamic-mask"],
):
    """A trained dynmask model loaded from ``folder`` (checked as untrusted input). Subclasses name their
    tasks in ``tasks`` and load in :meth:`_load`; ``model`` is the ``torch.nn.Module``, in eval mode."""

    tasks: ClassVar[tuple[str, ...]] = ()
    model: torch.nn.Module

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        for task in cls.tasks:
            HUB_MODELS[task] = cls

    def __init__(self, folder: "str | Path") -> None:
        folder = _folder(Path(folder))
        task = _task(folder)
        if task not in self.tasks:
            raise RunFolderError(f"{folder} holds a {task!r} model; {type(self).__name__} loads {self.tasks} models")
        self.task = task
        self.config = read_json_object(folder / "config.json")  # as written: the loaders add live objects to theirs
        self.files = {  # the task's own files (tokenizer, labels, scaler, ...), carried into save_pretrained
            name: p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and (name := p.relative_to(folder).as_posix()) not in OWN_FILES and not name.startswith(".")
        }  # (".cache/": a hub download's own bookkeeping)
        results = folder / RESULTS_FILE
        if not results.exists() and folder.name == "best":  # a run folder: its test scores sit beside best/
            results = folder.parent / RESULTS_FILE
        self.results = read_json(results) if results.is_file() else None
        if self.results is not None:
            self.files[RESULTS_FILE] = results.read_bytes()
        self._load(folder)

    def _load(self, folder: Path) -> None:
        raise NotImplementedError

    # ----------------------------------------------------------------------------- ModelHubMixin's hooks
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: "str | Path", **hub) -> "DynmaskModel":  # type: ignore[override]
        """Load a run folder, its ``best/``, a saved folder or a hub repo id (``revision``, ``token``,
        ``cache_dir``, ``local_files_only``, ``force_download``). The mixin's own reader would parse
        ``config.json`` before dynmask's checks; this one checks it first (see the module docstring)."""
        model = from_pretrained(pretrained_model_name_or_path, **hub)
        if not isinstance(model, cls):
            raise RunFolderError(
                f"{pretrained_model_name_or_path} holds a {model.task!r} model; {cls.__name__} loads {cls.tasks}"
            )
        return model

    @classmethod
    def _from_pretrained(cls, *, model_id: str, **hub) -> "DynmaskModel":
        return cls.from_pretrained(model_id, **{k: v for k, v in hub.items() if v is not None})

    def _save_pretrained(self, save_directory: Path) -> None:
        from safetensors.torch import save_model

        from .training.checkpoints import savable
        from .training.run_folders import write_manifest

        save_directory = Path(save_directory)
        for name, data in self.files.items():
            (save_directory / name).parent.mkdir(parents=True, exist_ok=True)
            (save_directory / name).write_bytes(data)
        (save_directory / "config.json").write_text(json.dumps(self.config, indent=2))
        save_model(savable(self.model), str(save_directory / "model.safetensors"))
        as_created(save_directory / "model.safetensors")
        self.generate_model_card().save(save_directory / "README.md")
        write_manifest(save_directory)

    def save_pretrained(self, save_directory: "str | Path", **kwargs) -> Optional[str]:
        """Write the model as a folder ``from_pretrained`` loads (see the module docstring). A former save in
        ``save_directory`` (the files its manifest lists) is replaced; other files there are left alone.
        ``kwargs``: the mixin's (``push_to_hub``, ``repo_id``, ...)."""
        _clear_former_save(Path(save_directory))
        return super().save_pretrained(save_directory, **kwargs)

    def generate_model_card(self, *args, **kwargs) -> ModelCard:
        data = self.config.get("data") if isinstance(self.config.get("data"), dict) else {}
        card = ModelCardData(
            library_name="dynmask",
            tags=sorted(set(self._hub_mixin_info.model_card_data.tags or []) | {self.task}),
            datasets=[str(data["name"])] if data.get("name") else None,
        )
        lines = [
            "---",
            card.to_yaml(),
            "---",
            "",
            f"# dynmask {self.task} model",
            "",
            f"A `{self.task}` model trained with dynmask: a Transformer (or",
            "RNN) that reads sequences with missing values through a **dynamic mask** built from the input itself.",
            "",
            f"- **Task**: {self.task}",
            f"- **Data**: {data.get('name', 'a user file')}",
            f"- **Model**: {_describe(self.config.get('model', {}))}",
            "",
            "## The guarantee",
            "",
            "Missing positions (NaN / inf values, `[MISSING]` words) get exactly zero attention weight and cannot",
            "change any output at observed positions, any pooled output or any loss, whatever values they hold;",
            "their gradients are exactly zero. dynmask's property tests prove this for every model and path.",
            "",
            "## Test metrics",
            "",
            *_metrics_table(self.results),
            "",
            "## How to load",
            "",
            "```python",
            "import dynmask  # pip install 'dynmask[hub]'",
            "",
            'model = dynmask.from_pretrained("THIS_FOLDER_OR_REPO_ID")',
            "```",
            "",
            "Loading verifies `manifest.json` (sha256 of every file), checks `config.json` before building the",
            "model and refuses non-finite weights; nothing is unpickled.",
            "",
        ]
        return ModelCard("\n".join(lines))


def _clear_former_save(folder: Path) -> None:
    """Remove the files a former ``save_pretrained`` wrote in ``folder`` (named by its manifest): a new
    model's task files must not mix with the old one's."""
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return
    listed = read_json_object(manifest).get("sha256")
    for name in listed if isinstance(listed, dict) else ():
        path = (folder / name).resolve()
        if isinstance(name, str) and path.is_relative_to(folder.resolve()) and path.is_file():
            path.unlink()
    for name in ("manifest.json", "README.md"):
        (folder / name).unlink(missing_ok=True)


def _describe(model: dict) -> str:
    keys = ("arch", "method", "d_model", "n_heads", "n_layers", "num_features", "num_classes", "vocab_size")
    parts = [f"{k}={model[k]}" for k in keys if isinstance(model, dict) and k in model]
    return ", ".join(parts) or "see config.json"


def _metrics_table(results: Any) -> list[str]:
    """Markdown rows of a run's test results: a list of per-missing-rate records, or {method: metrics}."""
    if isinstance(results, list) and results and all(isinstance(r, dict) for r in results):
        keys = [k for k, v in results[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        keys = ["missing_rate"] + [k for k in keys if k not in ("missing_rate", "score")]
        rows = ["| " + " | ".join(keys) + " |", "|" + " --- |" * len(keys)]
        return rows + ["| " + " | ".join(_fmt(r.get(k)) for k in keys) + " |" for r in results]
    if isinstance(results, dict) and results and all(isinstance(v, dict) for v in results.values()):
        keys = [k for k in ("mae", "mase", "rmse", "coverage") if any(k in v for v in results.values())]
        rows = ["| method | " + " | ".join(keys) + " |", "|" + " --- |" * (len(keys) + 1)]
        return rows + [f"| {m} | " + " | ".join(_fmt(v.get(k)) for k in keys) + " |" for m, v in results.items()]
    return ["No test results were saved with this model."]


def _fmt(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _series(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2:
        raise DataError(f"{name}: expected a 2-D array (time steps, variables), got shape {array.shape}")
    return np.where(np.isfinite(array), array, np.nan)


# --------------------------------------------------------------------------------------------- tasks
class TextClassifierModel(DynmaskModel):
    """A text classifier (``classify``; from scratch or a fine-tuned pretrained encoder)."""

    tasks = ("classify",)

    def _load(self, folder: Path) -> None:
        from .tasks.classify.task import load_classifier
        from .tasks.common import stored_reading

        self.model, self.tokenizer, self.labels = load_classifier(folder)
        self.threshold, self.lexicon = stored_reading(folder)

    def predict(self, texts: Sequence[str], confidences: Optional[Sequence[Sequence[float]]] = None) -> list[dict]:
        """One row per text, as ``dynmask predict`` prints it: ``label``, ``probabilities``. ``confidences``:
        one number in [0, 1] per whitespace-separated word; words below the run's threshold are missing."""
        from .data.confidence import mark_low_confidence
        from .tasks.classify.task import predict_texts

        read = list(texts)
        if confidences is not None:
            if self.threshold is None:
                raise DataError("confidences: this model stores no confidence threshold; pass texts alone")
            pairs = zip(read, confidences, strict=True)
            read = [mark_low_confidence(t, c, self.threshold, lexicon=self.lexicon) for t, c in pairs]
        rows = predict_texts(self.model, self.tokenizer, self.labels, read)
        return [{**row, "text": text} for text, row in zip(texts, rows)]


class Seq2SeqModel(DynmaskModel):
    """A translation or summarization model (``translate``, ``summarize``)."""

    tasks = ("translate", "summarize")

    def _load(self, folder: Path) -> None:
        from .tasks.seq2seq.fallback import read_fallback
        from .tasks.seq2seq.trained import load_seq2seq

        self.model, self.tokenizer, self._run = load_seq2seq(folder)
        self._folder = folder
        self.fallback = read_fallback(folder)  # a baseline that beat the model on validation, or None

    def generate(
        self, texts: Sequence[str], beam: int = 4, length_penalty: float = 1.0, use_model: bool = False
    ) -> list[str]:
        """The output text for each input (words marked ``[MISSING]`` are missing), with the run's
        fuzzy-match hybrid where it chose one; where a baseline beat the model on validation
        (:attr:`fallback`), that baseline's output, as ``dynmask predict`` gives (``use_model``: the model's)."""
        from .tasks.seq2seq.fallback import answer_texts

        run = self._run
        rows = answer_texts(
            self.model, self.tokenizer, run, self._folder, texts, baseline=None if use_model else self.fallback,
            beam=beam, length_penalty=length_penalty, max_len=run["max_tgt_len"],
            no_repeat_ngram=run["no_repeat_ngram"],
        )  # fmt: skip
        return [row["output"] for row in rows]


class SeriesClassifierModel(DynmaskModel):
    """A series classifier (``classify-series``)."""

    tasks = ("classify-series",)

    def _load(self, folder: Path) -> None:
        from .data.series import Standardizer
        from .models.series import SeriesClassifier, SeriesConfig
        from .training import load_run_model
        from .training.run_folders import config_from_dict

        build = lambda c: SeriesClassifier(config_from_dict(SeriesConfig, c, "config.json"))  # noqa: E731
        self.model, _, _ = load_run_model(folder, build, expect_task="classify-series")
        assets = read_json_object(folder / "series.json")
        try:
            self.labels = [str(x) for x in assets["labels"]]
            mean, std = (np.asarray(assets["scaler"][k], np.float64) for k in ("mean", "std"))
        except (KeyError, TypeError, ValueError) as e:
            raise RunFolderError(f"{folder / 'series.json'} is damaged ({type(e).__name__}: {e})") from None
        if len(self.labels) != self.model.config.num_classes or mean.shape != (self.model.config.num_features,):
            raise RunFolderError(f"{folder / 'series.json'} does not match the model")
        self.scaler = Standardizer(mean, std)

    def predict(self, series: Sequence[Any]) -> list[str]:
        """The label of each series float[T, F] (NaN / inf = missing; lengths may differ)."""
        from .data.series import pad_series
        from .masks import Mask

        raw = [_series(s, f"series[{i}]") for i, s in enumerate(series)]
        longest, features = self.model.config.max_len, self.model.config.num_features
        for i, s in enumerate(raw):
            if not 1 <= len(s) <= longest or s.shape[1] != features:
                raise DataError(
                    f"series[{i}]: expected 1 to {longest} steps of {features} variables, got shape {s.shape}"
                )
        scaled = [self.scaler.transform(s) for s in raw]
        x, _ = pad_series(scaled)  # (B, L, F), NaN = missing / padding
        lengths = torch.tensor([len(s) for s in scaled])
        with torch.no_grad():
            logits = self.model(x, Mask.from_nan(x, lengths=lengths))
        return [self.labels[i] for i in logits.argmax(-1).tolist()]


class ImputerModel(DynmaskModel):
    """A series imputer (``impute``)."""

    tasks = ("impute",)

    def _load(self, folder: Path) -> None:
        from .tasks.impute.trained import load_imputer

        self.imputer = load_imputer(folder)
        self.model = self.imputer.model
        self.column_names = self.imputer.column_names
        self.fallback = self.imputer.fallback  # a baseline that beat the model on validation, or None

    def impute(self, values: Any, bounds: bool = True, use_model: bool = False) -> np.ndarray:
        """``values`` float[T, F] (columns in :attr:`column_names` order; NaN / inf = missing) with every hole
        filled and every observed value returned unchanged; ``bounds`` keeps fills in the range the
        training data allows (as ``dynmask impute`` does by default); ``use_model``: the model fills even
        where the run chose a baseline on validation (:attr:`fallback`)."""
        from .tasks.impute.csv_io import fill_values

        return fill_values(self.imputer, _series(values, "values"), use_model=use_model, bounds=bounds)


class ForecasterModel(DynmaskModel):
    """A forecaster (``forecast``)."""

    tasks = ("forecast",)

    def _load(self, folder: Path) -> None:
        from .tasks.forecast.trained import load_forecaster

        self.forecaster = load_forecaster(folder)
        self.model = self.forecaster.model
        self.column_names = self.forecaster.column_names
        self.horizon = self.forecaster.horizon
        self.fallback = self.forecaster.fallback  # a baseline that beat the model on validation, or None

    def forecast(self, history: Any, intervals: bool = False, use_model: bool = False):
        """The next ``horizon`` steps float[H, F] after ``history`` float[T, F] (NaN / inf = missing), or
        (point, lower, upper) with ``intervals``; ``use_model``: the model forecasts even where the run chose
        a baseline on validation (:attr:`fallback`; a baseline has no interval)."""
        return self.forecaster.forecast(_series(history, "history"), intervals=intervals, use_model=use_model)
