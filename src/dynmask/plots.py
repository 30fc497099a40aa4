"""Pictures of imputation: observed values and filled holes over time, per variable (matplotlib,
the ``[tasks]`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .errors import DataError
from .extras import require

__all__ = ["plot_imputation", "longest_run"]


def longest_run(flags: np.ndarray) -> tuple[int, int]:
    """(start, end) of the longest run of True in ``flags`` (bool[T]); (0, 0) when there is none."""
    best, start = (0, 0), None
    for i, flag in enumerate(list(flags) + [False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            if i - start > best[1] - best[0]:
                best = (start, i)
            start = None
    return best


def _as_dates(times: Sequence):
    """The times as datetime64 when they all parse as dates (an axis of dates, not of strings), else None."""
    import warnings

    try:
        import pandas as pd
    except ImportError:
        return None
    if len(times) == 0 or np.issubdtype(np.asarray(times).dtype, np.number):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pd.to_datetime(pd.Index([str(t) for t in times])).to_numpy()
    except (ValueError, TypeError, OverflowError):
        return None


def plot_imputation(
    path: Path,
    times: Sequence,
    names: Sequence[str],
    observed: np.ndarray,
    filled: np.ndarray,
    *,
    truth: Optional[np.ndarray] = None,
    lower: Optional[np.ndarray] = None,
    upper: Optional[np.ndarray] = None,
    variables: Optional[Sequence[str]] = None,
    title: str = "",
) -> Path:
    """One row per variable: the whole series (left) and a zoom on its longest gap (right), with observed
    values (line and dots), filled holes (orange crosses) and, when given, held-out truth (green rings) and
    the prediction interval at each hole (orange bars); a time axis of dates when the times are dates.
    ``observed`` float[T, F] with NaN at holes; ``filled``, ``lower``, ``upper`` float[T, F]
    read at the holes only."""
    matplotlib = require("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [str(n) for n in names]
    chosen = list(variables) if variables else names[: min(4, len(names))]
    unknown = [v for v in chosen if v not in names]
    if unknown:
        raise DataError(f"--plot-variables {unknown} are not variables of the file; they are {names[:10]}")
    dates = _as_dates(times)
    x = dates if dates is not None else np.arange(len(times))
    fig, axes = plt.subplots(len(chosen), 2, figsize=(13, 2.3 * len(chosen)), dpi=110, squeeze=False,
                             gridspec_kw={"width_ratios": [3, 2]})  # fmt: skip
    for row, name in zip(axes, chosen):
        j = names.index(name)
        holes = ~np.isfinite(observed[:, j])
        start, end = longest_run(holes)
        pad = max(12, (end - start) // 2)
        window = slice(max(0, start - pad), min(len(x), end + pad))  # the longest gap, with context each side
        for ax, part in ((row[0], slice(None)), (row[1], window)):
            xs, h = x[part], holes[part]
            ax.plot(xs, observed[part, j], "-", color="0.35", lw=0.8, label="observed")
            ax.plot(xs, observed[part, j], ".", color="0.2", ms=2)
            if lower is not None and upper is not None:
                ax.vlines(xs[h], lower[part, j][h], upper[part, j][h], color="tab:orange", alpha=0.35, lw=1.2,
                          label="interval")  # fmt: skip
            ax.plot(xs[h], filled[part, j][h], "x", color="tab:orange", ms=3, label="filled")
            if truth is not None:
                ax.plot(xs[h], truth[part, j][h], "o", mfc="none", color="tab:green", ms=3, label="held-out truth")
            ax.grid(alpha=0.3)
            if dates is not None:
                locator = matplotlib.dates.AutoDateLocator()
                ax.xaxis.set_major_locator(locator)
                ax.xaxis.set_major_formatter(matplotlib.dates.ConciseDateFormatter(locator))
        row[0].set_ylabel(name)
        row[1].set_title(f"longest gap: {end - start} steps" if end > start else "no gap", fontsize=8)
    axes[0, 0].legend(loc="upper right", fontsize=8, ncol=4)
    if dates is None:
        step = max(1, len(times) // 8)
        axes[-1, 0].set_xticks(x[::step], [str(t) for t in list(times)[::step]], rotation=20, fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
