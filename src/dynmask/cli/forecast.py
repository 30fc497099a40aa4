"""``dynmask forecast``: the next rows of a wide CSV from its gappy history, with a trained forecaster."""

from __future__ import annotations

from pathlib import Path

from ..export import is_onnx, load_onnx_forecaster
from ..tasks.forecast.csv_io import forecast_csv
from ..tasks.forecast.trained import load_forecaster


def register(sub) -> None:
    p = sub.add_parser("forecast", help="forecast the next rows of a wide CSV with a trained forecaster")
    p.set_defaults(handler=_forecast)
    p.add_argument(
        "--model", type=Path, required=True, help="a `dynmask train forecast` --output folder, or its .onnx export"
    )
    p.add_argument(
        "--input",
        type=Path,
        required=True,
        help="wide CSV of the history: a time column, one column per variable (matched by name), blank = missing",
    )
    p.add_argument(
        "--output",
        type=Path,
        required=True,
        help="CSV of the forecast: the next horizon rows, the time column continued at the history's step",
    )
    p.add_argument("--time-column", default=None, help="time column (default: the first column)")
    p.add_argument(
        "--interval",
        action="store_true",
        help="also write <variable>_lo / _hi: the run's prediction interval (its level, calibrated on held-out "
        "forecasts)",
    )
    p.add_argument(
        "--use-model",
        action="store_true",
        help="forecast with the model even when a simple baseline beat it on the run's validation forecasts",
    )
    p.add_argument("--encoding", default="utf-8", help="text encoding of the files (default: %(default)s)")


def _forecast(args) -> None:
    trained = load_onnx_forecaster(args.model) if is_onnx(args.model) else load_forecaster(args.model)
    done = forecast_csv(
        trained,
        args.input,
        args.output,
        time_column=args.time_column,
        intervals=args.interval,
        use_model=args.use_model,
        encoding=args.encoding,
        protected=[args.model, Path(str(args.model) + ".assets")],
    )
    by = "" if done["forecast_by"] == "model" else f" by {done['forecast_by']} (it beat the model on validation)"
    print(
        f"forecast {done['horizon']} steps{by} from the last {done['rows_read']} rows of {args.input} -> {args.output}"
    )
    if done["time"] != "continued":
        print(f"note: the time column has no regular step: {done['time']}")
    if done["not_forecast"]:
        print(f"note: left blank, never observed in the run's training data: {done['not_forecast'][:10]}")
    if done["unobserved_in_history"]:
        print(
            f"note: never observed in the history read: {done['unobserved_in_history'][:10]} (forecast from the others)"
        )
