"""Reliability, round 3 (issue 35): the edges an outside audit broke. Every failure here is one line
``error: ...`` naming the file or argument and the fix, with exit 2; never a traceback, never exit 1
with an exception's name. Each test failed on the code before its fix."""

import json
import shutil
from pathlib import Path

import pytest

from dynmask.cli import main


@pytest.fixture(autouse=True)
def _forget_allow_unsigned():
    """``--allow-unsigned`` sets DYNMASK_ALLOW_UNSIGNED for the process: not for the tests after this one."""
    import os

    before = os.environ.get("DYNMASK_ALLOW_UNSIGNED")
    yield
    if before is None:
        os.environ.pop("DYNMASK_ALLOW_UNSIGNED", None)
    else:
        os.environ["DYNMASK_ALLOW_UNSIGNED"] = before


def _unsigned_copy(run: Path, dst: Path) -> Path:
    """A copy of ``run`` whose ``best/`` has no manifest (so a damaged file reaches its reader)."""
    shutil.copytree(run, dst)
    (dst / "best" / "manifest.json").unlink()
    return dst


def _one_line_error(capsys, *needles) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert "Error;" not in err and "--debug" not in err, f"reported as a bug: {err}"
    for needle in needles:
        assert needle in err, err
    return err


def _predict(run, *extra):
    return main(["--allow-unsigned", "predict", "--model", str(run), "--text", "a good film", *extra])


def test_a_damaged_weights_header_names_the_file(classifier_run, tmp_path, capsys):
    run = _unsigned_copy(classifier_run, tmp_path / "r")
    weights = run / "best" / "model.safetensors"
    weights.write_bytes(b"garbage!" + weights.read_bytes()[8:])  # the header length is now absurd
    assert _predict(run) == 2
    _one_line_error(capsys, str(weights), "not a readable safetensors file")


@pytest.mark.parametrize(
    "name, content, needle",
    [
        ("tokenizer_config.json", {"missing_markers": "[MISSING]", "max_len": 16}, "missing_markers"),
        ("tokenizer_config.json", {"missing_markers": ["[MISSING]"], "max_len": "16"}, "max_len"),
        ("tokenizer_config.json", [1, 2], "must hold a JSON object"),
        ("config.json", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("labels.json", "\xff\xfe", "not valid JSON"),
    ],
)
def test_wrong_types_and_deep_nesting_in_run_files_are_named(classifier_run, tmp_path, capsys, name, content, needle):
    run = _unsigned_copy(classifier_run, tmp_path / "r")
    path = run / "best" / name
    if isinstance(content, str):
        path.write_bytes(content.encode("latin-1"))
    else:
        path.write_text(json.dumps(content))
    assert _predict(run) == 2
    _one_line_error(capsys, name, needle)


def test_a_config_whose_width_the_heads_do_not_divide_is_refused_on_load(classifier_run, tmp_path, capsys):
    run = _unsigned_copy(classifier_run, tmp_path / "r")
    config = json.loads((run / "best" / "config.json").read_text())
    config["model"]["n_heads"] = 3  # d_model is 16
    (run / "best" / "config.json").write_text(json.dumps(config))
    assert _predict(run) == 2
    _one_line_error(capsys, "config.json", "divisible")


def test_train_refuses_heads_that_do_not_divide_the_width_before_writing(data, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "classify", "--data", str(data), "--output", str(out), "--d-model", "16", "--heads", "3"]
    assert main(argv) == 2
    _one_line_error(capsys, "--d-model 16", "--heads 3")
    assert not out.exists()  # the tokenizer used to be written before the model failed


def test_predict_input_in_another_encoding_names_the_flag(classifier_run, tmp_path, capsys):
    path = tmp_path / "latin.txt"
    path.write_bytes("un film très bon\n".encode("latin-1"))
    assert main(["predict", "--model", str(classifier_run), "--input", str(path)]) == 2
    _one_line_error(capsys, str(path), "--encoding")
    assert main(["predict", "--model", str(classifier_run), "--input", str(path), "--encoding", "latin-1"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["text"] == "un film très bon"


def test_an_empty_predict_input_is_named(classifier_run, tmp_path, capsys):
    path = tmp_path / "empty.txt"
    path.write_text("")
    assert main(["predict", "--model", str(classifier_run), "--input", str(path)]) == 2
    _one_line_error(capsys, str(path), "no text")


def test_command_misuse_exits_2_not_1(classifier_run, tmp_path, capsys):
    # these were SystemExit("error: ...") and exited 1, while the README promises 2
    assert main(["predict", "--model", str(classifier_run)]) == 2
    _one_line_error(capsys, "nothing to predict")
    assert main(["predict", "--model", str(classifier_run), "--input", str(tmp_path / "absent.txt")]) == 2
    _one_line_error(capsys, "absent.txt", "is not a file")
    assert main(["demo", "--methods", "nonsense", "--output", str(tmp_path / "d")]) == 2
    _one_line_error(capsys, "--methods", "nonsense")
    assert main(["data", "fetch", "no-such-set"]) == 2
    _one_line_error(capsys, "no-such-set")


# ------------------------------------------------------------------------- CSV files: round trip or a clear error
@pytest.fixture(scope="module")
def imputer(tmp_path_factory):
    import numpy as np
    from conftest import small_impute_args

    folder = tmp_path_factory.mktemp("imp")
    rng = np.random.default_rng(0)
    rows = ["time,temp,rain"]
    for i in range(400):
        temp = "" if rng.random() < 0.2 else f"{10 + 5 * np.sin(i / 9):.3f}"
        rain = "" if rng.random() < 0.2 else f"{abs(rng.normal()):.1f}"
        rows.append(f"t{i:04d},{temp},{rain}")
    data = folder / "train.csv"
    data.write_text("\n".join(rows) + "\n")
    assert main(small_impute_args(data, folder / "run", epochs=1)) == 0
    return folder / "run", rows


def test_impute_writes_back_the_inputs_bom_and_line_endings(imputer, tmp_path):
    import csv

    run, rows = imputer
    source = tmp_path / "in.csv"
    source.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(rows[:60]).encode() + b"\r\n")  # as Excel saves it
    out = tmp_path / "out.csv"
    assert main(["impute", "--model", str(run), "--input", str(source), "--output", str(out)]) == 0
    written = out.read_bytes()
    assert (
        written.startswith(b"\xef\xbb\xbf")
        and written.count(b"\r\n") == 60
        and b"\n" not in written.replace(b"\r\n", b"")
    )
    before = list(csv.reader(source.read_text(encoding="utf-8-sig").splitlines()))
    after = list(csv.reader(written.decode("utf-8-sig").splitlines()))
    assert after[0] == before[0] == ["time", "temp", "rain"]  # the BOM is not read into the first name
    for b, a in zip(before[1:], after[1:]):
        assert [x for x in b if x] == [y for x, y in zip(b, a) if x]  # observed cells exactly as read
        assert all(a)  # every hole filled


@pytest.mark.parametrize("command", ["impute", "train-impute", "train-classify"])
def test_a_column_named_twice_is_refused_not_renamed(imputer, data, tmp_path, capsys, command):
    run, rows = imputer
    if command == "train-classify":
        lines = data.read_text().splitlines()
        bad = tmp_path / "d.csv"
        bad.write_text("\n".join([lines[0] + ",label"] + [line + ",x" for line in lines[1:]]) + "\n")
        argv = ["train", "classify", "--data", str(bad), "--output", str(tmp_path / "r")]
    else:
        bad = tmp_path / "dup.csv"
        bad.write_text("\n".join(["time,temp,temp"] + [r for r in rows[1:60]]) + "\n")
        argv = (
            ["impute", "--model", str(run), "--input", str(bad), "--output", str(tmp_path / "o.csv")]
            if command == "impute"
            else ["train", "impute", "--data", str(bad), "--output", str(tmp_path / "r")]
        )
    assert main(argv) == 2
    _one_line_error(capsys, str(bad), "more than once")


def test_a_million_column_header_is_refused_before_parsing(imputer, tmp_path, capsys, monkeypatch):
    import pandas as pd

    run, _ = imputer
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(f"c{i}" for i in range(10**6)) + "\n" + ",".join("1" for _ in range(10**6)) + "\n")

    def never(*args, **kwargs):
        raise AssertionError("pandas was asked to parse a million-column file")

    monkeypatch.setattr(pd, "read_csv", never)
    assert main(["impute", "--model", str(run), "--input", str(wide), "--output", str(tmp_path / "o.csv")]) == 2
    _one_line_error(capsys, str(wide), "1,000,000 columns")


def test_a_bom_does_not_hide_the_text_column(tmp_path):
    from dynmask.data.tables import read_table

    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbftext,label\r\ngood film,pos\r\nbad film,neg\r\n")
    texts, labels, _ = read_table(path, "text", "label")
    assert texts == ["good film", "bad film"] and labels == ["pos", "neg"]


# ------------------------------------------------------------------------- resume
def test_resume_takes_the_same_data_moved_elsewhere_and_names_changed_data(data, classifier_run, tmp_path, capsys):
    from conftest import small_classify_args

    run = tmp_path / "run"
    shutil.copytree(classifier_run, run)
    moved = tmp_path / "elsewhere" / "renamed.csv"
    moved.parent.mkdir()
    shutil.copy(data, moved)
    argv = [
        "train",
        "classify",
        "--output",
        str(run),
        "--resume",
        "--epochs",
        "2",
        *small_classify_args(test_missing="0"),
    ]
    assert main([*argv, "--data", str(moved)]) == 0  # was refused: data.data differed
    capsys.readouterr()
    lines = moved.read_text().splitlines()
    changed = tmp_path / "changed.csv"
    last = lines[-1].replace(",neg,", ",@,").replace(",pos,", ",neg,").replace(",@,", ",pos,")  # its label flipped
    assert last != lines[-1]
    changed.write_text("\n".join(lines[:-1] + [last]) + "\n")
    assert main([*argv, "--epochs", "3", "--data", str(changed)]) == 2
    _one_line_error(capsys, "cannot resume", "differ from those the run started on")


def test_a_full_disk_is_one_line_naming_the_file_and_the_fix(data, tmp_path, capsys, monkeypatch):
    import errno
    import os

    real_replace = os.replace

    def full(src, dst, *args, **kwargs):
        if "checkpoint" in str(dst):  # the first checkpoint's write
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", full)
    from conftest import small_classify_args

    out = tmp_path / "run"
    argv = ["train", "classify", "--data", str(data), "--output", str(out), "--epochs", "1"]
    assert main([*argv, *small_classify_args(test_missing="0")]) == 2
    _one_line_error(capsys, "No space left on device", str(out / "checkpoint"), "free some space")


# ------------------------------------------------------------------------- impute streams its input
@pytest.mark.parametrize("rows", [365, 381, 400, 17])
def test_impute_streams_blocks_and_writes_what_the_whole_file_gives(imputer, tmp_path, monkeypatch, rows):
    """impute read the whole CSV and filled it at once (issue 35, item 7): now blocks of whole windows,
    the last one read with the rows before it when shorter than a window, so that the file written is
    byte for byte the one the whole file gives (here the window is 20)."""
    import dynmask.tasks.impute.csv_io as csv_io
    from dynmask.tasks.impute.trained import load_imputer

    run, lines = imputer
    source = tmp_path / "in.csv"
    body = [f"t{i:05d}," + line.split(",", 1)[1] for i, line in enumerate((lines[1:] * 2)[:rows])]
    source.write_text("\n".join([lines[0], *body]) + "\n")
    trained = load_imputer(run)
    whole, streamed = tmp_path / "whole.csv", tmp_path / "streamed.csv"
    csv_io.impute_csv(trained, source, whole, stream_rows=10**6)
    sizes = []
    real = csv_io.fill_windows
    monkeypatch.setattr(
        csv_io, "fill_windows", lambda m, s, w, values, *a: sizes.append(len(values)) or real(m, s, w, values, *a)
    )
    counts = csv_io.impute_csv(trained, source, streamed, stream_rows=45)  # blocks of 40 rows
    assert streamed.read_bytes() == whole.read_bytes()
    assert max(sizes) <= 40 and (rows <= 40 or len(sizes) > 1)
    assert counts["holes"] == sum(line.count(",,") + line.endswith(",") for line in body)


def test_resume_of_another_tasks_run_names_the_task(imputer, data, tmp_path, capsys):
    run, _ = imputer
    assert main(["train", "classify", "--data", str(data), "--output", str(run), "--resume"]) == 2
    _one_line_error(capsys, "holds a 'impute' run", "'classify'")


def test_an_output_folder_that_is_a_file_is_named_and_a_semicolon_file_reads(imputer, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    assert main(["guarantee", "--quick", "--output", str(taken)]) == 2
    _one_line_error(capsys, str(taken), "pass another --output")
    assert taken.read_text() == "mine"
    run, rows = imputer
    semi = tmp_path / "semi.csv"  # as a spreadsheet in a comma-decimal locale saves it: read, and written back so
    semi.write_text("\n".join(r.replace(",", ";") for r in rows[:50]) + "\n")
    assert main(["impute", "--model", str(run), "--input", str(semi), "--output", str(tmp_path / "o.csv")]) == 0
    written = (tmp_path / "o.csv").read_text().splitlines()
    assert written[0] == "time;temp;rain" and all(line.count(";") == 2 and ";;" not in line for line in written)


def test_a_bad_flag_is_one_line_not_a_usage_block(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--model", "x", "--missing", "2"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--missing" in err and "must lie in [0, 1]" in err and "--help" in err


# ------------------------------------------------------------------------- imputation respects the data (issue 38)
def test_fills_stay_in_the_range_the_data_allows_unless_opted_out(imputer, tmp_path, monkeypatch, capsys):
    import numpy as np

    import dynmask.tasks.impute.csv_io as csv_io

    run, rows = imputer
    source = tmp_path / "in.csv"
    source.write_text("\n".join(rows[:80]) + "\n")
    monkeypatch.setattr(csv_io, "fill_windows", lambda m, s, w, values, *a: np.full(values.shape, -5.0))
    for extra, expected in (([], 0.0), (["--no-bounds"], -5.0)):
        out = tmp_path / f"out{len(extra)}.csv"
        argv = ["impute", "--model", str(run), "--input", str(source), "--output", str(out), "--use-model", *extra]
        assert main(argv) == 0
        filled = [line.split(",") for line in out.read_text().splitlines()[1:]]
        given = [line.split(",") for line in rows[1:80]]
        holes = [float(f[j]) for f, g in zip(filled, given) for j in (1, 2) if g[j] == ""]
        assert holes and all(v == expected for v in holes)  # rain and temp were never negative in training


def test_capped_variables_are_found_in_training():
    import numpy as np

    from dynmask.tasks.impute.task import prepare_imputation_data

    rng = np.random.default_rng(0)
    humidity = np.minimum(100.0, rng.normal(90, 8, 600))  # a sensor that saturates at 100
    temp = rng.normal(10, 5, 600)
    data = prepare_imputation_data(np.stack([humidity, temp], axis=1), 20, 5, names=["humidity", "temp"])
    assert data["train_capped"] == [True, False]


def test_a_mostly_missing_variable_is_named(imputer, tmp_path, capsys):
    run, rows = imputer
    thin = [rows[0]] + [
        ",".join([r.split(",")[0], r.split(",")[1], "" if i % 4 else r.split(",")[2]]) for i, r in enumerate(rows[1:81])
    ]
    source = tmp_path / "thin.csv"
    source.write_text("\n".join(thin) + "\n")
    assert main(["impute", "--model", str(run), "--input", str(source), "--output", str(tmp_path / "o.csv")]) == 0
    err = capsys.readouterr().err
    assert "warning: ['rain'] are missing in more than half of the rows" in err


def test_training_says_what_it_read_and_ends_with_a_table_and_the_next_command(data, tmp_path, capsys):
    """train printed nothing about the data and ended in a raw JSON dump (issue 38, item 1)."""
    from conftest import small_classify_args

    out = tmp_path / "run"
    argv = ["train", "classify", "--data", str(data), "--output", str(out), "--epochs", "1"]
    assert main([*argv, *small_classify_args(test_missing="0,0.3")]) == 0
    said = capsys.readouterr().out
    assert said.startswith("data d: 128 train / 16 valid / 16 test texts; labels")
    assert "majority class" in said and "30% missing" in said and f"next: dynmask predict --model {out}" in said
    assert '"global_step"' not in said  # the JSON is in the run folder, not on the terminal
    assert json.loads((out / "summary.json").read_text())["global_step"] > 0
    assert main([*argv, *small_classify_args(test_missing="0"), "--overwrite"]) == 0  # summary.json is a run file


def test_the_weights_get_the_permissions_of_the_other_run_files(classifier_run):
    """safetensors wrote the weights 0600 while every other file of a run had the umask's mode (issue 38, item 7)."""
    import stat

    best = classifier_run / "best"
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(best / "model.safetensors") == mode(best / "config.json")


def test_a_reader_that_stops_early_ends_predict_quietly(classifier_run, tmp_path):
    """`dynmask predict ... | head -1` printed 'error: [Errno 32] Broken pipe'; now it stops as `yes | head`
    does: no message, the status of a process whose pipe closed (141)."""
    import subprocess
    import sys

    texts = tmp_path / "texts.txt"
    texts.write_text("a great film\n" * 5000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "dynmask", "predict", "--model", str(classifier_run), "--input", str(texts)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    first = proc.stdout.readline()
    proc.stdout.close()  # the reader goes away, as head does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and b'"label"' in first
    assert "Broken pipe" not in err and "error" not in err
