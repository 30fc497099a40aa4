"""``dynmask impute``: fill the holes of a wide CSV with a trained imputer."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import DataError
from ..export import is_onnx, load_onnx_imputer
from ..tasks.arguments import markers
from ..tasks.impute.csv_io import impute_csv
from ..tasks.impute.panel_io import impute_panel_csv
from ..tasks.impute.trained import load_imputer


def register(sub) -> None:
    p = sub.add_parser("impute", help="fill the holes of a wide CSV with a trained imputer (CSV in, CSV out)")
    p.add_argument(
        "--model", type=Path, required=True, help="a `dynmask train impute` --output folder, or its .onnx export"
    )
    p.add_argument(
        "--input",
        type=Path,
        required=True,
        help="wide CSV: a time column, one column per variable, matched to the model's by name",
    )
    p.add_argument(
        "--output",
        type=Path,
        required=True,
        help="where to write the filled CSV: the input with only its holes filled, every other cell "
        "written back exactly as read (not the --input file)",
    )
    p.add_argument("--time-column", default=None, help="time column (default: the first column)")
    p.add_argument(
        "--id-column",
        default=None,
        help="a panel file (one row per entity and time, a column per variable), as the run was trained with "
        "`train impute --id-column`: written back in its own shape",
    )
    p.add_argument(
        "--use-model",
        action="store_true",
        help="fill with the model even when a simple baseline beat it on the run's validation values",
    )
    p.add_argument(
        "--intervals",
        action="store_true",
        help="write <variable>_lower / _upper columns: the run's prediction interval at each hole",
    )
    p.add_argument(
        "--calibrate",
        choices=("auto", "input", "validation"),
        default="auto",
        help="how --intervals are calibrated (split conformal): 'input' hides 10%% of the file's own observed "
        "values and calibrates on them (robust to a shift since training); 'validation' uses the factor "
        "saved at training; 'auto' (default): input when that gives at least 100 values",
    )
    p.add_argument(
        "--calibration-pattern",
        choices=("values", "blocks", "variables"),
        default="values",
        help="with --calibrate input/auto: hide single values, blocks of 3-14 steps or whole variables of "
        "a window; choose the kind of holes your file has (default: %(default)s)",
    )
    p.add_argument("--plot", type=Path, default=None, help="also draw observed and filled values to this PNG")
    p.add_argument("--plot-variables", default=None, help="comma-separated variables to draw (default: the first four)")
    p.add_argument(
        "--clip-to-train-range",
        action="store_true",
        help="clip each fill to the range of its variable in the training data (e.g. never negative rain or counts)",
    )
    p.add_argument(
        "--no-bounds",
        action="store_true",
        help="let fills leave the range the training data allows (by default a variable never negative in "
        "training is never filled negative, and one with a cap many values sit at is never filled above it)",
    )
    p.add_argument("--encoding", default="utf-8", help="text encoding of the files (default: %(default)s)")
    p.set_defaults(handler=_impute)


def _impute(args) -> None:
    trained = load_onnx_imputer(args.model) if is_onnx(args.model) else load_imputer(args.model)
    plot_variables = markers(args.plot_variables)
    if args.id_column is not None:
        if args.intervals:
            raise DataError("--intervals are not written into panel files (--id-column) yet; leave one out")
        counts = impute_panel_csv(
            trained, args.input, args.output, id_column=args.id_column, time_column=args.time_column,
            bounds=not args.no_bounds, clip_to_train_range=args.clip_to_train_range, encoding=args.encoding,
            use_model=args.use_model, plot=args.plot, plot_variables=plot_variables,
            protected=[args.model, Path(str(args.model) + ".assets")],
        )  # fmt: skip
    else:
        counts = impute_csv(
            trained,
            args.input,
            args.output,
            time_column=args.time_column,
            clip_to_train_range=args.clip_to_train_range,
            bounds=not args.no_bounds,
            encoding=args.encoding,
            plot=args.plot,
            plot_variables=plot_variables,
            intervals=args.intervals,
            use_model=args.use_model,
            calibrate=args.calibrate,
            calibration_pattern=args.calibration_pattern,
            protected=[args.model, Path(str(args.model) + ".assets")],
        )
    note = (
        f"; {counts['left_in_unknown_columns']} left in variables the model was not trained on"
        if counts["left_in_unknown_columns"]
        else ""
    )
    by = (
        ""
        if counts["filled_by"] == "model"
        else (f" by {counts['filled_by']} (it beat the model on the run's validation values)")
    )
    print(
        f"filled {counts['filled']} of {counts['holes']} missing values{by} in {args.input} -> {args.output}{note}; "
        "observed cells written back as read"
    )
    if counts.get("mostly_missing"):
        print(
            f"warning: {counts['mostly_missing'][:10]} are missing in more than half of the rows: their fills are "
            "mostly the model's guesses; if a variable is recorded only under some conditions, leave it out",
            file=sys.stderr,
        )
    if "calibration" in counts:
        c = counts["calibration"]
        how = (
            f"on {c['n']} of the input's own observed values, hidden as {c['pattern']}"
            if c["on"] == "input"
            else "on the run's validation values" + (f" ({c['why']})" if "why" in c else "")
        )
        print(f"intervals calibrated {how}: factor {c['scale']:.3f}")
