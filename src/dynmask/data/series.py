"""Numeric series with missing values: readers, windows, splits, standardisation, held-out masks.

Missing values are NaN throughout (blank fields in a CSV read as NaN). Masks derived from them use
True = observed.

* Classification sets: sktime ``.ts`` files (JapaneseVowels, BasicMotions — fetched from PyPI's
  ``sktime==1.2.0`` on first use — or a user's own ``.ts`` file), variable length.
* Imputation data: a wide CSV (one row per time, one column per variable) or a long one
  (time, variable, value), cut into windows of a chosen length and stride after a chronological
  train / valid / test split.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ..errors import DataError
from ..extras import require as _require
from ..masks import Mask
from .csv_layout import csv_layout
from .sources import SKTIME_WHEEL, Source, fetch

__all__ = [
    "SERIES_SOURCES",
    "SeriesSplits",
    "read_ts",
    "load_series_classification",
    "inject_missing",
    "pad_series",
    "read_wide_csv",
    "read_wide_text",
    "read_long_csv",
    "chronological_split",
    "make_windows",
    "Standardizer",
    "holdout_mask",
]


# fpp2's uschange (Hyndman & Athanasopoulos), as sktime ships it: quarterly % changes of US consumption,
# income, production, savings and unemployment, 1970 Q1 - 2016 Q3 (forecasting benchmark)
USCHANGE = Source(
    "sktime",
    "1.2.0",
    "sktime/datasets/data/Uschange/Uschange.csv",
    "ab70b9bf82f99c962041bfd38dc9644f7a17930df71f24345bb71180f68809fe",
    "BSD-3-Clause (sktime); data from the fpp2 R package",
    "US consumption, income, production, savings, unemployment: quarterly changes 1970-2016",
    SKTIME_WHEEL,
)


def _sk(name: str, split: str, sha: str) -> Source:
    return Source(
        "sktime",
        "1.2.0",
        f"sktime/datasets/data/{name}/{name}_{split}.ts",
        sha,
        "BSD-3-Clause (sktime)",
        f"{name} {split.lower()} (UEA archive, via sktime)",
        SKTIME_WHEEL,
    )


SERIES_SOURCES = {
    "japanese_vowels": {
        "train": _sk("JapaneseVowels", "TRAIN", "68a430eabd919cc77f40b1f5f3bc0dcafacc1486bca9260785aeb7d262cc78cd"),
        "test": _sk("JapaneseVowels", "TEST", "b3d41d6a0ca3bcad3afb9ca7d4365382aa51341e2e58bae2a574babdda5b9462"),
    },
    "basic_motions": {
        "train": _sk("BasicMotions", "TRAIN", "8dc43cc6306cb679c888c01e26f91772ac4441a916da43bac8b79734a538b9d6"),
        "test": _sk("BasicMotions", "TEST", "79213102bc6fca1a398ad98ce1185dff0208fa3d1465e687f48288946b0ff8dc"),
    },
}


# ---------------------------------------------------------------------------------------- classification
@dataclass
class SeriesSplits:
    """Variable-length multivariate series: each example a float array (L_i, F) with NaN = missing."""

    name: str
    labels: list[str]
    num_features: int
    train: list[tuple[np.ndarray, int]]
    valid: list[tuple[np.ndarray, int]]
    test: list[tuple[np.ndarray, int]]
    info: dict = field(default_factory=dict)

    def split(self, name: str):
        if name not in ("train", "valid", "test"):
            raise ValueError(f"split must be 'train', 'valid' or 'test', got {name!r}")
        return getattr(self, name)


def read_ts(path: Path) -> tuple[list[np.ndarray], list[str]]:
    """An sktime / UEA ``.ts`` file: per example an array (L, F) (NaN for ``?``/``NaN``) and its label."""
    series, labels = [], []
    in_data = False
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            in_data = line.lower().startswith("@data")
            continue
        if not in_data:
            continue
        *dims, label = line.split(":")
        if not dims:
            raise DataError(f"{path}, line {number}: expected dimension values then ':label'")
        try:
            columns = [
                [float("nan") if v.strip() in ("?", "NaN", "nan", "") else float(v) for v in d.split(",")] for d in dims
            ]
        except ValueError as e:
            raise DataError(f"{path}, line {number}: not a number ({e})") from None
        length = max(len(c) for c in columns)
        arr = np.full((length, len(columns)), np.nan, dtype=np.float32)
        for j, c in enumerate(columns):
            arr[: len(c), j] = c
        series.append(arr)
        labels.append(label.strip())
    if not series:
        raise DataError(f"{path} holds no series after @data")
    if len({s.shape[1] for s in series}) != 1:
        raise DataError(f"{path}: the series do not all have the same number of dimensions")
    return series, labels


def load_series_classification(
    name_or_path: str, *, seed: int = 0, valid_fraction: float = 0.2, cache: Optional[Path] = None
) -> SeriesSplits:
    """``japanese_vowels``, ``basic_motions``, or a pattern ``my_{split}.ts`` with TRAIN / TEST files
    (``{split}`` replaced by ``TRAIN`` and ``TEST``). A seeded share of train becomes valid."""
    if name_or_path in SERIES_SOURCES:
        paths = {k: fetch(v, cache) for k, v in SERIES_SOURCES[name_or_path].items()}
        name = name_or_path
    elif "{split}" in name_or_path:
        paths = {k: Path(name_or_path.format(split=k.upper())) for k in ("train", "test")}
        for p in paths.values():
            if not p.exists():
                raise DataError(f"{p} does not exist (from the pattern {name_or_path!r})")
        name = Path(name_or_path).name.replace("_{split}", "").replace("{split}", "")
    else:
        raise DataError(
            f"--data {name_or_path!r} is neither {tuple(SERIES_SOURCES)} nor a pattern like "
            f"'my_{{split}}.ts' naming a TRAIN and a TEST file"
        )
    train_x, train_y = read_ts(paths["train"])
    test_x, test_y = read_ts(paths["test"])
    numeric = all(v.lstrip("-").replace(".", "", 1).isdigit() for v in train_y)
    labels = sorted(set(train_y), key=float) if numeric else sorted(set(train_y))
    index = {v: i for i, v in enumerate(labels)}
    unknown = sorted(set(test_y) - set(index))
    if unknown:
        raise DataError(f"the test file has labels {unknown} that the train file does not")
    order = list(range(len(train_x)))
    random.Random(seed).shuffle(order)
    n_valid = int(valid_fraction * len(order))
    train = [(train_x[i], index[train_y[i]]) for i in order[n_valid:]]
    valid = [(train_x[i], index[train_y[i]]) for i in order[:n_valid]]
    test = [(x, index[y]) for x, y in zip(test_x, test_y)]
    return SeriesSplits(name, labels, train_x[0].shape[1], train, valid, test, {"seed": seed})


def inject_missing(values: np.ndarray, rate: float, seed: int) -> np.ndarray:
    """A copy of ``values`` (L, F) with a seeded share ``rate`` of its observed values set to NaN."""
    if not 0 <= rate <= 1:
        raise ValueError(f"missing rate must be in [0, 1], got {rate}")
    rng = np.random.default_rng(seed)
    out = values.copy()
    out[(rng.random(values.shape) < rate) & ~np.isnan(values)] = np.nan
    return out


def pad_series(batch: Sequence[np.ndarray]) -> tuple[torch.Tensor, Mask]:
    """Right-pad arrays (L_i, F) to float[B, L, F] (NaN in the padding) and their Mask (True = observed)."""
    length = max(len(s) for s in batch)
    features = batch[0].shape[1]
    x = torch.full((len(batch), length, features), float("nan"))
    for i, s in enumerate(batch):
        x[i, : len(s)] = torch.from_numpy(np.asarray(s, dtype=np.float32))
    lengths = torch.tensor([len(s) for s in batch])
    return x, Mask.from_nan(x, lengths=lengths)


# ---------------------------------------------------------------------------------------- imputation data
_TIME_NAMES = ("time", "date", "datetime", "timestamp", "day", "month", "year", "hour")


def _long_hint(path: Path) -> str:
    return (
        f"If {path.name} is long (one row per time and variable), pass --format long --time-column T "
        "--variable-column V --value-column X; if it has one row per entity and time with a column per variable, "
        "pass --id-column ENTITY --time-column T; if its time axis is another column, pass --time-column"
    )


def read_csv_frame(path: Path, encoding: str, **read_kw):
    """(pandas DataFrame, :class:`CsvLayout`) of the delimited file ``path`` (``read_kw`` go to
    ``pandas.read_csv``); a missing file, a folder, an empty or unparsable file is a one-line
    :class:`DataError`."""
    pd = _require("pandas")

    path = Path(path)
    if not path.exists():
        raise DataError(f"data file {path} does not exist")
    if path.is_dir():
        raise DataError(f"{path} is a folder; pass a CSV file")
    layout = csv_layout(path, encoding)  # a BOM, a duplicate name or a million columns: before pandas
    try:
        return pd.read_csv(path, encoding=layout.encoding, sep=layout.sep, **read_kw), layout
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        raise DataError(f"could not read {path} as CSV ({str(e).splitlines()[0]})") from None


def _read_wide_frame(path: Path, time_column: Optional[str], encoding: str, **read_kw):
    path = Path(path)
    frame, _ = read_csv_frame(path, encoding, **read_kw)
    time_column = time_column or frame.columns[0]
    if time_column not in frame.columns:
        raise DataError(
            f"column {time_column!r} is not in {path.name}; its columns start "
            f"{list(frame.columns[:5])}. Pass --time-column"
        )
    return frame, time_column


def read_wide_csv(path: Path, time_column: Optional[str] = None, encoding: str = "utf-8"):
    """A wide CSV: one row per time, one column per variable, blank / NaN = missing.

    Returns a float64 DataFrame indexed by time (the first column unless ``time_column`` is given).
    A file that is not in this layout is refused with the fix: a time axis that repeats values
    (a long file), a time-like column that is not the time axis, or a text column among the variables."""
    path = Path(path)
    frame, time_column = _read_wide_frame(path, time_column, encoding)
    frame = _checked_wide(frame, time_column, path)
    if frame.shape[0] < 2:
        raise DataError(f"{path.name} needs at least two rows and one variable column")
    return frame


def _checked_wide(frame, time_column: str, path: Path, previous_time=None):
    """``frame`` (rows of a wide CSV, as pandas parsed them) checked and indexed by time, float64.
    ``previous_time``: the time of the row before (a file read in chunks), which must not repeat."""
    pd = _require("pandas")

    index = frame[time_column]
    repeated = index[index.duplicated()]
    if len(repeated) or (previous_time is not None and len(index) and index.iloc[0] == previous_time):
        value = repeated.iloc[0] if len(repeated) else previous_time
        raise DataError(
            f"the time column {time_column!r} of {path.name} repeats values ({value!r} appears "
            f"{max(2, int((index == value).sum()))} times or more): a wide CSV has one row per time. "
            + _long_hint(path)
        )
    timeish = [c for c in frame.columns if c != time_column and str(c).strip().lower() in _TIME_NAMES]
    if timeish and str(time_column).strip().lower() not in _TIME_NAMES:
        raise DataError(
            f"{path.name} is read with {time_column!r} as its time axis, but column {timeish[0]!r} looks "
            f"like the time. Pass --time-column {timeish[0]}"
        )
    frame = frame.set_index(time_column)
    bad = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise DataError(
            f"columns {bad[:5]} of {path.name} are not numeric; a wide CSV holds one numeric column "
            "per variable (blank = missing). " + _long_hint(path)
        )
    if frame.shape[1] == 0:  # (a header of one column: its delimiter was read from it, csv_layout)
        raise DataError(f"{path.name} needs at least two rows and one variable column")
    return frame.astype("float64")


def read_wide_chunks(path: Path, rows: int, time_column: Optional[str] = None, encoding: str = "utf-8"):
    """(values, text) for every ``rows`` rows of a wide CSV, in order, checked as :func:`read_wide_csv`
    checks the whole file (a repeated time is caught within a chunk and across adjacent chunks): values
    float64 and text exactly as written, both indexed by time. Memory is bounded by ``rows``."""
    pd = _require("pandas")

    path = Path(path)
    layout = csv_layout(path, encoding)
    time_column = time_column or (layout.header[0] if layout.header else None)
    if time_column not in layout.header:
        raise DataError(
            f"column {time_column!r} is not in {path.name}; its columns start {list(layout.header[:5])}. "
            "Pass --time-column"
        )
    try:
        numbers = pd.read_csv(path, encoding=layout.encoding, sep=layout.sep, chunksize=rows)
        texts = pd.read_csv(
            path, encoding=layout.encoding, sep=layout.sep, chunksize=rows, dtype=str, keep_default_na=False
        )
        previous, total = None, 0
        for values, text in zip(numbers, texts):  # the same rows, parsed twice
            values = _checked_wide(values, time_column, path, previous)
            previous = values.index[-1]
            total += len(values)
            yield values, text.set_index(time_column)
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        raise DataError(f"could not read {path} as CSV ({str(e).splitlines()[0]})") from None
    if total < 2:
        raise DataError(f"{path.name} needs at least two rows and one variable column")


def read_wide_text(path: Path, time_column: Optional[str] = None, encoding: str = "utf-8"):
    """The cells of a wide CSV exactly as written (str DataFrame indexed by the time column's text),
    for writing observed values back unchanged."""
    frame, time_column = _read_wide_frame(path, time_column, encoding, dtype=str, keep_default_na=False)
    return frame.set_index(time_column)


def read_long_csv(path: Path, time_column: str, variable_column: str, value_column: str, encoding: str = "utf-8"):
    """A long CSV (time, variable, value) pivoted to the wide layout; absent pairs are missing."""
    pd = _require("pandas")

    frame, _ = _read_wide_frame(path, time_column, encoding)
    for flag, column in (
        ("--time-column", time_column),
        ("--variable-column", variable_column),
        ("--value-column", value_column),
    ):
        if column not in frame.columns:
            raise DataError(
                f"column {column!r} is not in {Path(path).name}; its columns are {list(frame.columns)}. Pass {flag}"
            )
    if not pd.api.types.is_numeric_dtype(frame[value_column]):
        raise DataError(
            f"the value column {value_column!r} of {Path(path).name} is not numeric; pass "
            "--value-column with the column holding the measurements"
        )
    if frame.duplicated([time_column, variable_column]).any():
        raise DataError(f"{Path(path).name} has several values for one (time, variable) pair")
    ignored = [c for c in frame.columns if c not in (time_column, variable_column, value_column)]
    if ignored:
        print(
            f"note: --format long reads {time_column!r}, {variable_column!r} and {value_column!r} only; ignored "
            f"columns {ignored[:10]} (one row per entity and time with a column per variable: --id-column)",
            file=sys.stderr,
        )
    return frame.pivot(index=time_column, columns=variable_column, values=value_column).astype("float64")


def chronological_split(n_times: int, valid_fraction: float = 0.1, test_fraction: float = 0.2) -> dict:
    """Contiguous row ranges: train first, then valid, then test (no look-ahead)."""
    n_test, n_valid = int(test_fraction * n_times), int(valid_fraction * n_times)
    n_train = n_times - n_valid - n_test
    if min(n_train, n_valid, n_test) < 1:
        raise DataError(f"{n_times} time steps are too few for a train / valid / test split")
    return {"train": (0, n_train), "valid": (n_train, n_train + n_valid), "test": (n_train + n_valid, n_times)}


def make_windows(values: np.ndarray, length: int, stride: int) -> np.ndarray:
    """float[N, length, F] windows of ``values`` (T, F); the last window ends at T (nothing dropped)."""
    total = values.shape[0]
    if length < 1 or stride < 1:
        raise ValueError(f"window length and stride must be >= 1, got {length} and {stride}")
    if total < length:
        raise DataError(f"{total} time steps are shorter than one window of {length}")
    return np.stack([values[s : s + length] for s in window_starts(total, length, stride)]).astype(np.float32)


def window_starts(total: int, length: int, stride: int) -> list[int]:
    """First step of each window :func:`make_windows` cuts from ``total`` steps: every ``stride``, plus
    one ending at ``total`` when the stride does not land there."""
    starts = list(range(0, total - length + 1, stride))
    if starts[-1] != total - length:
        starts.append(total - length)
    return starts


class Standardizer:
    """Per-variable mean and standard deviation of the observed training values (NaN ignored)."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean, self.std = np.asarray(mean, np.float32), np.asarray(std, np.float32)

    @classmethod
    def fit(cls, train_values: np.ndarray) -> "Standardizer":
        flat = train_values.reshape(-1, train_values.shape[-1])
        if np.isnan(flat).all(axis=0).any():
            raise DataError(
                "a variable has no observed value in the training split; drop it (--drop-unobserved) or widen the split"
            )
        mean = np.nanmean(flat, axis=0)
        std = np.nanstd(flat, axis=0)
        return cls(mean, np.where(std > 0, std, 1.0))

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (values - self.mean) / self.std

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return values * self.std + self.mean

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}


HOLDOUT_PATTERNS = ("values", "blocks", "variables")


def holdout_mask(
    values: np.ndarray,
    fraction: float = 0.1,
    seed: int = 0,
    pattern: str = "values",
    block: tuple = (3, 14),
    variables: Optional[np.ndarray] = None,
) -> np.ndarray:
    """bool, True = a held-out value: about a ``fraction`` of the *observed* values of ``values``
    (windows float[N, L, F], NaN = missing), seeded.

    ``pattern``: ``"values"`` (each value on its own draw, the field's habit), ``"blocks"`` (a
    variable missing for ``block`` = (3, 14) consecutive steps, as when a sensor fails for days) or
    ``"variables"`` (a variable missing for a whole window). ``variables`` (bool[F]) restricts the
    held-out values to those variables. Save the mask, so every method is scored on the same holes."""
    if pattern not in HOLDOUT_PATTERNS:
        raise ValueError(f"pattern must be one of {HOLDOUT_PATTERNS}, got {pattern!r}")
    observed = ~np.isnan(values)
    if variables is not None:
        observed = observed & np.asarray(variables, dtype=bool)
    rng = np.random.default_rng(seed)
    if pattern == "values":
        return observed & (rng.random(values.shape) < fraction)
    n, length, features = values.shape
    held = np.zeros(values.shape, dtype=bool)
    target = fraction * observed.sum()
    candidates = np.flatnonzero(observed.any(axis=1).reshape(-1))  # (window, variable) pairs with data
    if not len(candidates) or target == 0:
        return held
    covered, tries = 0, 0
    while covered < target and tries < 100 * len(candidates) + 1000:
        tries += 1
        w, f = divmod(int(rng.choice(candidates)), features)
        if pattern == "variables":
            start, stop = 0, length
        else:
            size = int(rng.integers(block[0], block[1] + 1))
            start = int(rng.integers(0, max(1, length - size + 1)))
            stop = min(length, start + size)
        new = observed[w, start:stop, f] & ~held[w, start:stop, f]
        held[w, start:stop, f] |= observed[w, start:stop, f]
        covered += int(new.sum())
    return held
