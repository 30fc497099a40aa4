"""Docs that cannot rot: every ``python`` and ``bash`` example in the README and the site (docs/) runs here,
in page order, on the tiny files of ``docs/examples/`` (a copy, in a fresh folder per page). A block
preceded by ``<!-- not run: REASON -->`` is skipped (installs, hour-long reproductions); the reason is
required, and the skipped blocks are few and listed by ``test_only_a_few_blocks_are_not_run``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")], key=lambda p: p.relative_to(ROOT).as_posix())
RUN = ("python", "bash")
NOT_RUN = re.compile(r"<!--\s*not run:\s*(\S.*?)\s*-->")


def blocks(page: Path) -> list[tuple[str, str, str | None, int]]:
    """(language, code, reason it is not run or None, line) of every fenced block of ``page``, in order."""
    tokens = MarkdownIt().parse(page.read_text(encoding="utf-8"))
    out = []
    for i, token in enumerate(tokens):
        if token.type != "fence":
            continue
        language = token.info.split()[0] if token.info.strip() else ""
        before = tokens[i - 1] if i else None
        reason = None
        if before is not None and before.type == "html_block":
            match = NOT_RUN.search(before.content)
            reason = match.group(1) if match else None
        out.append((language, token.content, reason, token.map[0] + 1))
    return out


def _runnable(page: Path) -> bool:
    return any(lang in RUN and reason is None for lang, _, reason, _ in blocks(page))


@pytest.mark.parametrize("page", [p for p in PAGES if _runnable(p)], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_examples_run(page, tmp_path, monkeypatch):
    shutil.copytree(ROOT / "docs" / "examples", tmp_path / "docs" / "examples")
    monkeypatch.chdir(tmp_path)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env["MPLBACKEND"] = "Agg"
    namespace = {"__name__": "__main__"}
    for language, code, reason, line in blocks(page):
        if language not in RUN or reason is not None:
            continue
        where = f"{page.relative_to(ROOT)}:{line}"
        if language == "python":
            try:
                exec(compile(code, where, "exec"), namespace)
            except Exception as e:
                raise AssertionError(f"the python example at {where} fails: {type(e).__name__}: {e}") from e
        else:
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", code], env=env, capture_output=True, text=True, timeout=300
            )
            output = f"{done.stdout[-2000:]}{done.stderr[-3000:]}"
            assert done.returncode == 0, f"the bash example at {where} fails:\n{output}"


def test_only_a_few_blocks_are_not_run():
    skipped = [
        (p.relative_to(ROOT).as_posix(), line, reason)
        for p in PAGES
        for lang, _, reason, line in blocks(p)
        if lang in RUN and reason is not None
    ]
    examples = sum(1 for p in PAGES for lang, _, _, _ in blocks(p) if lang in RUN)
    assert examples >= 30 and len(skipped) <= examples // 3, skipped
    assert all(len(reason) >= 10 for _, _, reason in skipped), skipped


def test_every_example_block_says_its_language():
    """A fence without a language would be neither run nor highlighted: say python, bash or text."""
    unlabelled = [(p.relative_to(ROOT).as_posix(), line) for p in PAGES for lang, _, _, line in blocks(p) if not lang]
    assert not unlabelled, unlabelled


@pytest.mark.parametrize("results", ["demo-rotten_tomatoes", "real-holes-rotten_tomatoes/lexicon"])
def test_the_readme_tables_are_the_committed_results_files(results):
    """The README cannot include files, so each of its tables is checked against the file it copies."""
    table = (ROOT / "results" / results / "results.md").read_text(encoding="utf-8").strip()
    assert table in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_forecasting_table_is_the_committed_results_file():
    table = (ROOT / "results" / "forecast-pm10" / "results.md").read_text(encoding="utf-8").split("\n\n")[1]
    assert table.startswith("| method | real gaps")
    assert table.strip() in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "results, start", [("export-compile.md", "| missing | onnxruntime / eager"), ("serve-load.md", "")]
)
def test_the_readme_deploy_tables_are_the_committed_benchmark_files(results, start):
    text = (ROOT / "benchmarks" / "results" / results).read_text(encoding="utf-8")
    assert text[text.index(start) :].strip() in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_stays_a_front_page():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 300
