"""The ``dynmask`` command line.

dynmask demo                     train and compare the masking methods on the default data
dynmask train classify ...       train a text classifier (missing tokens handled by a dynamic mask)
dynmask train translate|summarize ...   train an encoder-decoder over sources with missing tokens
dynmask train classify-series | impute ...   series with NaN: classification, imputation
dynmask impute --model DIR --input A.csv --output B.csv   fill only the holes of a CSV
dynmask forecast --model DIR --input A.csv --output B.csv   the next rows of a CSV from its gappy history
dynmask evaluate --model DIR     score a trained model at test-time missing rates
dynmask predict --model DIR      label texts (missing markers honoured)
dynmask data list | fetch NAME   the built-in data sets
dynmask guarantee                show the guarantee per variant and the compaction speed-up
dynmask serve --model DIR        a run behind HTTP: /predict, /impute, /forecast (micro-batched)
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from typing import Optional, Sequence

from .. import __version__
from ..errors import USER_ERRORS
from ..training.run_folders import ALLOW_UNSIGNED
from . import demo, evaluate, forecast, impute, serve, tools, train


class _OneLineParser(argparse.ArgumentParser):
    """argparse, with a bad flag answered in one line (the error and where the help is), exit 2: the usage
    block of a command with 40 flags buried the one useful line. ``--help`` still prints everything."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="dynmask",
        description="Transformers over sequences with missing values, with dynamic masks (True = observed).",
    )
    parser.add_argument("--version", action="version", version=f"dynmask {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    parser.add_argument(
        "--allow-unsigned",
        action="store_true",
        help="load run folders that have no manifest.json (written before dynmask signed its runs); "
        "without it such a folder is refused, since its files cannot be checked",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for command in (demo, train, evaluate, impute, forecast, tools, serve):
        command.register(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one command. A user error prints one line (``error: ...``, what is wrong and the fix) and
    returns 2; ``--debug`` (anywhere on the line) re-raises it with its traceback. Ctrl-C stops
    cleanly with 130; a training run then resumes from its last checkpoint with ``--resume``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if "--allow-unsigned" in argv:  # run folders without a manifest load (for this process)
        os.environ[ALLOW_UNSIGNED] = "1"
    argv = [a for a in argv if a not in ("--debug", "--allow-unsigned")]
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except KeyboardInterrupt:
        if debug:
            raise
        hint = ""
        if args.command == "train":
            hint = f"; run the same command with --resume to continue from the last checkpoint in {args.output}"
        elif args.command == "demo":
            hint = "; run the same command again to continue (finished runs are kept)"
        print(f"\ninterrupted{hint}", file=sys.stderr)
        return 130
    except SystemExit:
        raise
    except BrokenPipeError:  # `dynmask predict ... | head`: the reader has what it wanted; stop as `yes | head` does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second broken pipe when Python flushes at exit
        return 141  # 128 + SIGPIPE, the shell's status of a process its pipe closed, without a message
    except Exception as e:  # one line for the user; the traceback with --debug
        if debug:
            raise
        message = _message(e)
        known = _is_user_error(e)
        print(
            f"error: {message}" + ("" if known else f" ({type(e).__name__}; run with --debug for the traceback)"),
            file=sys.stderr,
        )
        return 2 if known else 1
    return 0


# what the machine refuses (not a bug of dynmask's): a full disk, no permission, a folder for a file
_OS_FIXES = {
    errno.ENOSPC: "free some space or write elsewhere",
    errno.EDQUOT: "free some space or write elsewhere",
    errno.EACCES: "check the permissions, or write elsewhere",
    errno.EPERM: "check the permissions, or write elsewhere",
    errno.EROFS: "the file system is read-only: write elsewhere",
    errno.EISDIR: "pass a file, not a folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.ENAMETOOLONG: "use a shorter path",
    errno.EEXIST: "a file stands where a folder is needed: pass another --output",
}


def _is_user_error(e: Exception) -> bool:
    return isinstance(e, USER_ERRORS) or (isinstance(e, OSError) and e.errno in _OS_FIXES)


def _message(e: Exception) -> str:
    """The first line of ``e``; an error from the machine says what it was about and the fix."""
    if isinstance(e, OSError) and not isinstance(e, USER_ERRORS) and e.errno in _OS_FIXES:
        where = f" ({e.filename})" if e.filename else ""
        return f"{e.strerror or os.strerror(e.errno)}{where}: {_OS_FIXES[e.errno]}"
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
