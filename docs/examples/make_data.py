"""The tiny files the documentation's examples run on (seconds on 2 CPU cores; the doc tests run every
example on them). Deterministic: ``python docs/examples/make_data.py`` rewrites the same bytes.

- ``reviews.csv``: 400 short labelled reviews (text, label, doc), a few words missing (``[MISSING]``, ``???``);
- ``reviews_ocr.csv``: 400 reviews as an OCR engine returns them: some words misread, one confidence per word;
- ``pairs.tsv``: 320 English-German command phrases (source, target), each once;
- ``sensors.csv``: 1000 days of three sensors with a weekly cycle, 15% of values missing and two outages;
- ``stations.csv``: a panel file, one row per (station, hour) for three stations, 15% of values missing;
- ``motions_TRAIN.ts`` / ``motions_TEST.ts``: two-variable series of two classes, lengths 12-24, in sktime's format.
"""

from __future__ import annotations

import csv
import datetime
import math
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
POSITIVE = ["great", "fun", "moving", "superb", "charming", "witty", "tender", "gripping"]
NEGATIVE = ["dull", "awful", "boring", "clumsy", "tedious", "flat", "lifeless", "muddled"]
FILLER = ["the", "movie", "film", "plot", "actors", "story", "was", "and", "a", "with", "scenes", "script", "its"]


def _review(rng: random.Random, label: int) -> list[str]:
    words = [rng.choice(FILLER) for _ in range(rng.randint(5, 11))]
    for _ in range(rng.randint(1, 2)):
        words.insert(rng.randint(0, len(words)), rng.choice(POSITIVE if label else NEGATIVE))
    return words


def reviews(path: Path, n: int = 400) -> None:
    rng = random.Random(0)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["text", "label", "doc"])
        for i in range(n):
            words = _review(rng, i % 2)
            if rng.random() < 0.3:
                words[rng.randrange(len(words))] = rng.choice(["[MISSING]", "???"])
            w.writerow([" ".join(words), "positive" if i % 2 else "negative", f"d{i // 4}"])


def reviews_ocr(path: Path, n: int = 400) -> None:
    """A misread word gets a low confidence more often than a word read right, as engines give."""
    rng = random.Random(1)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["text", "label", "confidence"])
        for i in range(n):
            words, confidences = [], []
            for word in _review(rng, i % 2):
                if rng.random() < 0.25:  # misread: a letter swapped, the engine unsure
                    k = rng.randrange(len(word))
                    words.append(word[:k] + rng.choice("lI1rnmc0") + word[k + 1 :])
                    confidences.append(round(rng.uniform(0.05, 0.6), 2))
                else:
                    words.append(word)
                    confidences.append(round(rng.uniform(0.5, 0.99), 2))
            w.writerow([" ".join(words), "positive" if i % 2 else "negative", " ".join(map(str, confidences))])


def pairs(path: Path) -> None:
    """Every phrase once: a new combination of known words is what the model must translate (the memory
    can only offer the nearest phrase it holds)."""
    verbs = [("open", "öffnen"), ("close", "schließen"), ("save", "speichern"), ("print", "drucken"),
             ("delete", "löschen"), ("copy", "kopieren"), ("move", "verschieben"), ("show", "anzeigen")]  # fmt: skip
    things = [("the file", "die Datei"), ("the window", "das Fenster"), ("the page", "die Seite"),
              ("the table", "die Tabelle"), ("the folder", "den Ordner"), ("the image", "das Bild"),
              ("the list", "die Liste"), ("the chart", "das Diagramm")]  # fmt: skip
    places = [("in the editor", "im Editor"), ("on the server", "auf dem Server"), ("with the menu", "mit dem Menü"),
              ("in the browser", "im Browser"), ("on the desktop", "auf dem Desktop")]  # fmt: skip
    rows = [(f"{v} {t} {p}", f"{tt} {pp} {vv}") for v, vv in verbs for t, tt in things for p, pp in places]
    random.Random(5).shuffle(rows)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["source", "target"])
        w.writerows(rows)


def sensors(path: Path, n: int = 1000) -> None:
    rng = random.Random(2)
    outages = {(40, 55, 0), (300, 312, 2), (820, 840, 1)}  # (first day, last day, sensor): a sensor down for days
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["date", "north", "south", "east"])
        for t in range(n):
            row = []
            for j in range(3):
                value = 20 + 5 * math.sin(2 * math.pi * t / 7 + j) + 0.01 * t + rng.gauss(0, 0.5)
                down = any(a <= t <= b and j == s for a, b, s in outages)
                row.append("" if down or rng.random() < 0.15 else f"{value:.2f}")
            w.writerow([_date(t), *row])


def _date(t: int) -> str:
    return (datetime.date(2022, 1, 1) + datetime.timedelta(days=t)).isoformat()


def stations(path: Path, hours: int = 400) -> None:
    """A panel file: one row per (station, hour), a column per variable, 15% of values missing."""
    rng = random.Random(6)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["station", "hour", "temp", "wind"])
        for j, station in enumerate(("north", "south", "east")):
            for t in range(hours):
                when = datetime.datetime(2023, 1, 1) + datetime.timedelta(hours=t)
                temp = 10 + j + 5 * math.sin(2 * math.pi * t / 24) + rng.gauss(0, 0.3)
                wind = abs(3 + math.sin(2 * math.pi * t / 24 + 1) + rng.gauss(0, 0.3))
                cells = ["" if rng.random() < 0.15 else f"{v:.2f}" for v in (temp, wind)]
                w.writerow([station, when.strftime("%Y-%m-%d %H:%M"), *cells])


def motions(folder: Path, n: int = 80) -> None:
    for split, seed in (("TRAIN", 3), ("TEST", 4)):
        rng = random.Random(seed)
        lines = ["@problemName motions", "@univariate false", "@dimensions 2", "@classLabel true walk run", "@data"]
        for i in range(n):
            label = i % 2
            length = rng.randint(12, 24)
            a = [math.sin(t * (0.3 if label else 1.1)) + rng.gauss(0, 0.1) for t in range(length)]
            b = [rng.gauss(label, 0.3) if rng.random() > 0.1 else float("nan") for _ in range(length)]
            cells = [",".join("?" if math.isnan(v) else f"{v:.3f}" for v in xs) for xs in (a, b)]
            lines.append(":".join(cells) + f":{'run' if label else 'walk'}")
        (folder / f"motions_{split}.ts").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    reviews(HERE / "reviews.csv")
    reviews_ocr(HERE / "reviews_ocr.csv")
    pairs(HERE / "pairs.tsv")
    sensors(HERE / "sensors.csv")
    stations(HERE / "stations.csv")
    motions(HERE)
    print(f"wrote the example files in {HERE}")
