"""Pictures of imputation: observed values and filled holes over time, per variable (matplotlib,
the ``[tasks]`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .errors import DataError
from .extras import require

__all__ = ["plot_imputation"]


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
    """One panel per variable: observed values (line and dots), filled holes (orange crosses) and,
    when given, held-out truth (green rings) and the prediction interval at each hole (orange bars)
    over time. ``observed`` float[T, F] with NaN at holes; ``filled``, ``lower``, ``upper`` float[T, F]
    read at the holes only."""
    matplotlib = require("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [str(n) for n in names]
    chosen = list(variables) if variables else names[: min(4, len(names))]
    unknown = [v for v in chosen if v not in names]
    if unknown:
        raise DataError(f"--plot-variables {unknown} are not variables of the file; they are {names[:10]}")
    x = np.arange(len(times))
    fig, axes = plt.subplots(len(chosen), 1, figsize=(10, 2.2 * len(chosen)), dpi=110, sharex=True, squeeze=False)
    for ax, name in zip(axes[:, 0], chosen):
        j = names.index(name)
        holes = ~np.isfinite(observed[:, j])
        ax.plot(x, observed[:, j], "-", color="0.35", lw=0.8, label="observed")
        ax.plot(x, observed[:, j], ".", color="0.2", ms=2)
        if lower is not None and upper is not None:
            ax.vlines(x[holes], lower[holes, j], upper[holes, j], color="tab:orange", alpha=0.35, lw=1.2,
                      label="interval")  # fmt: skip
        ax.plot(x[holes], filled[holes, j], "x", color="tab:orange", ms=3, label="filled")
        if truth is not None:
            ax.plot(x[holes], truth[holes, j], "o", mfc="none", color="tab:green", ms=3, label="held-out truth")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="upper right", fontsize=8, ncol=4)
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
