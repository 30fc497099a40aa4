"""The command line: the guarantee check, help and version."""

import json
import subprocess
import sys

from dynmask.cli import main


def test_guarantee_quick_writes_results(tmp_path, capsys):
    assert main(["guarantee", "--quick", "--output", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "guarantee.json").read_text())
    rows = {r["variant"]: r for r in result["guarantee"]}
    assert rows["dynamic"]["max_change_zero_to_1e30"] == 0.0
    assert rows["dynamic"]["nan_outputs_with_nan_inputs"] == 0
    assert rows["dynamic"]["max_diff_vs_observed_tokens_alone"] < 1e-5
    assert rows["static"]["nan_outputs_with_nan_inputs"] > 0
    assert float(rows["seed_literal"]["max_diff_vs_observed_tokens_alone"]) > 1e-3
    assert [r["missing"] for r in result["speed"]["rows"]] == [0.0, 0.5, 0.75]
    assert "dynamic" in capsys.readouterr().out


def test_console_help_and_version():
    out = subprocess.run([sys.executable, "-m", "dynmask.cli", "--help"], capture_output=True, text=True, check=True)
    for command in ("demo", "train", "evaluate", "predict", "data", "guarantee"):
        assert command in out.stdout
    out = subprocess.run([sys.executable, "-m", "dynmask.cli", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "dynmask 0.1.0"
