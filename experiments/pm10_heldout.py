"""The scored PM10 test cells of the simple baselines, one CSV per method, so anyone can re-score them:
``results/imputation-pm10/heldout/{method}-seed0.csv`` with columns date, station, truth, prediction
(µg/m³). The same windows and saved held-out mask as experiments/series.py (asserted). Model and
PyPOTS predictions go beside these when their runs are made (issue 14).

    python experiments/pm10_heldout.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from series import PM10, ROOT, _pm10_data

from dynmask.data.series import read_wide_csv
from dynmask.tasks.series import ImputationTask, impute_linear, impute_locf, impute_mean

OUT = ROOT / "results" / "imputation-pm10"


def main() -> None:
    frame = read_wide_csv(PM10)
    data = _pm10_data()
    saved = np.load(OUT / "test_holdout_mask.npy")
    assert np.array_equal(saved, data["test_holdout"]), "the held-out mask differs from the committed one"
    a, b = data["ranges"]["test"]
    length, total = data["window"], b - a
    starts = list(range(0, total - length + 1, length))
    if starts[-1] != total - length:
        starts.append(total - length)
    dates = np.array([[str(frame.index[a + s + i]) for i in range(length)] for s in starts])  # (N, L)
    stations = np.array([str(frame.columns[i]) for i in data["kept_columns"]])  # the file's station ids
    windows = data["test"].copy()
    windows[saved] = np.nan
    mean = ImputationTask(data).scaler.mean
    w, t, f = np.nonzero(saved)
    (OUT / "heldout").mkdir(exist_ok=True)
    for name, fill in (("mean", impute_mean), ("locf", impute_locf), ("linear", impute_linear)):
        pred = fill(windows, mean)
        table = pd.DataFrame(
            {"date": dates[w, t], "station": stations[f], "truth": data["test"][w, t, f], "prediction": pred[w, t, f]}
        )
        table.to_csv(OUT / "heldout" / f"{name}-seed0.csv", index=False, float_format="%.6g")
        print(name, len(table), float(np.abs(table.truth - table.prediction).mean()))


if __name__ == "__main__":
    main()
