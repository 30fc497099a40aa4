"""Run folders as untrusted input: integrity manifests, config validation, and the rules that keep a
run folder from being overwritten or resumed with settings it cannot continue.

A model folder (``checkpoint/``, ``best/``) holds ``manifest.json``: the sha256 of every other file in
it. :func:`verify_manifest` refuses a folder whose files do not match (a flipped byte, a truncated
file), naming the file. Configs read from a run folder are checked field by field against the
dataclass they build (:func:`config_from_dict`): type, range and a size budget, before anything is
allocated, so a tampered ``config.json`` gives a :class:`RunFolderError` instead of a 38 GB
allocation or a ``KeyError``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import typing
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from ..errors import RunFolderError
from ..files import read_json

__all__ = [
    "RunFolderError",
    "write_manifest",
    "verify_manifest",
    "config_from_dict",
    "read_json",
    "check_finite_weights",
    "prepare_run_folder",
    "refuse_links",
    "fingerprint",
    "compare_for_resume",
    "RUN_FILES",
    "KNOWN_TASKS",
    "RESUMABLE_CHANGES",
]

MANIFEST = "manifest.json"
# the names of the registered tasks, filled by dynmask.tasks.registry.register (a run of another task is refused)
KNOWN_TASKS: set[str] = set()

# What a run folder holds (``--overwrite`` removes exactly these, never anything else of the folder).
RUN_FILES = (
    "checkpoint",
    "checkpoint.prev",
    "checkpoint.tmp",
    "checkpoint.old",
    "best",
    "best.tmp",
    "best.old",
    "epochs",
    "tokenizer",
    "metrics.jsonl",
    "test_results.json",
    "test_holdout_mask.npy",
    "test_forecasts.npz",
    "summary.json",
    "tensorboard",
)

# Settings a resumed run may change: they do not alter what has been computed so far.
RESUMABLE_CHANGES = {
    ("train", "epochs"),
    ("train", "max_steps"),
    ("train", "progress"),
    ("train", "patience"),
    ("train", "checkpoint_every"),
    ("train", "log_every"),
    ("train", "average_last"),  # what happens after the last epoch, not to the weights trained so far
    ("train", "keep_checkpoints"),  # what is kept once it has finished
    ("no_repeat_ngram",),  # seq2seq decoding, not training
    ("calibration_folds",),  # forecast: how the interval is calibrated after training (its own folders)
}

# Settings added to run configs after runs were saved without them, with the value that reproduces what
# those runs did: a saved run that lacks one resumes under that value (and only under it).
ADDED_SETTINGS = {
    ("memory",): False,  # seq2seq: no memory input
    ("warm_start",): None,  # seq2seq: trained from scratch
    ("model", "encoder"): None,  # seq2seq: dynmask's own encoder shape, not a pretrained checkpoint's
    ("confidence_threshold",): None,  # classify: no engine confidences, or a threshold chosen on validation
    ("train", "keep_checkpoints"): True,  # runs before it kept their optimizer state and checkpoint.prev
    ("train", "min_epoch_steps"): 0,  # runs before it: an epoch was one pass over the training set
    ("no_repeat_ngram",): 0,  # seq2seq: decoding without the repetition guard
}

# Upper bounds for sizes read from an untrusted config: far above any model dynmask trains, far below
# what would exhaust a machine.
LIMITS = {
    "max_len": 65_536,
    "d_model": 8_192,
    "d_ff": 65_536,
    "n_heads": 256,
    "n_layers": 64,
    "enc_layers": 64,
    "dec_layers": 64,
    "vocab_size": 2_000_000,
    "tgt_vocab_size": 2_000_000,
    "num_classes": 100_000,
    "num_features": 100_000,
}
MAX_PARAMETERS = 2_000_000_000  # about 8 GB in float32


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


def refuse_links(folder: Path) -> None:
    """Raise :class:`RunFolderError` if ``folder`` is, or holds anywhere inside it, a symbolic link: a run
    folder from someone else could point one outside, and dynmask would then read or write there."""
    folder = Path(folder)
    if folder.is_symlink():
        raise RunFolderError(f"{folder} is a symbolic link; dynmask does not follow links in run folders")
    if not folder.is_dir():
        return
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            path = Path(root) / name
            if path.is_symlink():
                raise RunFolderError(
                    f"{path} is a symbolic link; dynmask does not follow links in run folders (replace it "
                    "with the file itself, or start a new run)"
                )


def write_manifest(folder: Path) -> None:
    """Write ``folder/manifest.json``: the sha256 of every file in ``folder`` (recursively)."""
    folder = Path(folder)
    files = {p.relative_to(folder).as_posix(): _sha256(p) for p in _files(folder)}
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps({"sha256": files}, indent=2))
    os.replace(tmp, folder / MANIFEST)


ALLOW_UNSIGNED = "DYNMASK_ALLOW_UNSIGNED"  # =1 (the CLI's --allow-unsigned): folders without a manifest load


def verify_manifest(folder: Path, required: Optional[bool] = None) -> None:
    """Raise :class:`RunFolderError` naming the file unless every file listed in ``folder``'s manifest is
    present with its recorded sha256. A folder without a manifest is refused (deleting the manifest must
    not switch the check off), unless ``required=False`` or the user allows unsigned folders
    (``DYNMASK_ALLOW_UNSIGNED=1``, the command line's ``--allow-unsigned``: runs written before dynmask
    signed them)."""
    folder = Path(folder)
    refuse_links(folder)
    manifest = folder / MANIFEST
    if not manifest.exists():
        if required is None:
            required = os.environ.get(ALLOW_UNSIGNED) != "1"
        if required:
            raise RunFolderError(
                f"{manifest} is missing: the folder's files cannot be checked (a folder dynmask wrote has one). "
                "If you trust it (a run from before dynmask signed its runs), pass --allow-unsigned"
            )
        return
    listed = read_json(manifest).get("sha256")
    if not isinstance(listed, dict):
        raise RunFolderError(f"{manifest} is damaged: expected {{'sha256': {{file: digest}}}}")
    for name, digest in listed.items():
        parts = Path(name).parts if isinstance(name, str) else ("..",)
        if not isinstance(name, str) or Path(name).is_absolute() or ".." in parts or not parts:
            # a manifest names files inside its folder only: hashing ../x would tell whether x exists
            raise RunFolderError(f"{manifest} lists {name!r}, which is not a file inside {folder}")
        path = folder / name
        if not path.is_file():
            raise RunFolderError(f"{path} is listed in {manifest} but missing")
        if _sha256(path) != digest:
            raise RunFolderError(
                f"{path} does not match its sha256 in {manifest}: the file is damaged or was "
                "changed after it was written"
            )


def _type_ok(value: Any, annotation: Any) -> bool:
    if annotation is typing.Any:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Union or (origin is not None and str(origin) == "types.UnionType"):
        return any(_type_ok(value, a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if annotation is str:
        return isinstance(value, str)
    return True


def _parameter_estimate(c: dict) -> int:
    d = c.get("d_model", 0)
    d_ff = c.get("d_ff") or 2 * d
    layers = sum(c.get(k, 0) for k in ("n_layers", "enc_layers", "dec_layers"))
    vocab = c.get("vocab_size", 0) + (c.get("tgt_vocab_size") or 0)
    heads = (c.get("num_classes") or 0) * d  # the classification head
    # series: the value embedding reads values, indicators and up to two extra channels per feature; the
    # imputer's output layers give a value and two quantiles per feature (an upper bound, not a count)
    series = 4 * c.get("num_features", 0) * d + 3 * c.get("num_features", 0) * d
    return vocab * d + layers * (4 * d * d + 2 * d * d_ff) + c.get("max_len", 0) * d + heads + series


def config_from_dict(cls, data: Any, source: str):
    """``cls(**data)`` for a dataclass ``cls``, after checking ``data`` as untrusted input: a JSON object
    with every required field, no unknown one, each of its declared type, sizes within :data:`LIMITS`
    and the whole model within :data:`MAX_PARAMETERS`. ``source`` names the file in errors."""
    if not isinstance(data, dict):
        raise RunFolderError(f"{source}: the model config must be a JSON object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise RunFolderError(f"{source}: unknown model setting(s) {unknown} for {cls.__name__}")
    required = [
        n for n, f in fields.items() if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    absent = [n for n in required if n not in data]
    if absent:
        raise RunFolderError(f"{source}: model setting(s) {absent} missing")
    for name, value in data.items():
        if not _type_ok(value, hints[name]):
            raise RunFolderError(f"{source}: model setting {name!r} must be {hints[name]}, got {value!r}")
        low = 0 if name == "num_classes" else 1  # an imputer has no classes
        if name in LIMITS and value is not None and not low <= value <= LIMITS[name]:
            raise RunFolderError(f"{source}: model setting {name!r} = {value} is outside [{low}, {LIMITS[name]}]")
        if name == "dropout" and not 0 <= value < 1:
            raise RunFolderError(f"{source}: model setting 'dropout' = {value} is outside [0, 1)")
    size = _parameter_estimate(
        {**{n: f.default for n, f in fields.items() if f.default is not dataclasses.MISSING}, **data}
    )
    if size > MAX_PARAMETERS:
        raise RunFolderError(
            f"{source}: the model config describes about {size:,} parameters (more than "
            f"{MAX_PARAMETERS:,}); refusing to build it"
        )
    try:
        return cls(**data)
    except (TypeError, ValueError) as e:
        raise RunFolderError(f"{source}: {e}") from None


def check_finite_weights(model: nn.Module, source: str) -> None:
    """Refuse weights holding NaN or infinity (a model with them answers NaN for every input)."""
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise RunFolderError(
                    f"{source}: weight {name!r} holds NaN or infinity; the run diverged or the file was changed"
                )


def fingerprint(*parts: Any) -> str:
    """A short sha256 of data (texts, labels, arrays as lists): a resumed run must see the same data."""
    h = hashlib.sha256()
    for part in parts:
        if hasattr(part, "tobytes"):
            h.update(part.tobytes())
        else:
            h.update(json.dumps(part, ensure_ascii=False, default=str).encode("utf-8"))
    return h.hexdigest()[:16]


def prepare_run_folder(output: Path, *, resume: bool, overwrite: bool, clear: bool = True) -> None:
    """Apply the run-folder rules before a training run writes anything.

    * ``resume``: the folder must exist (else a :class:`RunFolderError` says so);
    * a folder that already holds a run (any of :data:`RUN_FILES`) is refused unless ``resume`` or
      ``overwrite``; ``overwrite`` removes those files (and nothing else) first, when ``clear``
      (under torchrun every process checks, rank 0 clears).
    """
    output = Path(output)
    if resume and overwrite:
        raise RunFolderError("--resume and --overwrite contradict each other: pick one")
    if output.exists() and not output.is_dir():
        raise RunFolderError(f"--output {output} is a file; pass a folder")
    refuse_links(output)  # before anything is read or written there
    if resume:
        if not output.is_dir():
            raise RunFolderError(f"--resume: {output} does not exist; drop --resume to start a new run there")
        return
    present = [name for name in RUN_FILES if (output / name).exists()]
    if not present:
        mark_run_folder(output, clear)
        return
    if overwrite and not holds_dynmask_run(output):
        raise RunFolderError(
            f"--overwrite: {output} holds {', '.join(present)} but no run dynmask wrote (no {RUN_MARKER}, no "
            "signed best/ or checkpoint/); dynmask removes only what it wrote: pick another --output"
        )
    if not overwrite:
        raise RunFolderError(
            f"--output {output} already holds a run ({', '.join(present)}); pass --resume to "
            "continue it, --overwrite to replace it, or another --output"
        )
    for name in present if clear else ():
        path = output / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    mark_run_folder(output, clear)


RUN_MARKER = ".dynmask-run"  # written into every run folder dynmask trains into: what --overwrite may remove


def mark_run_folder(output: Path, write: bool = True) -> None:
    """Create ``output`` and its :data:`RUN_MARKER` (rank 0 only under torchrun)."""
    if write:
        Path(output).mkdir(parents=True, exist_ok=True)
        (Path(output) / RUN_MARKER).write_text("a dynmask run folder: --overwrite removes only dynmask's files\n")


def holds_dynmask_run(output: Path) -> bool:
    """True when ``output`` is a run folder dynmask wrote: its marker, or (runs from before the marker) a
    signed ``best/`` or a ``checkpoint/`` with its state."""
    output = Path(output)
    return (
        (output / RUN_MARKER).is_file()
        or (output / "best" / MANIFEST).is_file()
        or (output / "checkpoint" / "state.json").is_file()
    )


def _flatten(obj: Any, prefix: tuple = ()) -> dict:
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            out.update(_flatten(v, prefix + (k,)))
        return out
    return {prefix: obj}


def compare_for_resume(saved: dict, new: dict, source: str) -> None:
    """Refuse to resume a run whose saved config differs from the new one in anything but
    :data:`RESUMABLE_CHANGES`, naming the setting and both values; a setting of :data:`ADDED_SETTINGS`
    missing from the saved config counts as its old behaviour. Where both name the same data content
    (``data.fingerprint``), the data's location and spelling may differ: a moved file resumes."""
    a, b = _flatten(saved), _flatten(json.loads(json.dumps(new)))  # the new one as it would be saved
    if saved.get("task") is not None and saved.get("task") != new.get("task"):
        raise RunFolderError(
            f"cannot resume {source}: it holds a {saved.get('task')!r} run, and this command trains a "
            f"{new.get('task')!r} model; pass that command's --output, or another --output"
        )
    a = {**{k: v for k, v in ADDED_SETTINGS.items() if k in b}, **a}  # saved before the setting existed
    fingerprint = ("data", "fingerprint")
    same_data = a.get(fingerprint) is not None and a.get(fingerprint) == b.get(fingerprint)
    if a.get(fingerprint) is not None and b.get(fingerprint) is not None and not same_data:
        raise RunFolderError(
            f"cannot resume {source}: the data (its rows, labels or split) differ from those the run started on; "
            "pass the run's data, or start a new run (another --output, or --overwrite)"
        )
    for key in sorted(set(a) | set(b), key=str):
        if key in RESUMABLE_CHANGES or (key[:1] in {("epoch",), ("valid",), ("averaged_epochs",)}):
            continue
        if same_data and key[:1] == ("data",):  # the same rows read from a file moved or renamed
            continue
        if a.get(key, "<absent>") != b.get(key, "<absent>"):
            name = ".".join(str(k) for k in key)
            raise RunFolderError(
                f"cannot resume {source}: {name} was {a.get(key, '<absent>')!r} when the run started "
                f"and is now {b.get(key, '<absent>')!r}. Use the original setting, or start a new "
                "run (another --output, or --overwrite)"
            )


def resume_source(folder: Path) -> Optional[Path]:
    """The checkpoint folder a resume would read first (for messages), or None."""
    for name in ("checkpoint", "checkpoint.prev", "checkpoint.old"):
        if (Path(folder) / name / "state.json").exists():
            return Path(folder) / name
    return None
