"""Is a forecasting run's validation choice at a gappy level noise from the one random thinning it is made
on (issue 37)? Each level of ``regimes.validate_regimes`` hides EXTRA_HOLES of the validation history with
one seeded draw; this repeats the validation with 8 draws per level for the benchmark's US change runs and
records, per draw, the fallback chosen, the model's and the best candidate's validation MAE and the
conformal factor. Draw 0 is the run's own.

    python benchmarks/forecasting.py dynmask --dataset uschange   # the three seeds' runs (seconds each)
    python experiments/forecast_thinning_draws.py                 # results/forecast-uschange/thinning_draws.*
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "experiments"))

from forecast_intervals import SEEDS, _uschange_data  # noqa: E402

from dynmask.tasks.forecast import regimes  # noqa: E402
from dynmask.tasks.forecast.task import ForecastTask  # noqa: E402
from dynmask.tasks.forecast.trained import load_forecaster  # noqa: E402

DRAWS = 8
OUT = ROOT / "results" / "forecast-uschange"


def main() -> None:
    rows, own = [], regimes.thinned_windows
    for seed in SEEDS:
        run = ROOT / "runs" / "forecast-uschange" / f"seed{seed}"
        config = json.loads((run / "best" / "config.json").read_text())
        kwargs = {k: config[k] for k in ("history_holes", "missing_unit", "block_length")}
        task = ForecastTask(_uschange_data(config), seed=seed, **kwargs)
        model = load_forecaster(run).model
        for draw in range(DRAWS):  # draw 0: the seed validate_regimes uses
            regimes.thinned_windows = lambda t, s, rate, seed=0, d=draw: own(t, s, rate, seed=seed + 7919 * d)
            try:
                levels = regimes.validate_regimes(task, model)
            finally:
                regimes.thinned_windows = own
            for level in levels:
                candidates = {k: v["mae"] for k, v in level["valid"].items() if k != "dynmask"}
                best = min(candidates, key=candidates.get)
                rows.append({"seed": seed, "draw": draw, "extra_holes": level["extra_holes"],
                             "fallback": level["fallback"], "model_mae": level["valid"]["dynmask"]["mae"],
                             "best_candidate": best, "best_candidate_mae": candidates[best],
                             "interval_scale": level["interval_scale"]})  # fmt: skip
    (OUT / "thinning_draws.json").write_text(json.dumps({"draws": DRAWS, "rows": rows}, indent=2))
    lines = ["| seed | extra holes | fallback chosen (draws) | model MAE (min-max) | best candidate MAE (min-max) |",
             "|---|---|---|---|---|"]  # fmt: skip
    for seed in SEEDS:
        for rate in regimes.EXTRA_HOLES:
            mine = [r for r in rows if r["seed"] == seed and r["extra_holes"] == rate]
            chosen = ", ".join(f"{k or 'model'} {n}" for k, n in Counter(r["fallback"] for r in mine).most_common())
            m, b = [r["model_mae"] for r in mine], [r["best_candidate_mae"] for r in mine]
            lines.append(f"| {seed} | {rate:.0%} | {chosen} | {min(m):.2f}-{max(m):.2f} | {min(b):.2f}-{max(b):.2f} |")
    md = f"US change validation, {DRAWS} draws of the extra holes per level\n\n" + "\n".join(lines) + "\n"
    (OUT / "thinning_draws.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
