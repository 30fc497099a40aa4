"""English -> LANG paragraph pairs from LibreOffice's help, as ``../shared``'s EN->DE set was built: Debian's
``libreoffice-help-en-us`` and ``libreoffice-help-LANG`` (MPL-2.0) are fetched with ``apt-get download``,
unpacked, and their help pages' paragraphs aligned by the paragraph ids both languages share; split by help
file (no file spans two splits; about 90 / 5 / 5), one TSV per split with ``source, target, document``.

    python experiments/libreoffice_pairs.py fr      # -> ~/.cache/dynmask/translation/libreoffice-help.en-fr.{split}.tsv

Third-party data: written to the cache, never committed.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import html.parser
import os
import subprocess
import tempfile
from pathlib import Path

VERSION = "4:7.4.7"  # the Debian 12 packages the EN->DE set was built from
CACHE = Path(os.environ.get("DYNMASK_CACHE", Path.home() / ".cache" / "dynmask")) / "translation"


class _Paragraphs(html.parser.HTMLParser):
    """{id: text} of the elements whose id starts with ``par_id`` or ``hd_id`` (paragraphs, headings)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: dict[str, list[str]] = {}
        self.open: list[tuple[str, str]] = []  # (tag, id) of the paragraphs being read

    def handle_starttag(self, tag, attrs):
        ident = dict(attrs).get("id") or ""
        if ident.startswith(("par_id", "hd_id")) and not self.open:
            self.open.append((tag, ident))
            self.found[ident] = []
        elif self.open and tag == self.open[-1][0]:
            self.open.append((tag, ""))  # a nested element of the same tag: its end is not ours

    def handle_endtag(self, tag):
        if self.open and tag == self.open[-1][0]:
            self.open.pop()

    def handle_data(self, data):
        if self.open:
            self.found[self.open[0][1]].append(data)


def paragraphs(path: Path) -> dict[str, str]:
    parser = _Paragraphs()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return {k: " ".join("".join(v).split()) for k, v in parser.found.items()}


def fetch(lang: str, work: Path) -> Path:
    packages = ["libreoffice-help-en-us", f"libreoffice-help-{lang}"]
    subprocess.run(["apt-get", "download", *packages], cwd=work, check=True, capture_output=True)
    for deb in work.glob("*.deb"):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "x")], check=True)
    return work / "x" / "usr" / "share" / "libreoffice" / "help"


def split_of(document: str) -> str:
    bucket = int(hashlib.sha256(document.encode()).hexdigest(), 16) % 20
    return "test" if bucket == 0 else "valid" if bucket == 1 else "train"


def build(lang: str) -> dict[str, int]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        help_root = fetch(lang, Path(tmp))
        english, target = help_root / "en-US", next(p for p in help_root.iterdir() if p.name.lower().startswith(lang))
        rows: dict[str, list] = {"train": [], "valid": [], "test": []}
        for page in sorted(english.rglob("*.html")):
            other = target / page.relative_to(english)
            if not other.exists():
                continue
            src, tgt = paragraphs(page), paragraphs(other)
            document = page.relative_to(english).as_posix()
            for ident, text in src.items():
                translated = tgt.get(ident, "")
                if len(text.split()) >= 2 and translated and translated != text:
                    rows[split_of(document)].append((text, translated, document))
    counts = {}
    for split, items in rows.items():
        path = CACHE / f"libreoffice-help.en-{lang}.{split}.tsv"
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, delimiter="\t", lineterminator="\n")
            w.writerow(["source", "target", "document"])
            w.writerows(items)
        counts[split] = len(items)
        print(f"{path}: {len(items):,} pairs")
    return counts


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("lang", help="a Debian libreoffice-help language: fr, es, it, pt, nl, ...")
    build(p.parse_args().lang)
