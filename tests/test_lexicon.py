"""The training lexicon as a second confidence: words no training text holds count as confidence 0.
The word rules, the choice on validation, the run's record, and every reader (predict, the Python API,
the server's reader, the ONNX assets) applying the same lexicon."""

import json
import math

import pytest
from conftest import small_classify_args
from textdata import write_sentiment_csv

from dynmask.cli import main
from dynmask.data.confidence import mark_low_confidence
from dynmask.data.lexicon import Lexicon, normalise_word
from dynmask.errors import DataError
from dynmask.tasks.common import THRESHOLD_GRID, choose_threshold, save_threshold, stored_lexicon, stored_threshold


def test_words_are_normalised_before_they_are_looked_up():
    assert normalise_word("Film,") == "film" and normalise_word("«Hello»") == "hello"
    assert normalise_word("--") == "--" and normalise_word("don't") == "don't"  # inner punctuation stays
    lexicon = Lexicon.from_texts(["A film. a FILM", "the film -- once"], min_count=2)
    assert lexicon.words == {"a", "film"}  # "the", "--", "once": seen once
    assert "Film!" in lexicon and "films" not in lexicon and len(lexicon) == 2
    assert Lexicon.from_texts(["the film -- once"], min_count=1).words == {"the", "film", "--", "once"}
    with pytest.raises(ValueError, match="min_count"):
        Lexicon.from_texts(["a"], min_count=0)


def test_cap_sets_unknown_words_to_zero_and_keeps_nan_missing():
    lexicon = Lexicon(["a", "film"])
    capped = lexicon.cap("a wrivag film ~", [0.9, 0.8, float("nan"), 1.0])
    assert capped[:2] == [0.9, 0.0] and math.isnan(capped[2]) and capped[3] == 0.0
    with pytest.raises(DataError, match="2 confidences for 3 words"):
        lexicon.cap("a b c", [1.0, 1.0])
    # at a threshold above 0 the unknown word is missing whatever its confidence; at 0 every word stays
    assert mark_low_confidence("a wrivag film", [0.9, 1.0, 0.3], 0.5, lexicon=lexicon) == "a [missing] [missing]"
    assert mark_low_confidence("a wrivag film", [0.9, 1.0, 0.3], 0.0, lexicon=lexicon) == "a wrivag film"
    assert mark_low_confidence("a wrivag film", [0.9, 1.0, 0.3], 0.5) == "a wrivag [missing]"


def test_a_lexicon_is_saved_and_loaded_and_a_damaged_one_is_refused(tmp_path):
    lexicon = Lexicon.from_texts(["a film, a film", "Über über"])
    lexicon.save(tmp_path / "lexicon.txt")
    assert Lexicon.load(tmp_path / "lexicon.txt").words == lexicon.words == {"a", "film", "über"}
    (tmp_path / "bad.txt").write_text("a\ntwo words\n")
    with pytest.raises(DataError, match="one word per line"):
        Lexicon.load(tmp_path / "bad.txt")
    with pytest.raises(DataError, match="cannot read the lexicon"):
        Lexicon.load(tmp_path / "absent.txt")


def test_validation_chooses_the_reading_and_the_threshold_ties_to_the_engine_alone():
    lexicon = Lexicon(["a"])
    better_with = lambda t, lex: 0.7 + (0.1 if lex is not None and t == 0.3 else 0.0)
    threshold, chosen, scores = choose_threshold(better_with, None, lexicon)
    assert (threshold, chosen) == (0.3, lexicon) and list(scores) == ["engine", "engine+lexicon"]
    assert list(scores["engine"]) == list(THRESHOLD_GRID)
    flat = lambda t, lex: 0.7  # a tie everywhere: the engine alone, the lowest threshold (every word kept)
    assert choose_threshold(flat, None, lexicon)[:2] == (0.0, None)
    assert choose_threshold(better_with, 0.5, lexicon) == (0.5, None, {})  # a given threshold: no choice
    assert choose_threshold(better_with, None, None)[1] is None


def test_the_record_says_whether_the_lexicon_is_read_and_a_damaged_record_is_refused(tmp_path):
    best = tmp_path / "best"
    best.mkdir()
    save_threshold(best, 0.4, Lexicon(["a", "film"]), {"engine": {0.4: 0.5}}, "valid_accuracy")
    assert stored_threshold(tmp_path) == 0.4 and stored_lexicon(tmp_path).words == {"a", "film"}
    save_threshold(best, 0.2, None, {}, "valid_accuracy")
    assert stored_lexicon(tmp_path) is None  # the engine's confidences alone
    record = json.loads((best / "confidence.json").read_text())
    (best / "confidence.json").write_text(json.dumps({**record, "lexicon": "yes"}))
    with pytest.raises(DataError, match='"lexicon" must be true or false'):
        stored_lexicon(tmp_path)
    (best / "lexicon.txt").unlink()
    (best / "confidence.json").write_text(json.dumps({**record, "lexicon": True}))
    with pytest.raises(DataError, match="lexicon.txt is missing"):
        stored_lexicon(tmp_path)


def test_predict_the_api_the_server_and_the_export_read_with_the_run_s_lexicon(tmp_path, capsys):
    """A run whose record says it reads confidences with a lexicon: every way in marks the word the
    lexicon lacks, confidence 1.0 notwithstanding, and gives the same probabilities."""
    pytest.importorskip("onnxruntime")
    import dynmask
    from dynmask.export import load_onnx
    from dynmask.serve.models import ServedModel

    data = write_sentiment_csv(tmp_path / "d.csv", n=160)
    run = tmp_path / "run"
    assert main(["train", "classify", "--data", str(data), "--output", str(run), "--epochs", "1",
                 *small_classify_args(test_missing="0")]) == 0  # fmt: skip
    save_threshold(run / "best", 0.5, Lexicon(["a", "film"]), {}, "valid_accuracy")  # re-signs best/
    engine = tmp_path / "ocr.jsonl"
    engine.write_text(json.dumps({"words": ["a", "wrivag", "film"], "confidences": [0.9, 1.0, 0.8]}) + "\n")
    capsys.readouterr()
    assert main(["predict", "--model", str(run), "--input", str(engine)]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["text"] == "a [missing] film"
    assert main(["predict", "--model", str(run), "--text", "a [missing] film"]) == 0
    by_hand = json.loads(capsys.readouterr().out)["probabilities"]
    assert row["probabilities"] == by_hand

    (api,) = dynmask.from_pretrained(run).predict(["a wrivag film"], confidences=[[0.9, 1.0, 0.8]])
    assert api["probabilities"] == pytest.approx(by_hand, abs=1e-6) and api["text"] == "a wrivag film"
    assert ServedModel(run).read_text("a wrivag film", [0.9, 1.0, 0.8]) == "a [missing] film"

    onnx = tmp_path / "model.onnx"
    assert main(["export", "--model", str(run), "--output", str(onnx), "--confidence-input"]) == 0
    assert stored_threshold(onnx) == 0.5 and stored_lexicon(onnx).words == {"a", "film"}  # the assets carry both
    assert ServedModel(onnx).read_text("a wrivag film", [0.9, 1.0, 0.8]) == "a [missing] film"
    (exported,) = load_onnx(onnx).predict(["a [missing] film"])
    assert exported["probabilities"] == pytest.approx(by_hand, abs=1e-4)
    # on the graph's confidence input, the word the lexicon lacks reads as if the engine had given it 0
    runner = load_onnx(onnx)
    (capped,) = runner.predict(["a wrivag film"], confidences=[[0.9, 1.0, 0.8]], threshold=0.5)
    (zero,) = runner.predict(["a wrivag film"], confidences=[[0.9, 0.0, 0.8]], threshold=0.5)
    assert capped == zero and capped["observed_tokens"] == 2
