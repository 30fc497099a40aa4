import os
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))  # shared test helpers (guarantee.py)
torch.set_num_threads(min(2, torch.get_num_threads()))

# CI runs the same examples every time (reproducible); locally Hypothesis explores new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


# The small-run command lines the CLI tests share (seconds on 2 cores; what a test checks is not accuracy).
def small_classify_args(*, layers: int = 1, max_len: int = 16, test_missing: str = None) -> list:
    """``dynmask train classify`` flags for a 16-wide model on ``textdata.write_sentiment_csv`` data."""
    args = ["--d-model", "16", "--heads", "2", "--layers", str(layers), "--d-ff", "32", "--max-len", str(max_len),
            "--vocab-size", "120", "--no-progress", "--group-column", "doc"]  # fmt: skip
    return args + (["--test-missing", test_missing] if test_missing is not None else [])


def small_impute_args(data, run, epochs: int) -> list:
    """``dynmask train impute`` on ``data`` into ``run``: windows of 20, a 16-wide one-layer model."""
    return ["train", "impute", "--data", str(data), "--output", str(run), "--window", "20", "--epochs", str(epochs),
            "--d-model", "16", "--heads", "2", "--layers", "1", "--no-progress"]  # fmt: skip


# A small classifier run shared by the tests of one module (the hostile-input and reliability tests copy
# it before changing anything).
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from textdata import write_sentiment_csv

    return write_sentiment_csv(tmp_path_factory.mktemp("data") / "d.csv", n=160)


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory, data):
    from dynmask.cli import main

    out = tmp_path_factory.mktemp("runs") / "clf"
    argv = ["train", "classify", "--data", str(data), "--output", str(out), "--epochs", "1"]
    assert main([*argv, *small_classify_args(test_missing="0")]) == 0
    return out
