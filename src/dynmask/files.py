"""The files of a run folder or an export: their JSON read with errors that name the file, and the weights
written with the mode every other file of the run gets.

Every such read goes through :func:`read_json`: a missing, undecodable, malformed or absurdly nested
file is one :class:`~dynmask.errors.RunFolderError` naming its path (the command line prints it on one
line and exits 2), never a traceback from the json module."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import RunFolderError

__all__ = ["read_json", "read_json_object", "as_created"]


def read_json(path: Path) -> Any:
    """JSON from ``path``, or a :class:`RunFolderError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise RunFolderError(f"{path} does not exist")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunFolderError(f"{path} is not valid JSON ({e})") from None
    except RecursionError:  # [[[[... nested beyond Python's stack: no file dynmask writes looks like it
        raise RunFolderError(f"{path} is nested too deeply to be a file dynmask wrote") from None


def read_json_object(path: Path) -> dict:
    """:func:`read_json` of a file that must hold one JSON object (a config, a tokenizer's settings)."""
    value = read_json(path)
    if not isinstance(value, dict):
        raise RunFolderError(f"{path} must hold a JSON object, not {type(value).__name__}")
    return value


def as_created(path: Path) -> None:
    """Give ``path`` the permissions a new file gets from ``open`` (0666 less the umask): safetensors writes
    its files 0600, so the weights alone were unreadable to the group where every other file of a run is."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
