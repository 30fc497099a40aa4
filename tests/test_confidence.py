"""Per-word confidences (OCR, speech recognition) as a mask source: the mask, the readers of every
format, the threshold at the text level, the guarantee for words below the threshold, and predict."""

import io
import json
import math

import pytest
import torch
from conftest import small_classify_args
from guarantee import check_guarantee
from hypothesis import given, settings
from hypothesis import strategies as st
from textdata import write_sentiment_csv

import dynmask as dm
from dynmask.cli import main
from dynmask.data.confidence import (
    mark_low_confidence,
    parse_confidences,
    read_engine_output,
    read_pocketsphinx_json,
    read_tesseract_tsv,
    read_words_jsonl,
)
from dynmask.data.lexicon import Lexicon
from dynmask.data.tokenizer import TextTokenizer
from dynmask.errors import DataError

TESSERACT_TSV = (
    "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n"
    "1\t1\t0\t0\t0\t0\t0\t0\t400\t60\t-1\t\n"
    "4\t1\t1\t1\t1\t0\t10\t10\t300\t20\t-1\t\n"
    "5\t1\t1\t1\t1\t1\t10\t10\t50\t20\t96.5\tA\n"
    "5\t1\t1\t1\t1\t2\t70\t10\t80\t20\t31.25\tcharnning\n"
    "5\t1\t1\t1\t1\t3\t160\t10\t60\t20\t88\tfilm.\n"
    "5\t2\t1\t1\t1\t1\t10\t10\t60\t20\t100\tDull\n"
)
POCKETSPHINX = (
    '{"b": 0.0, "d": 2.1, "p": 0.4, "t": "a charming film", "w": [{"b": 0.0, "d": 0.1, "p": 1.0, "t": "<s>"}, '
    '{"b": 0.1, "d": 0.2, "p": 0.91, "t": "a"}, {"b": 0.3, "d": 0.1, "p": 1.0, "t": "<sil>"}, '
    '{"b": 0.4, "d": 0.6, "p": 0.12, "t": "charming(2)"}, {"b": 1.0, "d": 0.5, "p": 0.7, "t": "film"}, '
    '{"b": 1.5, "d": 0.1, "p": 1.0, "t": "</s>"}]}\n'
)


def test_mask_from_confidence_is_literal():
    conf = torch.tensor([[0.9, 0.2, float("nan"), 0.5], [0.0, 1.0, 0.49, 0.51]])
    mask = dm.Mask.from_confidence(conf, 0.5)
    assert mask.observed.tolist() == [[True, False, False, True], [False, True, False, True]]
    assert mask.valid.all()
    valid = torch.tensor([[True, True, True, False], [True, True, True, True]])
    assert dm.Mask.from_confidence(conf, 0.0, valid).observed.tolist() == [
        [True, True, False, False],  # 0 keeps every word with a number; NaN is missing; padding is not observed
        [True, True, True, True],
    ]
    with pytest.raises(ValueError, match=r"confidence must lie in \[0, 1\]"):
        dm.Mask.from_confidence(torch.tensor([[1.5]]), 0.5)
    with pytest.raises(ValueError, match="threshold must be a number"):
        dm.Mask.from_confidence(conf, 1.2)
    with pytest.raises(TypeError, match="floating-point"):
        dm.Mask.from_confidence(torch.ones(1, 2, dtype=torch.long), 0.5)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), threshold=st.sampled_from([0.0, 0.3, 0.5, 0.9, 1.0]))
def test_words_below_the_threshold_are_exactly_masked(seed, threshold):
    """The guarantee with a confidence mask: whatever a doubted word's embedding holds changes no output
    at a trusted word, no pooled output, and gets exactly zero gradient, on both execution paths."""
    g = torch.Generator().manual_seed(seed)
    conf = torch.rand(3, 7, generator=g)
    conf[0, 2] = float("nan")
    conf[2] = 0.0  # every word doubted: a sample with nothing observed
    mask = dm.Mask.from_confidence(conf, threshold)
    x = torch.randn(3, 7, 8, generator=g)
    for backend in ("dense", "compact"):
        torch.manual_seed(0)
        enc = dm.Encoder(8, 2, 2, d_ff=16, dropout=0.0, backend=backend)
        check_guarantee(lambda xi: enc(xi, mask), list(enc.parameters()), x, mask)
        check_guarantee(lambda xi: dm.masked_mean(enc(xi, mask), mask), list(enc.parameters()), x, mask,
                        check_rows=torch.ones(3, dtype=torch.bool))  # fmt: skip


def test_a_doubted_word_and_all_its_pieces_become_one_missing_position():
    corpus = ["the charming film", "a dull film", "a believable plot"] * 20 + ["unbelievably"]  # a rare word
    tok = TextTokenizer.train(corpus, vocab_size=60, max_len=32)
    text, confidences = "the unbelievably charming film", [0.9, 0.3, 0.8, 0.95]
    assert mark_low_confidence(text, confidences, 0.5) == "the [missing] charming film"
    (ids,) = tok.encode([mark_low_confidence(text, confidences, 0.5)])
    pieces = {w: tok.encode([w])[0] for w in ("the", "unbelievably", "charming", "film")}
    assert len(pieces["unbelievably"]) > 1  # several pieces ...
    assert ids == pieces["the"] + [tok.missing_id] + pieces["charming"] + pieces["film"]  # ... all missing
    assert mark_low_confidence(text, confidences, 0.0) == text  # threshold 0: the raw engine text
    assert mark_low_confidence(text, [1, float("nan"), 1, 1], 0.0) == "the [missing] charming film"
    with pytest.raises(DataError, match="3 confidences for 4 words"):
        mark_low_confidence(text, [1, 1, 1], 0.5)


def test_each_format_is_read_with_its_confidences(tmp_path):
    (page1, page2) = read_tesseract_tsv(io.StringIO(TESSERACT_TSV))
    assert page1 == (["A", "charnning", "film."], [0.965, 0.3125, 0.88]) and page2 == (["Dull"], [1.0])
    ((words, confidences),) = read_pocketsphinx_json(io.StringIO(POCKETSPHINX))
    assert words == ["a", "charming", "film"] and confidences == [0.91, 0.12, 0.7]
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps({"words": ["a", "fine", "film"], "confidences": [1, 0.25, None or 0.5]}) + "\n")
    assert read_words_jsonl(path) == [("a fine film", [1.0, 0.25, 0.5])]
    assert parse_confidences("a fine film", "0.9 nan 1", "row 1")[0] == 0.9
    assert math.isnan(parse_confidences("a fine film", "0.9 nan 1", "row 1")[1])
    table = tmp_path / "t.csv"
    table.write_text('text,conf\n"a fine film","0.9 0.2 1"\n')
    assert read_engine_output(table, confidence_column="conf") == [("a fine film", [0.9, 0.2, 1.0])]
    for name, content in (("p.tsv", TESSERACT_TSV), ("p.json", POCKETSPHINX), ("p.jsonl", path.read_text())):
        (tmp_path / name).write_text(content)
        assert read_engine_output(tmp_path / name) is not None  # recognised by content
    (tmp_path / "plain.txt").write_text("a fine film\n")
    assert read_engine_output(tmp_path / "plain.txt") is None


@pytest.mark.parametrize(
    "cell,message",
    [("0.9 0.2", "2 confidences for 3 words"), ("0.9 1.5 1", r"1.5 is outside \[0, 1\]"), ("0.9 high 1", "'high'")],
)
def test_bad_confidences_are_named(cell, message):
    with pytest.raises(DataError, match=message):
        parse_confidences("a fine film", cell, "f.csv data row 1")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("conf")
    data = write_sentiment_csv(folder / "d.csv", n=160)
    assert main(["train", "classify", "--data", str(data), "--output", str(folder / "run"), "--epochs", "1",
                 *small_classify_args(test_missing="0")]) == 0  # fmt: skip
    return folder / "run"


def test_predict_reads_engine_output_and_masks_doubted_words(run, tmp_path, capsys):
    engine = tmp_path / "ocr.jsonl"
    engine.write_text(json.dumps({"words": ["a", "charming", "film"], "confidences": [0.9, 0.2, 0.8]}) + "\n")
    capsys.readouterr()
    assert main(["predict", "--model", str(run), "--input", str(engine)]) == 2  # no threshold stored, none given
    assert "--confidence-threshold" in capsys.readouterr().err
    assert main(["predict", "--model", str(run), "--input", str(engine), "--confidence-threshold", "0.5"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["text"] == "a [missing] film"
    assert main(["predict", "--model", str(run), "--text", "a [missing] film"]) == 0  # the same as marking by hand
    assert json.loads(capsys.readouterr().out)["probabilities"] == row["probabilities"]

    table = tmp_path / "t.csv"
    table.write_text('review,conf\n"a charming film","0.9 0.2"\n')
    args = ["predict", "--model", str(run), "--input", str(table), "--text-column", "review"]
    assert main([*args, "--confidence-column", "conf", "--confidence-threshold", "0.5"]) == 2
    err = capsys.readouterr()
    assert "2 confidences for 3 words" in err.err and err.out == ""  # one line, no prediction


def _engine_csv(path, n=160, seed=0):
    """The sentiment set with an OCR-like confidence per word: the cue word is sometimes doubted."""
    import csv
    import random

    rng = random.Random(seed)
    rows = list(csv.DictReader(open(write_sentiment_csv(path.with_suffix(".clean.csv"), n=n, seed=seed))))
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label", "doc", "conf"])
        for r in rows:
            words = r["text"].split()
            w.writerow([r["text"], r["label"], r["doc"], " ".join(f"{rng.random():.2f}" for _ in words)])
    return path


def test_a_run_with_confidences_chooses_its_threshold_on_validation_and_keeps_it(tmp_path, capsys):
    data = _engine_csv(tmp_path / "engine.csv")
    run = tmp_path / "run"
    args = ["train", "classify", "--data", str(data), "--output", str(run), "--epochs", "1",
            "--confidence-column", "conf", *small_classify_args(test_missing="0")]  # fmt: skip
    assert main(args) == 0
    record = json.loads((run / "best" / "confidence.json").read_text())
    scores = record["valid_accuracy"]  # by reading: the engine's confidences alone, or capped by the lexicon
    assert record["chosen_on"] == "valid" and sorted(scores) == ["engine", "engine+lexicon"]
    valid = {(name, float(t)): a for name, by_t in scores.items() for t, a in by_t.items()}
    assert len(valid) == 20 and ("engine", 0.0) in valid
    reading = "engine+lexicon" if record["lexicon"] else "engine"
    assert valid[reading, record["threshold"]] == max(valid.values())
    assert (run / "best" / "lexicon.txt").exists() == record["lexicon"]
    assert json.loads((run / "best" / "config.json").read_text())["confidence_threshold"] is None
    capsys.readouterr()
    assert (
        main(["evaluate", "--model", str(run), "--missing", "0", "--json"]) == 0
    )  # the run's data, confidences, threshold
    assert 0.0 <= json.loads(capsys.readouterr().out)[0]["accuracy"] <= 1.0
    # predict takes the stored threshold: the doubted words of the input become [missing]
    table = tmp_path / "in.csv"
    table.write_text('text,conf\n"a charming film",' + f'"{record["threshold"] + 0.01:.2f} 0 1"\n')
    assert main(["predict", "--model", str(run), "--input", str(table), "--confidence-column", "conf"]) == 0
    text = json.loads(capsys.readouterr().out)["text"]
    lexicon = Lexicon.load(run / "best" / "lexicon.txt") if record["lexicon"] else None
    known = lambda w: lexicon is None or w in lexicon
    words = [w if (record["threshold"] == 0 or (c >= record["threshold"] and known(w))) else "[missing]"
             for w, c in zip(["a", "charming", "film"], [record["threshold"] + 0.01, 0, 1])]  # fmt: skip
    assert text == " ".join(words)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_soft_confidence_keeps_the_guarantee_and_zero_is_exactly_masked(seed):
    """Soft use: log(confidence) on each key's logit. A confidence of 0 (or below the threshold) is
    missing exactly; the others change attention; dense and compact agree."""
    g = torch.Generator().manual_seed(seed)
    conf = torch.rand(3, 7, generator=g)
    conf[0, 1] = 0.0
    conf[1, 3] = float("nan")
    conf[2] = 0.0  # nothing observed
    mask = dm.Mask.from_confidence(conf, 0.1, soft=True)
    assert not mask.observed[0, 1] and not mask.observed[1, 3] and not mask.observed[2].any()
    assert torch.equal(mask.observed, (conf >= 0.1) & (conf > 0))
    x = torch.randn(3, 7, 8, generator=g)
    outs = {}
    for backend in ("dense", "compact"):
        torch.manual_seed(0)
        enc = dm.Encoder(8, 2, 2, d_ff=16, dropout=0.0, backend=backend)
        outs[backend] = check_guarantee(lambda xi: enc(xi, mask), list(enc.parameters()), x, mask)
    assert torch.allclose(outs["dense"], outs["compact"], atol=1e-5)
    torch.manual_seed(0)
    enc = dm.Encoder(8, 2, 2, d_ff=16, dropout=0.0)
    hard = dm.Mask(mask.observed, mask.valid)
    if (mask.observed.sum(1) >= 2).any():  # with two keys or more, their confidences change the output
        assert not torch.allclose(enc(x, mask)[mask.observed], enc(x, hard)[mask.observed])
    ones = dm.Mask(mask.observed, mask.valid, confidence=torch.ones(3, 7))
    assert torch.equal(enc(x, ones), enc(x, hard))  # confidence 1 everywhere = no prior


def test_each_word_s_pieces_inherit_its_confidence():
    from dynmask.data.confidence import soft_mask

    corpus = ["the charming film", "a dull film", "a believable plot"] * 20 + ["unbelievably"]
    tok = TextTokenizer.train(corpus, vocab_size=60, max_len=32)
    text, conf = "the unbelievably ??? film", [0.9, 0.3, 0.8, 0.95]
    (ids,), (piece_conf,) = tok.encode_with_confidences([text], [conf])
    assert ids == tok.encode([text])[0]
    n = len(tok.encode(["unbelievably"])[0])
    assert piece_conf == [0.9] * len(tok.encode(["the"])[0]) + [0.3] * n + [0.0] + [0.95] * len(
        tok.encode(["film"])[0]
    )  # the marker ??? is missing whatever its number
    ids_t = tok.pad([ids])
    mask = soft_mask(tok.mask(ids_t), [piece_conf], threshold=0.5)
    assert mask.observed[0].tolist() == [c >= 0.5 for c in piece_conf]
    assert torch.allclose(mask.confidence[0][mask.observed[0]], torch.tensor([c for c in piece_conf if c >= 0.5]))


def test_translation_with_ocr_sources_chooses_and_keeps_a_threshold(tmp_path, capsys):
    words = [("open", "öffnen"), ("close", "schließen"), ("save", "speichern"), ("print", "drucken")]
    things = [("the file", "die Datei"), ("the window", "das Fenster"), ("the page", "die Seite")]
    rows = [(f"{v} {t}", f"{tt} {vv}") for v, vv in words for t, tt in things] * 3
    lines = [f"{s}\t{t}\t{' '.join(['0.9', '0.1', '0.8'][: len(s.split())])}" for s, t in rows]
    (tmp_path / "pairs.tsv").write_text("source\ttarget\tconf\n" + "\n".join(lines) + "\n")
    run = tmp_path / "run"
    small = ["--d-model", "32", "--heads", "2", "--enc-layers", "1", "--dec-layers", "1", "--d-ff", "64",
             "--vocab-size", "120", "--max-src-len", "16", "--max-tgt-len", "16", "--no-progress"]  # fmt: skip
    args = ["train", "translate", "--data", str(tmp_path / "pairs.tsv"), "--output", str(run), "--epochs", "1",
            "--beam", "1", "--test-missing", "0", "--confidence-column", "conf", *small]  # fmt: skip
    assert main(args) == 0
    record = json.loads((run / "best" / "confidence.json").read_text())
    assert record["chosen_on"] == "valid" and [len(v) for v in record["valid_score"].values()] == [10, 10]
    capsys.readouterr()
    assert (
        main(["evaluate", "--model", str(run), "--missing", "0", "--beam", "1", "--json"]) == 0
    )  # the run's confidences
    assert "bleu" in json.loads(capsys.readouterr().out)[0]
    assert (
        main(["evaluate", "--model", str(run), "--missing", "0", "--beam", "1", "--confidence-threshold", "0.5"]) == 0
    )
