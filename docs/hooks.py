"""mkdocs hooks: the committed ``results/`` plots join the site (pages include the results' markdown with
``--8<--``, so nothing is retyped), the command-line reference is generated from the argparse parser
itself, so every subcommand and flag appears with its help and default, and the docstrings' Sphinx roles
render as plain code names."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
PLOTS_URI = "assets/results"  # results/X/plot.png is served at assets/results/X/plot.png


def on_files(files: Files, config) -> Files:
    for plot in sorted(RESULTS.rglob("*.png")):
        uri = f"{PLOTS_URI}/{plot.relative_to(RESULTS).as_posix()}"
        files.append(File.generated(config, uri, abs_src_path=str(plot)))
    files.append(File.generated(config, "reference/cli.md", content=cli_reference()))
    return files


SPHINX_ROLE = re.compile(r":(?:class|meth|func|attr|data|mod|exc|obj):(?=<code)")


def on_page_content(html: str, page, config, files) -> str:
    """The docstrings use Sphinx roles (``:class:`Mask```); the API pages show the name alone, as code."""
    return SPHINX_ROLE.sub("", html)


def cli_reference() -> str:
    """The markdown of every ``dynmask`` command: usage, then each flag with its help and default."""
    from dynmask.cli import build_parser

    parser = build_parser()
    lines = [
        "# Command line",
        "",
        "Generated from the `dynmask` parser when the site is built (`docs/hooks.py`): every command and flag,",
        "with its help and default. `dynmask COMMAND --help` prints the same.",
        "",
    ]
    for name, sub in _commands(parser, "dynmask"):
        lines += _command(name, sub)
    return "\n".join(lines) + "\n"


def _commands(parser: argparse.ArgumentParser, prefix: str):
    for action in parser._actions:  # argparse keeps its subcommands here; there is no public accessor
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix} {name}", sub
                yield from _commands(sub, f"{prefix} {name}")


def _command(name: str, parser: argparse.ArgumentParser) -> list[str]:
    usage = parser.format_usage().replace("usage: ", "", 1).strip()
    out = [f"## `{name}`", ""]
    if parser.description:
        out += [parser.description.strip(), ""]
    out += ["```text", usage, "```", ""]
    rows = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        flag = ", ".join(f"`{s}`" for s in action.option_strings) or f"`{action.dest}`"
        text = (action.help or "").replace("|", "\\|").replace("\n", " ")
        text = text.replace("%(default)s", str(action.default)).replace("%%", "%")
        if action.choices and not isinstance(action.choices, dict):
            text += f" (one of: {', '.join(f'`{c}`' for c in action.choices)})"
        default = "" if action.default in (None, argparse.SUPPRESS) else f"`{action.default}`"
        rows.append(f"| {flag} | {text} | {default} |")
    if rows:
        out += ["| flag | what | default |", "| --- | --- | --- |", *rows, ""]
    return out
