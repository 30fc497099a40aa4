"""What every task shares: how values go missing (:class:`MissingSpec`), seeded test-time holes,
the split offsets of those seeds, classification scores, and the :class:`Task` protocol the trainer
runs. Mask polarity: True = observed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch

from ..data.confidence import mark_low_confidence
from ..data.lexicon import LEXICON_FILE, Lexicon
from ..errors import DataError
from ..layers import with_backend
from ..missingness import PROCESSES, Schedule, make_process
from ..traced import SeriesGraph
from ..training.run_folders import read_json, write_manifest

__all__ = ["TEST_SEED", "SPLIT_OFFSET", "MissingSpec", "TokenHoles", "accuracy_and_macro_f1"]


TEST_SEED = 20261126  # test-time holes: the same for every method and run
SPLIT_OFFSET = {"train": 0, "valid": 1, "test": 2}  # test-time hole seeds differ per split


@dataclass
class MissingSpec:
    """How tokens are made missing: process, rate, and (for training) the schedule."""

    rate: float = 0.0
    process: str = "uniform"
    schedule: str = "dynamic"
    mean_span: float = 3.0

    def __post_init__(self):
        if not 0 <= self.rate <= 1:  # NaN fails this too
            raise ValueError(f"missing rate must lie in [0, 1], got {self.rate}")
        if self.schedule not in ("dynamic", "static"):
            raise ValueError(f"schedule must be 'dynamic' or 'static', got {self.schedule!r}")
        if self.process not in PROCESSES:
            raise ValueError(f"missingness process must be one of {PROCESSES}, got {self.process!r}")


def accuracy_and_macro_f1(pred: torch.Tensor, gold: torch.Tensor, num_classes: int) -> tuple[float, float]:
    accuracy = float((pred == gold).float().mean()) if gold.numel() else 0.0
    f1s = []
    for c in range(num_classes):
        tp = int(((pred == c) & (gold == c)).sum())
        fp = int(((pred == c) & (gold != c)).sum())
        fn = int(((pred != c) & (gold == c)).sum())
        if tp + fp + fn == 0:
            continue  # class absent from both: not counted
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return accuracy, sum(f1s) / max(1, len(f1s))


class TokenHoles:
    """The missing-token processes of one text task, shared by every text task.

    Training holes follow ``train_missing`` (re-drawn every batch, or drawn once per example);
    validation uses the same process with holes drawn once; test-time holes are seeded per split
    (:meth:`test_schedule`), the same for every method. ``value`` processes weigh tokens by their
    counts in ``train_ids``.
    """

    def __init__(
        self, train_missing: MissingSpec, train_ids: Sequence[Sequence[int]], vocab_size: int, seed: int, max_len: int
    ) -> None:
        counts = torch.zeros(vocab_size)
        for ids in train_ids:
            counts.index_add_(0, torch.as_tensor(ids, dtype=torch.long), torch.ones(len(ids)))
        self.token_counts, self.max_len = counts, max_len
        self.train_missing = train_missing
        self.train_process = self.process(train_missing)
        self.train_schedule = Schedule(
            train_missing.schedule, getattr(self.train_process, "n_uniforms", 1), seed, max_len
        )
        self.valid_missing = MissingSpec(train_missing.rate, train_missing.process, "static", train_missing.mean_span)

    def process(self, spec: MissingSpec):
        if spec.rate == 0.0:
            return None
        return make_process(spec.process, spec.rate, mean_span=spec.mean_span, token_counts=self.token_counts)

    def test_schedule(self, process, split: str) -> Optional[Schedule]:
        if process is None:
            return None
        return Schedule("static", process.n_uniforms, TEST_SEED + SPLIT_OFFSET[split], self.max_len)


def series_export(model: torch.nn.Module, backend: str, impute: bool, folder: Path, meta: dict):
    """(graph, example, metadata, files) for a series run's ONNX export: values float[B, L, F] in (NaN =
    missing, the mask built inside the graph), the imputer's filled values or the classifier's logits out."""
    if model.config.arch != "transformer":
        raise DataError(
            f"export covers Transformer series models; this run's arch is {model.config.arch!r} "
            "(recurrent models pack sequences on the CPU, which does not trace)"
        )
    graph = SeriesGraph(with_backend(model, backend), impute=impute).eval()
    example = torch.randn(2, 8, model.config.num_features)
    example[0, 1] = float("nan")
    example[1, 3, 0] = float("nan")
    optional = (folder / "fallback.json", folder / "calibration.json")
    copy_files = [folder / "series.json"] + [p for p in optional if p.exists()]
    return graph, example, {**meta, "input": "values (standard units, NaN = missing)"}, copy_files


CONFIDENCE_FILE = "confidence.json"  # in a run's best/: {"threshold": T, "lexicon": bool} chosen on validation


def _confidence_record(run: Path) -> tuple[Optional[Path], Optional[dict]]:
    """(folder, record) of the run's ``confidence.json`` (the run, its best/, an export's assets), or (None, None)."""
    run = Path(run)
    for folder in (run, run / "best", run.with_name(run.name + ".assets")):
        path = folder / CONFIDENCE_FILE
        if path.is_file():
            record = read_json(path)
            if not isinstance(record, dict):
                raise DataError(f'{path}: expected {{"threshold": a number in [0, 1]}}')
            return folder, record
    return None, None


def _threshold_in(folder: Optional[Path], record: Optional[dict]) -> Optional[float]:
    if record is None:
        return None
    value = record.get("threshold")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1:
        return float(value)
    raise DataError(f'{folder / CONFIDENCE_FILE}: expected {{"threshold": a number in [0, 1]}}')


def _lexicon_in(folder: Optional[Path], record: Optional[dict]) -> Optional[Lexicon]:
    use = False if record is None else record.get("lexicon", False)
    if not isinstance(use, bool):
        raise DataError(f'{folder / CONFIDENCE_FILE}: "lexicon" must be true or false, got {use!r}')
    if not use:
        return None
    if not (folder / LEXICON_FILE).is_file():
        raise DataError(f"{folder / CONFIDENCE_FILE} says the run reads confidences with a lexicon; "
                        f"{folder / LEXICON_FILE} is missing")  # fmt: skip
    return Lexicon.load(folder / LEXICON_FILE)


def stored_threshold(run: Path) -> Optional[float]:
    """The confidence threshold a run chose on validation (``best/confidence.json``), or None (a run
    trained without confidences, or an exported ``.onnx`` model whose assets hold none)."""
    return _threshold_in(*_confidence_record(run))


def stored_lexicon(run: Path) -> Optional[Lexicon]:
    """The lexicon a run reads engine confidences with (``"lexicon": true`` in its ``confidence.json``,
    the words in ``lexicon.txt`` beside it: words outside it count as confidence 0), or None."""
    return _lexicon_in(*_confidence_record(run))


def stored_reading(run: Path) -> tuple[Optional[float], Optional[Lexicon]]:
    """(:func:`stored_threshold`, :func:`stored_lexicon`) from one read of the run's ``confidence.json``."""
    folder, record = _confidence_record(run)
    return _threshold_in(folder, record), _lexicon_in(folder, record)


def confidence_files(run: Path) -> list[Path]:
    """The files that say how a run reads confidences (``confidence.json``, ``lexicon.txt``): an export copies them."""
    folder, _ = _confidence_record(run)
    return [] if folder is None else [p for p in (folder / CONFIDENCE_FILE, folder / LEXICON_FILE) if p.is_file()]


THRESHOLD_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # 0.0: every word kept (the raw engine text)


def has_confidences(splits) -> bool:
    return any(e.confidences is not None for name in ("train", "valid", "test") for e in splits.split(name))


def mark_splits(splits, threshold: float, lexicon: Optional[Lexicon] = None):
    """``splits`` (text examples, or pairs: their source) with every word whose engine confidence is below
    ``threshold`` replaced by the missing marker (those without confidences unchanged); a word's pieces
    all become missing. ``lexicon``: words it does not hold count as confidence 0 (:meth:`Lexicon.cap`)."""

    def mark(e):
        if e.confidences is None:
            return e
        key = "source" if hasattr(e, "source") else "text"
        return replace(e, **{key: mark_low_confidence(getattr(e, key), e.confidences, threshold, lexicon=lexicon)})

    return replace(splits, **{name: [mark(e) for e in splits.split(name)] for name in ("train", "valid", "test")})


def run_reading(given: Optional[float], run: Path, what: str) -> tuple[float, Optional[Lexicon]]:
    """(threshold, lexicon or None) a command reads confidences with: ``given`` (``--confidence-threshold``),
    else the threshold the run stored, and the run's lexicon if it chose one (:func:`stored_lexicon`), from
    one read of its ``confidence.json``; a :class:`DataError` when there is no threshold (``what`` names the
    input that has confidences)."""
    folder, record = _confidence_record(run)
    threshold = given if given is not None else _threshold_in(folder, record)
    if threshold is None:
        raise DataError(
            f"{what} carries confidences and {run} stores no threshold: pass --confidence-threshold T (words "
            "below T are read as missing; 0 keeps every word)"
        )
    return threshold, _lexicon_in(folder, record)


def choose_threshold(
    score_at: Callable[[float, Optional[Lexicon]], float], given: Optional[float], lexicon: Optional[Lexicon] = None
) -> tuple[float, Optional[Lexicon], dict]:
    """(threshold, lexicon or None, validation scores): ``given`` with the engine's confidences alone (no
    scores), or the threshold of :data:`THRESHOLD_GRID` and the reading, the confidences alone or capped
    by ``lexicon``, whose ``score_at(threshold, lexicon)`` (higher is better) is best. Ties go to the
    confidences alone, then to the lower threshold (more words kept). Scores: ``{"engine": {T: score},
    "engine+lexicon": {T: score}}``."""
    if given is not None:
        return given, None, {}
    readings = {"engine": None} if lexicon is None else {"engine": None, "engine+lexicon": lexicon}
    scores = {name: {t: score_at(t, lex) for t in THRESHOLD_GRID} for name, lex in readings.items()}
    order = list(readings)
    pairs = [(n, t) for n in order for t in THRESHOLD_GRID]
    name, threshold = max(pairs, key=lambda nt: (scores[nt[0]][nt[1]], -order.index(nt[0]), -nt[1]))
    return threshold, readings[name], scores


def save_threshold(best: Path, threshold: float, lexicon: Optional[Lexicon], scores: dict, score_name: str) -> None:
    """Write ``best/confidence.json`` (the threshold, whether the lexicon caps confidences, how they were
    chosen, the scores), ``best/lexicon.txt`` when it does, and re-sign the folder."""
    record = {"threshold": threshold, "lexicon": lexicon is not None, "chosen_on": "valid" if scores else "given",
              score_name: scores}  # fmt: skip
    if lexicon is not None:
        lexicon.save(best / LEXICON_FILE)
    (best / CONFIDENCE_FILE).write_text(json.dumps(record, indent=2))
    write_manifest(best)
