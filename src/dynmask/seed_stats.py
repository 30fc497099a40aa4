"""Mean and spread over seeds, for results tables.

A single seed's spread is unknown, not zero: ``mean_sd`` returns ``None`` for it (JSON ``null``), and
``format_mean_sd`` then prints the mean alone instead of "± 0.0".
"""

from __future__ import annotations

import statistics
from typing import Optional, Sequence

__all__ = ["mean_sd", "format_mean_sd"]


def mean_sd(xs: Sequence[float]) -> tuple[float, Optional[float]]:
    """(mean, sample standard deviation) of ``xs``; the deviation is ``None`` for fewer than two values."""
    xs = list(xs)
    if not xs:
        raise ValueError("mean_sd: xs is empty; expected at least one value")
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else None)


def format_mean_sd(mean: float, sd: Optional[float], digits: int = 1, scale: float = 1.0) -> str:
    """'mean ± sd' with ``digits`` decimals after multiplying both by ``scale``; the mean alone when
    ``sd`` is ``None`` (one seed)."""
    text = f"{scale * mean:.{digits}f}"
    return text if sd is None else f"{text} ± {scale * sd:.{digits}f}"
