"""experiments/engine_noise.py's OCR and speech runners: the records do not depend on how many processes
read them (nor, for speech, on the texts a decoder read before), and a run cut mid-line resumes without
losing or repeating a text. Needs tesseract (Debian ``tesseract-ocr tesseract-ocr-eng fonts-dejavu-core``,
and ``espeak-ng`` for speech) and ``pip install 'dynmask[engines]'``: ``pytest -m engines``."""

import json
import shutil
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.engines
pytest.importorskip("pytesseract")
pytest.importorskip("jiwer")
if shutil.which("tesseract") is None:
    pytest.skip("tesseract is not installed", allow_module_level=True)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import engine_noise  # noqa: E402

TEXTS = ["the film is a quiet delight", "a dull and tired script", "gripping from start to finish",
         "nothing here works at all", "an honest, warm and funny story"]  # fmt: skip


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _run(monkeypatch, out: Path, workers: int) -> list[dict]:
    monkeypatch.setattr(engine_noise, "OUT", out)
    monkeypatch.setattr(engine_noise, "_texts", lambda name, split: TEXTS)
    engine_noise.run_ocr("toy", "test", None, (1,), workers)
    return _records(out / "toy" / "test" / "ocr-1.jsonl")


def test_workers_give_the_same_records_in_id_order(tmp_path, monkeypatch):
    one = _run(monkeypatch, tmp_path / "one", 1)
    two = _run(monkeypatch, tmp_path / "two", 2)
    assert [r["id"] for r in one] == list(range(len(TEXTS)))
    assert one == two
    assert all(len(r["words"]) == len(r["confidences"]) for r in one)
    assert sum(len(r["words"]) for r in one) >= len(" ".join(TEXTS).split()) // 2  # the engine read words


def test_a_run_cut_mid_line_resumes_after_the_last_whole_record(tmp_path, monkeypatch):
    full = _run(monkeypatch, tmp_path / "full", 1)
    path = tmp_path / "cut" / "toy" / "test" / "ocr-1.jsonl"
    path.parent.mkdir(parents=True)
    text = "".join(json.dumps(r) + "\n" for r in full[:2]) + json.dumps(full[2])[:15]  # an interrupt mid-write
    path.write_text(text, encoding="utf-8")
    assert _run(monkeypatch, tmp_path / "cut", 2) == full


def _run_speech(monkeypatch, out: Path, workers: int) -> list[dict]:
    monkeypatch.setattr(engine_noise, "OUT", out)
    monkeypatch.setattr(engine_noise, "_texts", lambda name, split: TEXTS)
    monkeypatch.setattr(engine_noise, "_DECODER", None)
    engine_noise.run_speech("toy", "test", None, (140,), workers)
    return _records(out / "toy" / "test" / "speech-140.jsonl")


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_speech_records_do_not_depend_on_the_workers_or_the_texts_read_before(tmp_path, monkeypatch):
    pytest.importorskip("pocketsphinx")
    one = _run_speech(monkeypatch, tmp_path / "one", 1)  # one decoder reads texts 0-4 in turn
    two = _run_speech(monkeypatch, tmp_path / "two", 2)  # chunks of 4: text 4 is a fresh process's first
    assert [r["id"] for r in one] == list(range(len(TEXTS)))
    assert one == two
    assert all(len(r["words"]) == len(r["confidences"]) for r in one)
    assert all(0.0 <= c <= 1.0 for r in one for c in r["confidences"])
