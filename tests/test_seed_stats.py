"""Results tables: a single seed's spread is unknown and is shown as the mean alone, never as ± 0."""

import json
import math

import pytest

from dynmask.demos.text import format_table, plot, summarise
from dynmask.seed_stats import format_mean_sd, mean_sd


def test_mean_sd_is_the_sample_deviation_and_unknown_for_one_value():
    mean, sd = mean_sd([0.70, 0.74, 0.72])
    assert mean == pytest.approx(0.72)
    assert sd == pytest.approx(0.02)  # sample (n - 1) deviation, not population (0.0163)
    assert mean_sd([0.7]) == (0.7, None)
    assert mean_sd([0.7, 0.7]) == (0.7, 0.0)  # two equal seeds: measured zero spread
    with pytest.raises(ValueError, match="xs"):
        mean_sd([])


def test_format_mean_sd_scales_and_drops_unknown_spread():
    assert format_mean_sd(0.7251, 0.0123, scale=100) == "72.5 ± 1.2"
    assert format_mean_sd(0.7251, None, scale=100) == "72.5"
    assert format_mean_sd(3.15649, 0.0, digits=3) == "3.156 ± 0.000"


def _run(method, seed, accs):
    return {
        "method": method,
        "seed": seed,
        "test": [{"missing_rate": r, "accuracy": a, "macro_f1": a - 0.01} for r, a in zip((0.0, 0.4), accs)],
    }


def test_demo_table_shows_one_seed_without_spread_and_three_with_it(tmp_path):
    runs = [_run("dynamic", 0, (0.80, 0.70))] + [_run("static", s, (0.78 + s / 100, 0.66)) for s in range(3)]
    summary = summarise(runs, ("dynamic", "static"), (0.0, 0.4))
    assert summary["dynamic"]["0"]["accuracy_std"] is None
    assert json.loads(json.dumps(summary))["dynamic"]["0.4"]["macro_f1_std"] is None  # null in results.json
    assert math.isclose(summary["static"]["0"]["accuracy_std"], 0.01)
    assert summary["static"]["0.4"]["accuracy_std"] == 0.0
    lines = format_table(summary, (0.0, 0.4)).splitlines()
    assert lines[2] == "| dynamic | 80.0 / 79.0 | 70.0 / 69.0 |"
    assert lines[3] == "| static | 79.0 ± 1.0 / 78.0 ± 1.0 | 66.0 ± 0.0 / 65.0 ± 0.0 |"
    pytest.importorskip("matplotlib")
    plot(summary, (0.0, 0.4), tmp_path / "plot.png", "one seed and three")
    assert (tmp_path / "plot.png").stat().st_size > 0
