"""A small labelled text set written on the fly (tests never need the network or ../shared)."""

import csv
import random
from pathlib import Path

POSITIVE = ["great", "fun", "moving", "superb", "charming", "witty"]
NEGATIVE = ["dull", "awful", "boring", "clumsy", "tedious", "flat"]
FILLER = ["the", "movie", "film", "plot", "actors", "story", "was", "and", "a", "with", "scenes", "script"]


def write_sentiment_csv(path: Path, n: int = 240, seed: int = 0, sep: str = ",") -> Path:
    rng = random.Random(seed)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=sep)
        w.writerow(["text", "label", "doc"])
        for i in range(n):
            label = i % 2
            cue = rng.choice(POSITIVE if label else NEGATIVE)
            words = [rng.choice(FILLER) for _ in range(rng.randint(4, 10))]
            words.insert(rng.randint(0, len(words)), cue)
            w.writerow([" ".join(words), "pos" if label else "neg", f"d{i // 4}"])
    return path
