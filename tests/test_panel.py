"""Panel files (issue 38): one row per (entity, time), a column per variable. Train and impute read them with
--id-column and write them back in their own shape; --format long names the columns it ignores."""

import numpy as np
import pandas as pd
import pytest

from dynmask.cli import main
from dynmask.data.panel import read_panel

SMALL = ["--window", "24", "--epochs", "2", "--d-model", "16", "--heads", "2", "--layers", "1", "--no-progress"]


def _panel(path, stations=("north", "south", "east"), hours=400, seed=0, sep=",", line_ending="\n"):
    rng = np.random.default_rng(seed)
    rows = []
    for s in stations:
        for t in range(hours):
            when = (pd.Timestamp("2023-01-01") + pd.Timedelta(hours=t)).strftime("%Y-%m-%d %H:%M")
            temp = 10 + 5 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.3)
            wind = abs(3 + np.sin(2 * np.pi * t / 24 + 1) + rng.normal(0, 0.3))
            rows.append({"station": s, "hour": when, "temp": f"{temp:.3f}" if rng.random() > 0.15 else "",
                         "wind": f"{wind:.3f}" if rng.random() > 0.15 else "NaN"})  # fmt: skip
    frame = pd.DataFrame(rows).sample(frac=1.0, random_state=seed)  # rows in no particular order
    frame.to_csv(path, index=False, sep=sep, lineterminator=line_ending)
    return path


@pytest.fixture(scope="module")
def panel_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("panel")
    data = _panel(folder / "stations.csv")
    run = folder / "run"
    assert main(["train", "impute", "--data", str(data), "--id-column", "station", "--time-column", "hour",
                 "--output", str(run), *SMALL]) == 0  # fmt: skip
    return run, data


def test_a_panel_reads_as_each_entitys_variables_in_time_order(tmp_path):
    wide = read_panel(_panel(tmp_path / "p.csv"), "station", "hour")
    assert list(wide.columns) == [f"{s} | {v}" for s in ("south", "east", "north") for v in ("temp", "wind")] or (
        sorted(wide.columns) == sorted(f"{s} | {v}" for s in ("north", "south", "east") for v in ("temp", "wind"))
    )
    assert list(wide.index) == sorted(wide.index) and wide.shape == (400, 6)


@pytest.mark.parametrize("sep,line_ending", [(",", "\n"), (";", "\r\n")])
def test_impute_writes_a_panel_back_in_its_own_shape(panel_run, tmp_path, capsys, sep, line_ending):
    run, _ = panel_run
    data = _panel(tmp_path / "new.csv", seed=1, sep=sep, line_ending=line_ending)
    out = tmp_path / "filled.csv"
    assert main(["impute", "--model", str(run), "--input", str(data), "--output", str(out),
                 "--id-column", "station", "--time-column", "hour"]) == 0  # fmt: skip
    raw_in, raw_out = data.read_bytes(), out.read_bytes()
    assert raw_out.count(line_ending.encode()) == raw_in.count(line_ending.encode())  # one line per row
    before = pd.read_csv(data, sep=sep, dtype=str, keep_default_na=False)
    after = pd.read_csv(out, sep=sep, dtype=str, keep_default_na=False)
    assert list(after.columns) == list(before.columns) and len(after) == len(before)
    assert (after[["station", "hour"]] == before[["station", "hour"]]).all().all()  # the same rows, same order
    for column in ("temp", "wind"):
        observed = ~before[column].isin(["", "NaN"])
        assert (after[column][observed] == before[column][observed]).all()  # observed cells as written
        assert after[column][~observed].astype(float).notna().all()  # every hole filled
    assert f"filled {int((before[['temp', 'wind']].isin(['', 'NaN'])).sum().sum())} of" in capsys.readouterr().out
    one = _panel(tmp_path / "one.csv", stations=("north",), seed=2, sep=sep)  # one station: the others absent
    assert main(["impute", "--model", str(run), "--input", str(one), "--output", str(tmp_path / "one-filled.csv"),
                 "--id-column", "station", "--time-column", "hour"]) == 0  # fmt: skip
    assert pd.read_csv(tmp_path / "one-filled.csv", sep=sep)[["temp", "wind"]].notna().all().all()
    other = _panel(tmp_path / "other.csv", stations=("north", "west"), seed=2)  # an entity it never saw
    assert main(["impute", "--model", str(run), "--input", str(other), "--output", str(tmp_path / "x.csv"),
                 "--id-column", "station", "--time-column", "hour"]) == 2  # fmt: skip
    assert "['west | temp', 'west | wind'] that the model was not trained on" in capsys.readouterr().err


def test_bad_panels_get_one_line(panel_run, tmp_path, capsys):
    run, data = panel_run
    doubled = tmp_path / "doubled.csv"
    frame = pd.read_csv(data)
    pd.concat([frame, frame.iloc[:1]]).to_csv(doubled, index=False)
    base = ["train", "impute", "--output", str(tmp_path / "o"), *SMALL]
    assert main([*base, "--data", str(doubled), "--id-column", "station", "--time-column", "hour"]) == 2
    assert "several rows for station" in capsys.readouterr().err
    assert main([*base, "--data", str(data), "--id-column", "site", "--time-column", "hour"]) == 2
    assert "--id-column 'site' is not in" in capsys.readouterr().err
    assert main([*base, "--data", str(data), "--id-column", "station", "--format", "long"]) == 2
    assert "--format long is another layout" in capsys.readouterr().err
    forecast = ["train", "forecast", "--data", str(data), "--id-column", "station", "--horizon", "3",
                "--output", str(tmp_path / "f")]  # fmt: skip
    assert main(forecast) == 2 and "forecasting reads a wide file" in capsys.readouterr().err
    frame.assign(label="x").to_csv(tmp_path / "text.csv", index=False)
    assert main([*base, "--data", str(tmp_path / "text.csv"), "--id-column", "station", "--time-column", "hour"]) == 2
    assert "hold text" in capsys.readouterr().err


def test_a_panel_read_as_wide_points_to_id_column(tmp_path, capsys):
    data = _panel(tmp_path / "p.csv")
    assert main(["train", "impute", "--data", str(data), "--time-column", "hour", "--output",
                 str(tmp_path / "o"), *SMALL]) == 2  # fmt: skip
    assert "--id-column" in capsys.readouterr().err


def test_long_format_names_the_columns_it_ignores(tmp_path, capsys):
    rows = [{"time": t, "variable": v, "value": float(t + i), "unit": "C", "site": "a"}
            for t in range(60) for i, v in enumerate(("x", "y"))]  # fmt: skip
    pd.DataFrame(rows).to_csv(tmp_path / "long.csv", index=False)
    argv = ["train", "impute", "--data", str(tmp_path / "long.csv"), "--format", "long", "--output",
            str(tmp_path / "o"), "--window", "10", "--epochs", "1", "--d-model", "16", "--heads", "2", "--layers",
            "1", "--no-progress"]  # fmt: skip
    main(argv)
    err = capsys.readouterr().err
    assert "ignored columns ['unit', 'site']" in err and "--id-column" in err


def test_entities_and_times_keep_the_text_they_are_written_with(tmp_path):
    """Ids '01' / '02' and times '0044' were read as the numbers 1, 2 and 44 for the model but kept as text
    for the file written back: impute failed on a KeyError. Both are now keyed by the text as written."""
    rng = np.random.default_rng(3)
    rows = ["site,t,x"] + [f"{s},{t:04d},{'' if rng.random() < 0.1 else round(float(rng.random()), 3)}"
                           for s in ("01", "02") for t in range(300)]  # fmt: skip
    (tmp_path / "p.csv").write_text("\n".join(rows) + "\n")
    assert list(read_panel(tmp_path / "p.csv", "site", "t").columns) == ["01 | x", "02 | x"]
    run = tmp_path / "run"
    assert main(["train", "impute", "--data", str(tmp_path / "p.csv"), "--id-column", "site", "--time-column", "t",
                 "--output", str(run), "--window", "20", "--epochs", "1", "--d-model", "16", "--heads", "2",
                 "--layers", "1", "--no-progress"]) == 0  # fmt: skip
    out = tmp_path / "filled.csv"
    assert main(["impute", "--model", str(run), "--input", str(tmp_path / "p.csv"), "--output", str(out),
                 "--id-column", "site", "--time-column", "t"]) == 0  # fmt: skip
    filled = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert filled["t"].tolist()[:2] == ["0000", "0001"] and (filled["x"] != "").all()
