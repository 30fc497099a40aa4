"""Real holes from real engines: OCR (tesseract) and speech recognition (espeak-ng + pocketsphinx) of a
text set's test split, each word with the engine's own confidence.

    python experiments/engine_noise.py ocr [--split valid]   # 3 degradation levels, tesseract word confidences
    python experiments/engine_noise.py ocr --data 20newsgroups [--split valid]  # a sample of posts (SAMPLE)
    python experiments/engine_noise.py speech          # espeak-ng at 2 rates + noise, pocketsphinx posteriors
    python experiments/engine_noise.py wer             # word error rate per level -> wer.{json,md}
    python experiments/engine_noise.py all [--workers 2]   # everything the results use, in order (resumable)
    python experiments/engine_noise.py ocr --data 20newsgroups --split train --levels 3 --workers 2  # 20 min
    python experiments/engine_noise.py speech --split train --rates 140 --limit 4000 --workers 2  # 62 min

Writes ``results/engine-noise/<set>/<split>/<engine>-<level>.jsonl``: one line per test text,
``{"id": i, "words": [...], "confidences": [...]}`` (confidences in [0, 1]; the JSONL format
``dynmask`` reads with ``--confidence-column``-free input), so scoring needs no engine. Each line is
appended as soon as it is recognised; a rerun resumes after the last id written. These files hold the
data sets' text as the engine read it (third-party): a local cache, not committed (``.gitignore``);
``wer.{json,md}`` are.

Engines (installed from the registries): Debian ``tesseract-ocr tesseract-ocr-eng espeak-ng
fonts-dejavu-core``; PyPI ``pytesseract pocketsphinx pillow jiwer`` (``pip install 'dynmask[engines]'``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import wave
from contextlib import nullcontext
from pathlib import Path

import jiwer
import numpy as np

from dynmask.data.lexicon import Lexicon
from dynmask.data.pairs import load_pairs
from dynmask.data.text import load_text_dataset

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "engine-noise"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"
# OCR degradation: (downscale factor, Gaussian blur radius, pixel noise sd, JPEG quality); one seeded draw per text
OCR_LEVELS = {1: (0.56, 0.7, 18, 40), 2: (0.545, 0.75, 20, 35), 3: (0.52, 0.8, 22, 30)}
# speech: espeak-ng words per minute, white noise at this signal-to-noise ratio (dB)
SPEECH_LEVELS = {140: 30.0, 180: 15.0}
SPEECH_LIMIT = {"test": 400, "valid": 400}  # speech recognition is slow here (about 2 s a text): the first N
VOICE = "en-us"  # pocketsphinx's model is US English (espeak-ng's default British voice: WER about 0.9)
SEED = 20261205


TRANSLATION = ROOT.parent / "shared" / "datasets" / "translation" / "libreoffice-help.en-de.{split}.tsv"


# 20 Newsgroups posts are long (median 159 words; OCR about 0.5 s for 120 words here) and the classifiers read
# their first 128 word pieces: the engine reads the first MAX_WORDS words of a seeded sample of SAMPLE posts
MAX_WORDS = {"20newsgroups": 120}
SAMPLE = {"20newsgroups": {"test": 1000, "valid": 400}}
# how word error rates and right / wrong words read a text: lowercased, punctuation and extra spaces removed
NORM = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(), jiwer.Strip()])


def _texts(name: str, split: str) -> list[str]:
    """The texts an engine reads: a text set's split (each cut to its first MAX_WORDS words, where the set
    has a limit), or the English sources of the translation pairs."""
    if name == "libreoffice-en-de":
        return [p.source for p in getattr(load_pairs(str(TRANSLATION)), split)]
    texts = [ex.text for ex in getattr(load_text_dataset(name, seed=0), split)]
    if name in MAX_WORDS:
        texts = [" ".join(t.split()[: MAX_WORDS[name]]) for t in texts]
    return texts


def _chosen(name: str, split: str, n_texts: int, limit: int | None) -> list[int]:
    """The ids (positions in the split) an engine reads: the first ``limit``, or a seeded sample of
    SAMPLE[name][split] in id order, the same on every machine."""
    size = SAMPLE.get(name, {}).get(split)
    if limit is not None or size is None or size >= n_texts:
        return list(range(n_texts))[:limit]
    return sorted(np.random.default_rng([SEED, n_texts]).choice(n_texts, size, replace=False).tolist())


def _done(path: Path) -> set[int]:
    if not path.exists():
        return set()
    ids = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                ids.add(json.loads(line)["id"])
            except (json.JSONDecodeError, KeyError):
                break  # a line cut by an interrupt: the rest is redone
    return ids


def _append(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _trim_partial(path: Path) -> None:
    """Drop a last line cut short by an interrupt, so appending continues on a clean line."""
    if path.exists():
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        good = []
        for line in lines:
            try:
                json.loads(line)
                good.append(line if line.endswith("\n") else line + "\n")
            except json.JSONDecodeError:
                break
        path.write_text("".join(good), encoding="utf-8")


# ---------------------------------------------------------------------------------------- OCR
def render(text: str):
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(FONT, 22)
    lines = textwrap.wrap(text, 60) or [""]
    img = Image.new("L", (60 * 13 + 40, 34 * len(lines) + 30), 255)
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        try:
            draw.text((20, 15 + 34 * i), line, font=font, fill=0)
        except RuntimeError:  # raqm cannot lay out some rare sequences: lay this line out without it
            basic = ImageFont.truetype(FONT, 22, layout_engine=ImageFont.Layout.BASIC)
            draw.text((20, 15 + 34 * i), line, font=basic, fill=0)
    return img


def degrade(img, level: int, rng: np.random.Generator):
    from PIL import Image, ImageFilter

    scale, blur, noise, quality = OCR_LEVELS[level]
    w, h = img.size
    small = img.resize((int(w * scale), int(h * scale)), Image.BILINEAR).filter(ImageFilter.GaussianBlur(blur))
    pixels = np.asarray(small, dtype=np.float32) + rng.normal(0, noise, (small.size[1], small.size[0]))
    small = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf)


def tesseract_words(img) -> tuple[list[str], list[float]]:
    """Words and confidences (tesseract's 0-100 scaled to [0, 1]) from tesseract's TSV output."""
    import pytesseract

    from dynmask.data.confidence import read_tesseract_tsv

    tsv = pytesseract.image_to_data(img, config="--psm 6")
    ((words, confidences),) = read_tesseract_tsv(io.StringIO(tsv)) or [([], [])]
    return words, confidences


def _ocr_one(job: tuple[int, int, str]) -> dict:
    """One text at one level: rendered, degraded by its own seeded draw, read. The same record whichever
    process reads it."""
    level, i, text = job
    words, confidences = tesseract_words(degrade(render(text), level, np.random.default_rng([SEED, level, i])))
    return {"id": i, "words": words, "confidences": confidences}


def _require(program: str, debian: str) -> None:
    """Stop with the install line when an engine is not on this machine (without tesseract, ``ocr --workers
    2`` sat ten minutes with no output and no record written)."""
    import shutil

    if shutil.which(program) is None:
        raise SystemExit(f"{program} is not installed: apt-get install {debian} (and pip install -e '.[engines]')")


def run_ocr(name: str, split: str, limit: int | None, levels: tuple = tuple(OCR_LEVELS), workers: int = 1) -> None:
    """Each level's records appended in id order as they are read (``workers`` tesseract processes, one
    core each; the records do not depend on their number)."""
    from multiprocessing import Pool

    _require("tesseract", "tesseract-ocr tesseract-ocr-eng fonts-dejavu-core")
    texts = _texts(name, split)
    ids = _chosen(name, split, len(texts), limit)
    folder = OUT / name / split
    folder.mkdir(parents=True, exist_ok=True)
    with Pool(workers) if workers > 1 else nullcontext() as pool:
        for level in levels:
            items = [(i, texts[i]) for i in ids]
            _read_into(folder / f"ocr-{level}.jsonl", _ocr_one, level, items, pool, f"ocr level {level}")


def _read_into(path: Path, read_one, level: int, items: list[tuple[int, str]], pool, label: str) -> None:
    """``read_one((level, i, text))`` for each ``(i, text)`` of ``items`` that ``path`` lacks, appended in
    id order (``pool``: a process pool, or None to read here); a run cut mid-line resumes after the last
    whole record."""
    _trim_partial(path)
    done, t0 = _done(path), time.perf_counter()
    jobs = [(level, i, text) for i, text in items if i not in done]
    records = map(read_one, jobs) if pool is None else pool.imap(read_one, jobs, chunksize=4)
    for n, record in enumerate(records):  # imap keeps the jobs' order: a rerun resumes after the last id
        _append(path, record)
        if n % 100 == 0:
            print(f"{label}: {len(done) + n + 1}/{len(items)} ({time.perf_counter() - t0:.0f} s)", flush=True)


# ---------------------------------------------------------------------------------------- speech
def synthesise(text: str, rate: int) -> np.ndarray:
    """espeak-ng's US English voice at ``rate`` words per minute, resampled to 16 kHz (float samples)."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        subprocess.run(["espeak-ng", "-v", VOICE, "-s", str(rate), "-w", f.name, text], check=True, capture_output=True)
        with wave.open(f.name) as w:
            sr, data = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    t = np.arange(0, len(data), sr / 16000.0)
    return np.interp(t, np.arange(len(data)), data.astype(np.float32))


def add_noise(signal: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    power = float(np.mean(signal**2)) if signal.size else 0.0
    noisy = signal + rng.normal(0, np.sqrt(power / 10 ** (snr_db / 10)) if power else 0.0, signal.shape)
    return np.clip(noisy, -32768, 32767).astype(np.int16)


_DECODER = None  # one pocketsphinx decoder per process, made on its first text


def _speech_one(job: tuple[int, int, str]) -> dict:
    """One text at one rate: synthesised, noised by its own seeded draw, recognised. The same record
    whichever process reads it: the decoder's running cepstral mean is reset to its initial value before
    each text (as a fresh decoder's; the test and validation files, read before this, let it carry over
    from the previous text: the same words on the texts checked, confidences up to 0.14 apart)."""
    global _DECODER
    from pocketsphinx import Decoder

    from dynmask.data.confidence import pocketsphinx_words

    rate, i, text = job
    if _DECODER is None:
        _DECODER = Decoder(samprate=16000, loglevel="FATAL", bestpath=True)
    _DECODER.reinit_feat()  # a fresh feature computation: the initial cepstral mean
    audio = add_noise(synthesise(text, rate), SPEECH_LEVELS[rate], np.random.default_rng([SEED, rate, i]))
    _DECODER.start_utt()
    _DECODER.process_raw(audio.tobytes(), full_utt=True)
    _DECODER.end_utt()
    segments = [{"t": s.word, "p": float(s.prob)} for s in _DECODER.seg()]  # pocketsphinx's JSON form
    words, confidences = pocketsphinx_words(segments)
    return {"id": i, "words": words, "confidences": confidences}


def run_speech(name: str, split: str, limit: int | None, rates: tuple = tuple(SPEECH_LEVELS), workers: int = 1) -> None:
    """Each rate's records appended in id order as they are recognised (``workers`` processes, one core
    each; the records do not depend on their number)."""
    from multiprocessing import Pool

    _require("espeak-ng", "espeak-ng")
    texts = _texts(name, split)[:limit]
    folder = OUT / name / split
    folder.mkdir(parents=True, exist_ok=True)
    with Pool(workers) if workers > 1 else nullcontext() as pool:
        for rate in rates:
            items = list(enumerate(texts))
            _read_into(folder / f"speech-{rate}.jsonl", _speech_one, rate, items, pool, f"speech {rate} wpm")


# ---------------------------------------------------------------------------------------- scoring
def _training_lexicon(name: str) -> Lexicon:
    """The words of the training texts (whole, as the classifiers train on them; the translation pairs'
    English sources), as dynmask reads a confidence with a lexicon (dynmask.data.lexicon)."""
    if name == "libreoffice-en-de":
        return Lexicon.from_texts(p.source for p in load_pairs(str(TRANSLATION)).train)
    return Lexicon.from_texts(ex.text for ex in load_text_dataset(name, seed=0).train)


def right_words(ref: str, hyp: str) -> list[bool]:
    """One flag per word of ``hyp`` (normalised, space-separated): True where jiwer's alignment to ``ref``
    marks it equal."""
    flags = [False] * len(hyp.split())
    for chunk in jiwer.process_words(ref, hyp).alignments[0]:
        if chunk.type == "equal":
            flags[chunk.hyp_start_idx : chunk.hyp_end_idx] = [True] * (chunk.hyp_end_idx - chunk.hyp_start_idx)
    return flags


def _confidence_quality(records: list[dict], refs: list[str], norm, lexicon: Lexicon) -> dict:
    """How well the engine's confidence tells a right word from a wrong one: each recognised word is right
    when the alignment to the reference (jiwer) marks it equal; ROC AUC of confidence for "right", the same
    with the confidence capped by the training lexicon (a word it lacks: 0), and the share of words that
    are right."""
    from sklearn.metrics import roc_auc_score

    right, scores, capped_scores = [], [], []
    for record, ref in zip(records, refs):
        capped = lexicon.cap(" ".join(record["words"]), record["confidences"])
        kept = [(norm(w), c, k) for w, c, k in zip(record["words"], record["confidences"], capped) if norm(w)]
        if not kept:
            continue
        flags = right_words(ref, " ".join(w for w, _, _ in kept))
        if len(kept) != len(flags):
            continue  # a normalised word split in two: skipped rather than misaligned
        right += flags
        scores += [0.0 if c != c else c for _, c, _ in kept]
        capped_scores += [0.0 if k != k else k for _, _, k in kept]
    both = 0 < sum(right) < len(right)
    return {
        "confidence_auc": roc_auc_score(right, scores) if both else None,
        "lexicon_capped_auc": roc_auc_score(right, capped_scores) if both else None,
        "right_word_share": sum(right) / max(1, len(right)),
        "words": len(right),
    }


def run_wer(name: str) -> None:
    texts = {split: _texts(name, split) for split in ("valid", "test") if (OUT / name / split).is_dir()}
    norm = NORM
    rows, lexicon = {}, _training_lexicon(name)
    for path in sorted((OUT / name).glob("*/*.jsonl")):
        split = path.parent.name
        if split not in texts:  # a training split's output (rebuilt on demand, not scored here)
            continue
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        refs = [norm(texts[split][r["id"]]) or "-" for r in records]
        hyps = [norm(" ".join(r["words"])) or "-" for r in records]
        confidences = [c for r in records for c in r["confidences"]]
        rows[f"{split}/{path.stem}"] = {
            "texts": len(records),
            "wer": jiwer.wer(refs, hyps),
            "mean_confidence": float(np.mean(confidences)) if confidences else None,
            **_confidence_quality(records, refs, norm, lexicon),
        }
    (OUT / name / "wer.json").write_text(json.dumps(rows, indent=2))
    lines = [
        "| split / engine-level | texts | word error rate | mean confidence | right words | "
        "AUC of confidence for a right word | AUC, confidence capped by the training lexicon |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    f = lambda auc: "—" if auc is None else f"{auc:.3f}"
    for key, r in rows.items():
        lines.append(
            f"| {key} | {r['texts']} | {r['wer']:.3f} | {r['mean_confidence']:.3f} | "
            f"{r['right_word_share']:.3f} | {f(r['confidence_auc'])} | {f(r['lexicon_capped_auc'])} |"
        )
    (OUT / name / "wer.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("step", choices=("ocr", "speech", "wer", "all"))
    p.add_argument("--data", default="rotten_tomatoes", help="a text set, or libreoffice-en-de (translation sources)")
    p.add_argument("--split", choices=("test", "valid", "train"), default="test", help="(default: %(default)s)")
    p.add_argument("--levels", default=None, help="OCR levels, comma-separated (default: all)")
    p.add_argument("--limit", type=int, default=None, help="the first N texts only")
    p.add_argument("--rates", default=None, help="speech rates (words/min), comma-separated (default: all)")
    p.add_argument("--workers", type=int, default=1, help="engine processes, one core each (default: %(default)s)")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # tesseract: one core per process
    levels = tuple(OCR_LEVELS) if args.levels is None else tuple(int(x) for x in args.levels.split(","))
    rates = tuple(SPEECH_LEVELS) if args.rates is None else tuple(int(x) for x in args.rates.split(","))
    if args.step == "all":  # what results/real-holes-* read: test and valid (and train at level 3) of both sets
        for split in ("test", "valid"):
            run_ocr("rotten_tomatoes", split, None, workers=args.workers)
            run_ocr("libreoffice-en-de", split, 600, workers=args.workers)
        run_ocr("rotten_tomatoes", "train", None, (3,), args.workers)
        for split in ("test", "valid"):
            run_ocr("20newsgroups", split, None, workers=args.workers)
        run_ocr("20newsgroups", "train", None, (3,), args.workers)
        for split in ("test", "valid"):
            run_speech("rotten_tomatoes", split, SPEECH_LIMIT[split], workers=args.workers)
        for name in ("rotten_tomatoes", "libreoffice-en-de", "20newsgroups"):
            run_wer(name)
        return 0
    {"ocr": lambda: run_ocr(args.data, args.split, args.limit, levels, args.workers),
     "speech": lambda: run_speech(args.data, args.split, args.limit, rates, args.workers),
     "wer": lambda: run_wer(args.data)}[args.step]()  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
