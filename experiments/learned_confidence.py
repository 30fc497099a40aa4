"""Could a better word confidence be read from what the engine gives? A probe for the real-holes results.

The engines' own confidences tell a right word from a wrong one with an AUC of 0.83-0.84 (tesseract) and
0.64-0.72 (pocketsphinx). Confidence estimation in speech recognition usually trains a small classifier on
the recogniser's outputs (the posterior, its neighbours', the word's frequency and length). This fits one,
a standardised logistic regression (scikit-learn), on the validation readings, whose right / wrong labels
come from jiwer's alignment to the reference (as ``engine_noise.py wer`` marks them), and scores its AUC on
the test readings beside the engine's confidence alone and the confidence capped by the training lexicon.
If the learned AUC is not much higher, no mask built from these outputs can get much nearer the oracle.

    python experiments/learned_confidence.py   # results/engine-noise/rotten_tomatoes/learned_confidence.{json,md}
    python experiments/learned_confidence.py --data libreoffice-en-de   # the translation sources' OCR readings

Reads the engine outputs in ``results/engine-noise/`` (rebuilt by ``engine_noise.py``); needs the
``engines`` extra (jiwer) and scikit-learn.
"""

from __future__ import annotations

import argparse
import collections
import json
import math

import numpy as np
from engine_noise import NORM, OUT, _texts, right_words  # experiments/engine_noise.py, beside this script

from dynmask.data.lexicon import Lexicon

NAME = "rotten_tomatoes"
FEATURES = ("confidence", "lowest neighbour", "mean neighbour", "log training frequency", "characters", "in lexicon")


class Vocabulary:
    """The training texts' normalised word counts and lexicon, which two of the features read."""

    def __init__(self, name: str = NAME) -> None:
        train = _texts(name, "train")
        self.freq = collections.Counter(w for t in train for w in NORM(t).split())
        self.total = sum(self.freq.values())
        self.lexicon = Lexicon.from_texts(train)


def word_features(words: list[str], confidences: list[float], vocab: Vocabulary) -> tuple[list[int], np.ndarray]:
    """(positions of the words that normalise to something, their features float[W, 6]): the engine's
    confidence (NaN read as 0), the lowest and mean of its neighbours' (among those words), the word's log
    frequency in the training texts, its length, and whether the training lexicon holds it."""
    kept = [i for i, w in enumerate(words) if NORM(w)]
    scores = [0.0 if confidences[i] != confidences[i] else confidences[i] for i in kept]
    rows = []
    for n, i in enumerate(kept):
        word, c = NORM(words[i]), scores[n]
        near = [scores[j] for j in (n - 1, n + 1) if 0 <= j < len(kept)] or [c]
        known = words[i] in vocab.lexicon
        rows.append(
            [c, min(near), sum(near) / len(near), math.log((vocab.freq[word] + 1) / vocab.total), len(word), known]
        )
    return kept, np.array(rows, dtype=np.float64).reshape(len(kept), len(FEATURES))


def _labelled(split: str, level: str, vocab: Vocabulary, name: str = NAME) -> tuple:
    """(features float[W, 6], right bool[W], engine confidence float[W], lexicon-capped float[W]) over the
    recognised words of ``split``'s readings at ``level`` (the words jiwer's alignment can place)."""
    texts = _texts(name, split)
    feats, right, capped = [], [], []
    for line in (OUT / name / split / f"{level}.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        words, confidences = record["words"], record["confidences"]
        kept, x = word_features(words, confidences, vocab)
        if not kept:
            continue
        flags = right_words(NORM(texts[record["id"]]) or "-", " ".join(NORM(words[i]) for i in kept))
        if len(flags) != len(kept):
            continue  # a normalised word split in two: skipped rather than misaligned
        cap = vocab.lexicon.cap(" ".join(words), confidences)
        feats.append(x)
        right += flags
        capped += [0.0 if cap[i] != cap[i] else cap[i] for i in kept]
    x = np.concatenate(feats)
    return x, np.array(right), x[:, 0], np.array(capped)  # x[:, 0]: the engine's confidence, NaN read as 0


def _fitted(x: np.ndarray, right: np.ndarray):
    """A standardised logistic regression for "right" on word features ``x``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x, right)


def fit(level: str, vocab: Vocabulary, name: str = NAME):
    """The confidence model of ``level``, fit on the validation readings' words."""
    return _fitted(*_labelled("valid", level, vocab, name)[:2])


def rescored(model, vocab: Vocabulary, words: list[str], confidences: list[float]) -> list[float]:
    """One confidence per word: the model's probability that it is right (a word that normalises to
    nothing, punctuation, keeps the engine's)."""
    out = list(confidences)
    kept, x = word_features(words, confidences, vocab)
    if kept:
        for i, p in zip(kept, model.predict_proba(x)[:, 1]):
            out[i] = float(p)
    return out


def main(argv=None) -> None:
    from sklearn.metrics import roc_auc_score

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=NAME, help="the engine readings' text set (a folder of results/engine-noise/)")
    name = p.parse_args(argv).data
    vocab, rows = Vocabulary(name), {}
    for path in sorted((OUT / name / "test").glob("*.jsonl")):
        level = path.stem
        if not (OUT / name / "valid" / path.name).exists():
            continue
        x_valid, y_valid, _, _ = _labelled("valid", level, vocab, name)
        model = _fitted(x_valid, y_valid)
        x_test, y_test, conf, capped = _labelled("test", level, vocab, name)
        learned = model.predict_proba(x_test)[:, 1]
        rows[level] = {
            "valid_words": len(y_valid),
            "test_words": len(y_test),
            "auc_engine": roc_auc_score(y_test, conf),
            "auc_lexicon_capped": roc_auc_score(y_test, capped),
            "auc_learned": roc_auc_score(y_test, learned),
            "coefficients": dict(zip(FEATURES, model[-1].coef_[0].round(3).tolist())),
        }
    (OUT / name / "learned_confidence.json").write_text(json.dumps({"features": FEATURES, "levels": rows}, indent=2))
    lines = [
        "| engine, level | validation words (fit) | test words | AUC, engine confidence | AUC, capped by the "
        "training lexicon | AUC, learned on validation |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for level, r in rows.items():
        lines.append(f"| {level} | {r['valid_words']:,} | {r['test_words']:,} | {r['auc_engine']:.3f} | "
                     f"{r['auc_lexicon_capped']:.3f} | {r['auc_learned']:.3f} |")  # fmt: skip
    (OUT / name / "learned_confidence.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
