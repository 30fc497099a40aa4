"""A fuzz harness for the file formats users hand to dynmask (issue 35): CSV / TSV / JSONL with random
quoting, encodings, byte-order marks, line endings, blank and NA spellings and duplicate headers. Every
file is either read back exactly as written or refused with a DataError (one line naming the file);
never a traceback, never a silently changed cell."""

import csv
import io
import json
import os

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dynmask.data.confidence import read_engine_output
from dynmask.data.series import read_wide_csv, read_wide_text
from dynmask.data.tables import read_table
from dynmask.errors import DataError

FUZZ = settings(
    max_examples=int(os.environ.get("DYNMASK_FUZZ_EXAMPLES", 60)),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)

# cells users write: words, quotes, separators, line breaks inside quotes, NA spellings, accents, emoji
CELL_TEXT = st.one_of(
    st.text(alphabet=list("ab zé,;\t\"'\n\r😀\u00a0"), max_size=12),
    st.sampled_from(["NA", "nan", "null", "N/A", "", " "]),
)
LABELS = st.sampled_from(["pos", "neg", "neutral", " pos ", "neg\t", "pos", "neg", "neutral", "NA", "", "n/a"])


def _write_delimited(rows, header, *, sep, quoting, line_ending, encoding, bom):
    buffer = io.StringIO()
    if any("\r" in cell for row in rows for cell in row):
        quoting = csv.QUOTE_ALL  # Python's writer leaves a bare CR unquoted under "\n" endings: not a CSV
    writer = csv.writer(buffer, delimiter=sep, quoting=quoting, lineterminator=line_ending)
    writer.writerow(header)
    writer.writerows(rows)
    data = buffer.getvalue().encode(encoding)
    return (b"\xef\xbb\xbf" if bom else b"") + data


@FUZZ
@given(
    rows=st.lists(st.tuples(CELL_TEXT, LABELS), min_size=1, max_size=6),
    tsv=st.booleans(),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]),
    line_ending=st.sampled_from(["\n", "\r\n"]),
    encoding=st.sampled_from(["utf-8", "latin-1", "utf-16"]),
    bom=st.booleans(),
    duplicate=st.booleans(),
)
def test_text_tables_round_trip_or_are_refused(
    tmp_path_factory, rows, tsv, quoting, line_ending, encoding, bom, duplicate
):
    header = ["text", "label"] + (["text"] if duplicate else [])
    rows = [(t, y) + ((t,) if duplicate else ()) for t, y in rows]
    if bom and encoding != "utf-8":
        bom = False  # a UTF-8 BOM belongs to UTF-8 files
    try:
        raw = _write_delimited(rows, header, sep="\t" if tsv else ",", quoting=quoting, line_ending=line_ending,
                               encoding=encoding, bom=bom)  # fmt: skip
    except UnicodeEncodeError:
        return  # not writable in that encoding: nothing to read
    path = tmp_path_factory.mktemp("fuzz") / ("d.tsv" if tsv else "d.csv")
    path.write_bytes(raw)
    try:
        texts, labels, _ = read_table(path, "text", "label", encoding=encoding)
    except DataError as e:
        assert "\n" not in str(e).strip() and str(e), repr(e)
        event(f"refused: {str(e).split(';')[0][-60:]}")
        return
    event("read back")
    assert not duplicate, "a header naming a column twice was read"
    assert texts == [r[0] for r in rows]
    assert labels == [r[1].strip() for r in rows]


@st.composite
def _record(draw):
    """(words, confidences): mostly well formed; else one confidence too many or too few, out of [0, 1]
    (inf included), or not a number. NaN is not damage: it reads as a missing word (the reader's contract)."""
    words = draw(st.lists(st.text(alphabet="abcé😀?", min_size=1, max_size=5), min_size=1, max_size=5))
    confidences = draw(st.lists(st.floats(0, 1), min_size=len(words), max_size=len(words)))
    damage = draw(st.sampled_from(["none", "none", "none", "length", "value"]))
    if damage == "length":
        confidences = confidences[:-1] if draw(st.booleans()) else confidences + [0.5]
    elif damage == "value":
        bad = draw(st.one_of(st.floats(allow_nan=False, allow_infinity=True).filter(lambda v: not 0 <= v <= 1),
                             st.text(max_size=3), st.none()))  # fmt: skip
        confidences[draw(st.integers(0, len(confidences) - 1))] = bad
    return words, confidences


@FUZZ
@given(records=st.lists(_record(), min_size=1, max_size=4), bom=st.booleans())
def test_word_confidence_jsonl_reads_exactly_or_is_refused(tmp_path_factory, records, bom):
    lines = []
    for words, confidences in records:
        lines.append(json.dumps({"words": words, "confidences": confidences}, ensure_ascii=False))
    path = tmp_path_factory.mktemp("fuzz") / "ocr.jsonl"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + ("\n".join(lines) + "\n").encode("utf-8"))
    try:
        read = read_engine_output(path, text_column="text", confidence_column=None)
    except DataError as e:
        assert str(e) and "\n" not in str(e).strip()
        event("refused")
        return
    event("read back")
    assert read is not None and len(read) == len(records)
    for (text, confidences), (words, given_confidences) in zip(read, records):
        assert text == " ".join(words)
        assert len(confidences) == len(words) == len(given_confidences)
        assert all(isinstance(c, float) and 0 <= c <= 1 for c in given_confidences)
        assert list(confidences) == [float(c) for c in given_confidences]


NA_SPELLINGS = ["", "NaN", "nan", "NA", "N/A", "null", "-nan", "inf", "-inf"]


@FUZZ
@given(
    cells=st.lists(
        st.lists(
            st.one_of(
                st.sampled_from(NA_SPELLINGS), st.floats(-1e6, 1e6).map(repr), st.integers(-(10**12), 10**12).map(str)
            ),
            min_size=2,
            max_size=2,
        ),
        min_size=3,
        max_size=8,
    ),  # fmt: skip
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
    line_ending=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
    header=st.sampled_from([["time", "a", "b"], ["time", "a", "a"], ["time", "a", " b"]]),
)
def test_wide_series_tables_keep_every_observed_cell_or_are_refused(
    tmp_path_factory, cells, quoting, line_ending, bom, header
):
    rows = [[f"t{i}"] + r for i, r in enumerate(cells)]
    path = tmp_path_factory.mktemp("fuzz") / "s.csv"
    path.write_bytes(
        _write_delimited(rows, header, sep=",", quoting=quoting, line_ending=line_ending, encoding="utf-8", bom=bom)
    )
    try:
        values = read_wide_csv(path)
        text = read_wide_text(path)
    except DataError as e:
        assert str(e) and "\n" not in str(e).strip()
        event("refused")
        return
    event("read back")
    assert len(set(header)) == len(header), "a header naming a column twice was read"
    assert list(values.columns) == header[1:] and list(text.columns) == header[1:]
    numbers = values.to_numpy()
    for i, row in enumerate(rows):
        for j, cell in enumerate(row[1:]):
            assert text.iloc[i, j] == cell  # the text as written (written back by impute)
            if cell.strip().lower() in {s.lower() for s in NA_SPELLINGS}:
                assert not np.isfinite(numbers[i, j])  # every NA spelling is a hole, never a number
            else:
                assert numbers[i, j] == float(cell)


@FUZZ
@given(
    rows=st.lists(st.tuples(CELL_TEXT, st.sampled_from(["pos", "neg"])), min_size=1, max_size=6),
    sep=st.sampled_from([",", ";", "\t", "|"]),
)
def test_the_delimiter_of_a_csv_is_read_from_its_header(tmp_path_factory, rows, sep):
    raw = _write_delimited(rows, ["text", "label"], sep=sep, quoting=csv.QUOTE_MINIMAL, line_ending="\n",
                           encoding="utf-8", bom=False)  # fmt: skip
    path = tmp_path_factory.mktemp("fuzz") / "d.csv"
    path.write_bytes(raw)
    texts, labels, _ = read_table(path, "text", "label")
    assert texts == [r[0] for r in rows] and labels == [r[1] for r in rows]
