"""How sure is a BLEU difference on 600 OCR'd sources? sacreBLEU's paired bootstrap resampling (Koehn 2004)
of the masked and oracle translations against the raw engine text's, from the hypotheses
``real_holes_translate.py`` committed (no model, no engine needed).

    python experiments/translate_paired_bootstrap.py results/real-holes-translate/6ep/learned-confidence
    # -> significance.{json,md} in that folder
    python experiments/translate_paired_bootstrap.py results/real-holes-translate/6ep-ocr3-first16000 \
        --baseline results/real-holes-translate/6ep/learned-confidence
    # against another model's raw engine text (here: the translator trained on clean sources):
    # -> significance-vs-baseline.{json,md}

Each level's test references are the targets of the sources the engine read (their ids in
``results/engine-noise/libreoffice-en-de/test/ocr-L.jsonl``, a local cache rebuilt by engine_noise.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from real_holes_translate import PAIRS, readings  # experiments/real_holes_translate.py, beside this script
from sacrebleu.metrics import BLEU
from sacrebleu.significance import PairedTest

from dynmask.data.pairs import load_pairs

SYSTEMS = ("raw", "masked", "oracle")  # the first is the baseline; the oracle where the folder has it
SAMPLES = 1000


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")[:-1]  # one hypothesis per line, a final newline


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path, help="a real_holes_translate.py output folder (results.json, hypotheses/)")
    p.add_argument("--baseline", type=Path, help="another output folder: its raw engine text is the baseline")
    args = p.parse_args(argv)
    folder, baseline = args.folder, args.baseline
    test = load_pairs(str(PAIRS)).test
    levels = json.loads((folder / "results.json").read_text())["levels"]
    rows = {}
    for level in levels:
        refs = [test[r["id"]].target for r in readings("test", int(level.removeprefix("ocr-")))]
        paths = {name: folder / "hypotheses" / f"{level}.{name}.txt" for name in SYSTEMS}
        systems = [(name, _lines(path)) for name, path in paths.items() if path.exists()]
        if baseline is not None:  # the other model's raw reading first: the baseline of every test
            systems.insert(0, ("baseline raw", _lines(baseline / "hypotheses" / f"{level}.raw.txt")))
        if any(len(h) != len(refs) for _, h in systems):
            raise SystemExit(f"{folder}: {level}'s hypotheses do not match its {len(refs)} sources")
        # sacreBLEU seeds its resampling (SACREBLEU_SEED, default 12345): the file is reproducible
        test_ = PairedTest(systems, {"BLEU": BLEU()}, [refs], test_type="bs", n_samples=SAMPLES)
        _, scores = test_()
        out = {}
        for (name, _), result in zip(systems, scores["BLEU"]):
            out[name] = {"bleu": result.score, "mean": result.mean, "ci": result.ci, "p_value": result.p_value}
        rows[level] = out
    stem = "significance" if baseline is None else "significance-vs-baseline"  # the baseline: in the .json
    record = {"samples": SAMPLES, **({} if baseline is None else {"baseline": str(baseline)}), "levels": rows}
    (folder / f"{stem}.json").write_text(json.dumps(record, indent=2))
    first = "raw" if baseline is None else "baseline raw"
    heads = {"raw": "raw engine text", "masked": "masked", "oracle": "oracle: exactly the wrong words masked"}
    if baseline is not None:
        heads = {
            "baseline raw": f"{baseline.as_posix()}: raw engine text",
            **{n: f"this model: {h}" for n, h in heads.items()},
        }
    names = [first] + [n for n in SYSTEMS if n != first]
    against = "raw" if baseline is None else heads[first]
    lines = [
        f"| OCR level (BLEU: bootstrap mean ± 95% interval; difference from {against}; "
        "paired bootstrap p) | " + " | ".join(heads[n] for n in names) + " |",
        "| --- " * (len(names) + 1) + "|",
    ]
    for level, r in rows.items():
        f = lambda n: f"{r[n]['mean']:.1f} ± {r[n]['ci']:.1f}"
        g = lambda n: f"{f(n)} ({r[n]['bleu'] - r[first]['bleu']:+.1f}, p = {r[n]['p_value']:.3f})" if n in r else "—"
        lines.append(f"| {level} | {f(first)} | " + " | ".join(g(n) for n in names[1:]) + " |")
    (folder / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
