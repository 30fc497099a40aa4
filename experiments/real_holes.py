"""Real holes: text classifiers read OCR and speech-recognition output whose words carry the engine's
confidence (experiments/engine_noise.py). Does masking the words the engine doubts beat keeping them,
and does the dynamic mask beat a placeholder or deletion there?

    python experiments/real_holes.py train       # from-scratch models: dynamic / static / delete x 3 seeds
    python experiments/real_holes.py score       # every model on clean, raw and thresholded engine text
    python experiments/real_holes.py train --model minilm      # the MiniLM bridge, 3 seeds
    python experiments/real_holes.py score --model minilm --levels ocr-3,speech-140,speech-180
    python experiments/real_holes.py train --data 20newsgroups   # 20 Newsgroups, from scratch
    python experiments/real_holes.py score --data 20newsgroups --levels ocr-1,ocr-2,ocr-3
    python experiments/real_holes.py train --data 20newsgroups --engine-trained ocr-3 [--clean-share 0.5]
                                  # trained on tesseract's output (half of the training posts kept clean)
    python experiments/real_holes.py train --engine-trained speech-140 --read-limit 4000  # 4,000 read, the rest clean

Models are trained as the demo trains them (Rotten Tomatoes, 30% uniform training holes, 4 epochs);
none sees engine output. For each engine level and method the confidence threshold is chosen on the
validation split's engine output (never on test), from the grid training uses (``THRESHOLD_GRID``: 0,
which keeps every word, i.e. reads the raw engine text, then 0.1 ... 0.9), and the test split is scored at it. Writes
``results/real-holes-rotten_tomatoes/{results.json,results.md,accuracy_vs_wer.png}`` and one JSON per
(model, level) with every test prediction, so others can re-score.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import jiwer
import torch

from dynmask.data.confidence import mark_low_confidence, soft_mask
from dynmask.data.lexicon import Lexicon
from dynmask.data.text import load_text_dataset
from dynmask.demos.text import MODEL
from dynmask.devices import device_of, to_device
from dynmask.seed_stats import format_mean_sd, mean_sd
from dynmask.tasks.classify.task import load_classifier, train_text_classifier
from dynmask.tasks.common import THRESHOLD_GRID, MissingSpec
from dynmask.training import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
DATA = "rotten_tomatoes"  # the text set: select() sets it and the folders below from --data
ENGINE = ROOT / "results" / "engine-noise" / DATA
OUT = ROOT / "results" / f"real-holes-{DATA}"
RUNS = ROOT / "runs" / "real-holes"
TITLE = {"rotten_tomatoes": "Rotten Tomatoes", "20newsgroups": "20 Newsgroups"}
SCRATCH_MAX_LEN = {"rotten_tomatoes": 64, "20newsgroups": 128}  # word pieces, as the published demo runs read them


def select(data: str) -> None:
    """Point the script at one text set (Rotten Tomatoes keeps its original folders)."""
    global DATA, ENGINE, OUT, RUNS
    DATA, ENGINE, OUT = data, ROOT / "results" / "engine-noise" / data, ROOT / "results" / f"real-holes-{data}"
    RUNS = ROOT / "runs" / ("real-holes" if data == "rotten_tomatoes" else f"real-holes-{data}")


METHODS = ("dynamic", "static", "delete")  # static: missing words read as the learned [MISSING] placeholder
SEEDS = (0, 1, 2)
THRESHOLDS = THRESHOLD_GRID  # as training chooses it: 0.0 keeps every word (masking declined), then 0.1 ... 0.9
LEXICON: Lexicon | None = None  # score --lexicon: words no training text holds get confidence 0
LEARNED: dict = {}  # score --learned-confidence: level -> (model, vocabulary) from learned_confidence.py
MINILM_THRESHOLDS = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9)  # MiniLM: every other one (a forward pass per text and T is slow)


def engine_splits(level: str, clean_share: float = 0.0, read_limit: int | None = None):
    """The text set with every split replaced by the engine's output at ``level`` (words and confidences);
    ``clean_share``: that share of the training texts (drawn with seed 0) stays clean, without confidences;
    ``read_limit``: only the engine's readings of the first N training texts are used, and every other
    training text stays clean (instead of being left out), whatever more the engine has read since."""
    import random

    splits = load_text_dataset(DATA, seed=0)
    parts = {}
    for split in ("train", "valid", "test"):  # the training split: the texts the engine has read (all, or a prefix)
        engine = _engine(split, level)
        draw = random.Random(0)
        clean = [split == "train" and draw.random() < clean_share for _ in splits.split(split)]
        limited = split == "train" and read_limit is not None
        if limited:
            if sum(i < read_limit for i in engine) < read_limit:
                raise SystemExit(f"--read-limit {read_limit}: the engine has read fewer training texts at {level}")
            engine = {i: r for i, r in engine.items() if i < read_limit}
        read = lambda i, e: replace(e, text=engine[i][0], confidences=tuple(engine[i][1]))
        parts[split] = [e if clean[i] or i not in engine else read(i, e)
                        for i, e in enumerate(splits.split(split)) if i in engine or limited]  # fmt: skip
    return replace(splits, **parts)


def engine_tag(level: str, clean_share: float = 0.0, read_limit: int | None = None) -> str:
    """The name of models trained on ``level``'s output: ``ocr-3``, ``ocr-3-clean50`` with half kept clean,
    ``speech-140-first4000`` with the engine's reading of the first 4,000 texts and the rest clean."""
    tag = level if not clean_share else f"{level}-clean{round(clean_share * 100)}"
    return tag if read_limit is None else f"{tag}-first{read_limit}"


def train(engine_level: str | None = None, clean_share: float = 0.0, read_limit: int | None = None) -> None:
    """From-scratch models on the clean text, or (``engine_level``) on the engine's output of the training
    split, with its confidences (``clean_share`` of the texts kept clean): the threshold is then chosen on
    validation by train_text_classifier."""
    splits = (load_text_dataset(DATA, seed=0) if engine_level is None
              else engine_splits(engine_level, clean_share, read_limit))  # fmt: skip
    runs = RUNS if engine_level is None else RUNS / f"engine-{engine_tag(engine_level, clean_share, read_limit)}"
    for method in METHODS:
        for seed in SEEDS:
            folder = runs / f"{method}-seed{seed}"
            if (folder / "test_results.json").exists():
                print(f"{method} seed {seed}: done", flush=True)
                continue
            summary = train_text_classifier(
                splits,
                folder,
                dict(MODEL, method=method),
                TrainConfig(epochs=4, batch_size=64, lr=2e-3, seed=seed, progress=False),
                MissingSpec(0.3),
                vocab_size=8000,
                max_len=SCRATCH_MAX_LEN[DATA],
                resume=folder.exists(),
                test_rates=(0.0,),
            )
            print(f"{method} seed {seed}: clean test accuracy {summary['test'][0]['accuracy']:.3f}", flush=True)


def minilm_runs(engine_level: str | None = None) -> Path:
    """The MiniLM runs' folder: trained on the clean text, or on the engine's output at ``engine_level``."""
    return RUNS / "minilm" if engine_level is None else RUNS / f"minilm-engine-{engine_level}"


def train_minilm(engine_level: str | None = None) -> None:
    """The MiniLM bridge fine-tuned as experiments/pretrained.py does (1 epoch, batch 32, lr 5e-5, 64 pieces),
    without training holes: trained so, the dynamic, [UNK] and delete bridges read the same inputs and
    learn the same weights bit for bit (tests/test_hf.py), so one model per seed serves all three and
    their paired differences come from the handling of the doubted words alone. ``engine_level``: trained
    on the engine's reading of the training (and validation) texts, every word read as the engine wrote it."""
    from types import SimpleNamespace

    from pretrained import MAX_LEN, _model, _train  # experiments/pretrained.py, beside this script

    from dynmask.hf import PretrainedTokenizer
    from dynmask.tasks.classify.task import TextClassificationTask
    from dynmask.tasks.pretrained import resolve_pretrained

    folder = resolve_pretrained("minilm")
    splits = load_text_dataset(DATA, seed=0) if engine_level is None else engine_splits(engine_level)
    tok = PretrainedTokenizer(folder, max_len=MAX_LEN[DATA])
    for seed in SEEDS:
        out = minilm_runs(engine_level) / f"seed{seed}"
        if (out / "best" / "model.safetensors").exists() and (out / "done").exists():
            print(f"minilm seed {seed}: done", flush=True)
            continue
        task = TextClassificationTask(splits, tok, MissingSpec(0.0), seed=seed)
        model = _model("dynamic", folder, tok, len(splits.labels), seed)
        _, how = _train(task, model, SimpleNamespace(epochs=1), seed, "dynamic", 0.0, MAX_LEN[DATA], out)
        (out / "done").write_text(json.dumps(how))
        print(f"minilm seed {seed}: {how}", flush=True)


def _engine(split: str, name: str) -> dict[int, tuple[str, list[float]]]:
    path = ENGINE / split / f"{name}.jsonl"
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    cap = (lambda words, c: c) if LEXICON is None else LEXICON.cap
    if name in LEARNED:  # the confidence model's probability that each word is right, in place of the engine's
        from learned_confidence import rescored

        model, vocab = LEARNED[name]
        return {r["id"]: (" ".join(r["words"]), rescored(model, vocab, r["words"], r["confidences"])) for r in records}
    return {r["id"]: (" ".join(r["words"]), cap(" ".join(r["words"]), r["confidences"])) for r in records}


def _predict(model, tokenizer, texts: list[str]) -> list[int]:
    out = []
    for start in range(0, len(texts), 256):
        ids = tokenizer.pad(tokenizer.encode(texts[start : start + 256]))
        ids, mask = to_device((ids, tokenizer.mask(ids)), device_of(model))
        with torch.no_grad():
            out += model(ids, mask).argmax(-1).tolist()
    return out


def _predict_soft(model, tokenizer, texts: list[str], confidences: list[list[float]], threshold: float) -> list[int]:
    """The dynamic mask with the engine's confidences used softly: pieces below ``threshold`` missing, the
    others with log(confidence) on their attention logit (dynmask.data.confidence.soft_mask)."""
    out = []
    for start in range(0, len(texts), 256):
        ids, piece_conf = tokenizer.encode_with_confidences(
            texts[start : start + 256], confidences[start : start + 256]
        )
        ids = tokenizer.pad(ids)
        mask = soft_mask(tokenizer.mask(ids), piece_conf, threshold)
        ids, mask = to_device((ids, mask), device_of(model))
        with torch.no_grad():
            out += model(ids, mask).argmax(-1).tolist()
    return out


_NORM = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.Strip()])


def oracle_marked(text: str, reference: str) -> str:
    """``text`` (the engine's words) with exactly the words it got wrong marked missing: a word is right
    when jiwer's alignment to the reference marks it equal. What no confidence can beat: the ceiling
    of masking."""
    words = text.split()
    normed = [_NORM(w) for w in words]
    kept = [i for i, w in enumerate(normed) if w and len(w.split()) == 1]
    right = set()
    if kept:
        ref = " ".join(_NORM(w) for w in reference.split() if _NORM(w)) or "-"
        for chunk in jiwer.process_words(ref, " ".join(normed[i] for i in kept)).alignments[0]:
            if chunk.type == "equal":
                right.update(kept[chunk.hyp_start_idx : chunk.hyp_end_idx])
    return " ".join(w if i in right else "[missing]" for i, w in enumerate(words))


def _clean(text: str) -> str:
    """The clean text as the engine read it (20 Newsgroups: its first MAX_WORDS words; engine_noise.py)."""
    from engine_noise import MAX_WORDS  # experiments/engine_noise.py, beside this script

    return " ".join(text.split()[: MAX_WORDS[DATA]]) if DATA in MAX_WORDS else text


def _accuracy(pred: list[int], gold: list[int]) -> float:
    return sum(p == g for p, g in zip(pred, gold)) / max(1, len(gold))


def _minilm(method: str, seed: int, labels: list[str], runs: Path):
    """(model, tokenizer, labels) of the seed's fine-tuned MiniLM (train_minilm) handling missing pieces as
    ``method`` says: dynamic, static (the [UNK] placeholder, read) or delete; the same weights for all."""
    from pretrained import MAX_LEN, _model

    from dynmask.hf import PretrainedTokenizer
    from dynmask.tasks.pretrained import resolve_pretrained
    from dynmask.training import load_weights

    folder = resolve_pretrained("minilm")
    tok = PretrainedTokenizer(folder, max_len=MAX_LEN[DATA])
    model = _model({"static": "unk"}.get(method, method), folder, tok, len(labels), seed)
    load_weights(model, runs / f"seed{seed}" / "best" / "model.safetensors")
    return model.eval(), tok, labels


def score(levels: list[str], engine_level: str | None = None, minilm: bool = False, lexicon: bool = False,
          clean_share: float = 0.0, read_limit: int | None = None, learned: bool = False) -> None:  # fmt: skip
    global LEXICON
    splits = load_text_dataset(DATA, seed=0)
    wer = json.loads((ENGINE / "wer.json").read_text())
    runs, out = (minilm_runs(), OUT / "minilm") if minilm else (RUNS, OUT)
    train_texts = splits.train
    if engine_level is not None:  # models trained on the engine's output at this level
        tag = engine_tag(engine_level, clean_share, read_limit)
        runs = minilm_runs(engine_level) if minilm else RUNS / f"engine-{tag}"
        out, levels = out / f"trained-on-{tag}", [engine_level]
        train_texts = engine_splits(engine_level, clean_share, read_limit).train
        (out / "trained_on.json").parent.mkdir(parents=True, exist_ok=True)
        clean = sum(e.confidences is None for e in train_texts)
        (out / "trained_on.json").write_text(json.dumps({"train_texts": len(train_texts), "clean_texts": clean}))
    if lexicon:  # the engine's confidences capped by the words of the texts the models trained on (as training does)
        LEXICON, out = Lexicon.from_texts(e.text for e in train_texts), out / "lexicon"
    if learned:  # a confidence model per level, fit on the validation readings (learned_confidence.py)
        from learned_confidence import Vocabulary, fit

        if engine_level is not None or lexicon:
            raise SystemExit("--learned-confidence: scored for models trained on clean text, without --lexicon")
        vocab, out = Vocabulary(DATA), out / "learned-confidence"
        LEARNED.update({level: (fit(level, vocab, DATA), vocab) for level in levels})
    out.mkdir(parents=True, exist_ok=True)
    cells = []  # one per (method, seed, level)
    for method in METHODS:
        for seed in SEEDS:
            model, tokenizer, labels = (
                _minilm(method, seed, splits.labels, runs) if minilm else load_classifier(runs / f"{method}-seed{seed}")
            )
            for level in levels:
                row = {"method": method, "seed": seed, "level": level}
                for split in ("valid", "test"):
                    engine = _engine(split, level)
                    ids = sorted(engine)
                    examples = splits.split(split)
                    gold = [examples[i].label for i in ids]
                    texts = [engine[i][0] for i in ids]
                    confidences = [engine[i][1] for i in ids]
                    # every threshold on validation; on test the whole curve for the small models, and
                    # only the chosen thresholds for MiniLM (a forward pass per text and threshold is slow here)
                    thresholds = MINILM_THRESHOLDS if minilm else THRESHOLDS
                    grid = thresholds if split == "valid" or not minilm else (row["threshold"],)
                    marked = {t: [mark_low_confidence(x, c, t) for x, c in zip(texts, confidences)] for t in grid}
                    preds = {t: _predict(model, tokenizer, marked[t]) for t in grid}
                    at = {t: _accuracy(preds[t], gold) for t in grid}
                    soft = {}
                    if method == "dynamic":
                        grid = thresholds if split == "valid" or not minilm else (row["soft_threshold"],)
                        soft = {t: _accuracy(_predict_soft(model, tokenizer, texts, confidences, t), gold)
                                for t in grid}  # fmt: skip
                    if split == "valid":
                        row["valid_by_threshold"] = at
                        row["threshold"] = max(at, key=lambda t: (at[t], -t))  # ties: the lower threshold
                        if soft:
                            row["valid_soft_by_threshold"] = soft
                            row["soft_threshold"] = max(soft, key=lambda t: (soft[t], -t))
                        continue
                    references = [_clean(examples[i].text) for i in ids]
                    clean_pred = _predict(model, tokenizer, references)
                    raw_pred = _predict(model, tokenizer, texts)
                    chosen, chosen_pred = marked[row["threshold"]], preds[row["threshold"]]  # on test's grid
                    oracle = [oracle_marked(x, ref) for x, ref in zip(texts, references)]
                    row["oracle"] = _accuracy(_predict(model, tokenizer, oracle), gold)
                    row.update(
                        texts=len(ids),
                        clean=_accuracy(clean_pred, gold),
                        raw=_accuracy(raw_pred, gold),
                        confidence=_accuracy(chosen_pred, gold),
                        test_by_threshold=at,
                        **({"soft": soft[row["soft_threshold"]], "test_soft_by_threshold": soft} if soft else {}),
                        masked_share=sum(w == "[missing]" for x in chosen for w in x.split())
                        / max(1, sum(len(x.split()) for x in chosen)),
                    )
                    predictions = {"ids": ids, "gold": gold, "clean": clean_pred, "raw": raw_pred,
                                   "confidence": chosen_pred, "threshold": row["threshold"]}  # fmt: skip
                    (out / "predictions").mkdir(exist_ok=True)
                    (out / "predictions" / f"{method}-seed{seed}-{level}.json").write_text(json.dumps(predictions))
                cells.append(row)
                print(f"{method} seed {seed} {level}: clean {row['clean']:.3f} raw {row['raw']:.3f} "
                      f"T={row['threshold']} {row['confidence']:.3f}", flush=True)  # fmt: skip
    previous = out / "results.json"  # cells of other levels, scored by an earlier call, are kept
    if previous.exists():
        kept = [c for c in json.loads(previous.read_text())["cells"] if c["level"] not in levels]
        cells = kept + cells
        levels = sorted({c["level"] for c in cells}, key=lambda lv: (lv.split("-")[0] != "ocr", lv))
    summary = summarise(cells, levels, wer)
    (out / "results.json").write_text(json.dumps({"cells": cells, "summary": summary, "wer": wer}, indent=2))
    placeholder = "[UNK]" if minilm else "[MISSING]"
    (out / "results.md").write_text(table(summary, levels, wer, placeholder))
    plot(summary, levels, wer, out)
    print(table(summary, levels, wer, placeholder))


def summarise(cells: list[dict], levels: list[str], wer: dict) -> dict:
    get = lambda method, level, key: [c[key] for c in cells if c["method"] == method and c["level"] == level]
    out = {}
    for level in levels:
        clean, raw = get("dynamic", level, "clean"), get("dynamic", level, "raw")
        row = {"clean": mean_sd(clean), "raw": mean_sd(raw)}
        for method in METHODS:
            row[method] = mean_sd(get(method, level, "confidence"))
            row[f"{method}_raw"] = mean_sd(get(method, level, "raw"))
            row[f"{method}_threshold"] = get(method, level, "threshold")
        for other in ("static", "delete"):  # paired by seed
            diffs = [a - b for a, b in zip(get("dynamic", level, "confidence"), get(other, level, "confidence"))]
            row[f"dynamic_minus_{other}"] = mean_sd(diffs)
        diffs = [a - b for a, b in zip(get("dynamic", level, "confidence"), raw)]
        row["dynamic_minus_raw"] = mean_sd(diffs)
        row["soft"] = mean_sd(get("dynamic", level, "soft"))
        row["oracle"] = mean_sd(get("dynamic", level, "oracle"))
        row["soft_threshold"] = get("dynamic", level, "soft_threshold")
        diffs = [a - b for a, b in zip(get("dynamic", level, "soft"), get("dynamic", level, "confidence"))]
        row["soft_minus_dynamic"] = mean_sd(diffs)
        best = max([row[m][0] for m in METHODS] + [row["soft"][0]])
        lost = row["clean"][0] - row["raw"][0]
        row["recovered_share"] = (best - row["raw"][0]) / lost if lost > 0 else None
        out[level] = row
    return out


def table(summary: dict, levels: list[str], wer: dict, placeholder: str = "[MISSING]") -> str:
    f = lambda ms: format_mean_sd(*ms, scale=100)
    lines = [
        "| engine, level | test WER | clean | raw engine text | dynamic, masked below T | soft: log-confidence "
        f"prior | static {placeholder} placeholder below T | delete below T | dynamic − static | dynamic − delete | "
        "dynamic − raw | soft − dynamic | loss recovered | oracle: exactly the wrong words masked (dynamic) |",
        "| --- " * 14 + "|",
    ]
    for level in levels:
        r = summary[level]
        rec = "—" if r["recovered_share"] is None else f"{100 * r['recovered_share']:.0f}%"
        lines.append(
            f"| {level} | {wer[f'test/{level}']['wer']:.2f} | {f(r['clean'])} | {f(r['raw'])} | {f(r['dynamic'])} | "
            f"{f(r['soft'])} | {f(r['static'])} | {f(r['delete'])} | {f(r['dynamic_minus_static'])} | "
            f"{f(r['dynamic_minus_delete'])} | {f(r['dynamic_minus_raw'])} | {f(r['soft_minus_dynamic'])} | {rec} | "
            f"{f(r['oracle'])} |"
        )
    return "\n".join(lines) + "\n"


def plot(summary: dict, levels: list[str], wer: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for key, label in (("raw", "raw engine text"), ("dynamic", "dynamic, masked below T"), ("soft", "soft prior"),
                       ("static", "static placeholder below T"), ("delete", "delete below T"),
                       ("clean", "clean text (upper bound)")):  # fmt: skip
        for engine, marker in (("ocr", "o"), ("speech", "s")):
            ls = [lv for lv in levels if lv.startswith(engine)]
            if not ls:
                continue
            xs = [wer[f"test/{lv}"]["wer"] for lv in ls]
            ys = [100 * summary[lv][key][0] for lv in ls]
            ax.plot(xs, ys, marker=marker, label=f"{label} ({engine})" if engine == "ocr" else None,
                    color={"raw": "grey", "dynamic": "C0", "soft": "C3", "static": "C1", "delete": "C2",
                           "clean": "k"}[key],
                    linestyle="-" if engine == "ocr" else ":")  # fmt: skip
    ax.set_xlabel("word error rate of the engine (test split)")
    ax.set_ylabel("accuracy (%), mean of 3 seeds")
    speech = " and speech recognition (··)" if any(lv.startswith("speech") for lv in levels) else ""
    ax.set_title(f"{TITLE[DATA]} read by OCR (—){speech}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_wer.png", dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("step", choices=("train", "score"))
    p.add_argument("--levels", default="ocr-1,ocr-2,ocr-3,speech-140,speech-180", help="engine levels to score")
    p.add_argument(
        "--model", choices=("scratch", "minilm"), default="scratch", help="from scratch, or the MiniLM bridge"
    )
    p.add_argument("--engine-trained", default=None, help="train / score models trained on this engine level")
    p.add_argument(
        "--clean-share", type=float, default=0.0, help="with --engine-trained: this share of training texts stays clean"
    )
    p.add_argument(
        "--read-limit",
        type=int,
        default=None,
        help="with --engine-trained: the engine's reading of the first N training texts, every other one clean",
    )
    p.add_argument(
        "--lexicon",
        action="store_true",
        help="score: unknown words get confidence 0",
    )
    p.add_argument(
        "--learned-confidence",
        action="store_true",
        help="score: each word's confidence from a model fit on the validation readings (learned_confidence.py)",
    )
    p.add_argument(
        "--data", choices=tuple(TITLE), default="rotten_tomatoes", help="the text set (default: %(default)s)"
    )
    args = p.parse_args(argv)
    select(args.data)
    torch.set_num_threads(2 if args.model == "minilm" else 1)
    if args.step == "train" and args.model == "minilm":
        train_minilm(args.engine_trained)
    elif args.step == "train":
        train(args.engine_trained, args.clean_share, args.read_limit)
    else:
        score(args.levels.split(","), args.engine_trained, minilm=args.model == "minilm", lexicon=args.lexicon,
              clean_share=args.clean_share, read_limit=args.read_limit, learned=args.learned_confidence)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
