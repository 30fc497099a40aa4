"""Pretrained MiniLM with missing word pieces (issue 11): sentence-embedding cosine without training,
and fine-tuned classification, dynmask's bridge against Hugging Face's own model and placeholders.

Methods (missing word pieces; True = observed):
  dynamic   dynmask.hf: never attended, never pooled
  hf_mask   transformers' own BertModel with attention_mask=0 at missing pieces (pooled over observed)
  unk       [UNK] in their place, read and pooled like any piece
  mask      [MASK] in their place, read and pooled like any piece
  delete    removed before the model, the rest renumbered

    python experiments/pretrained.py cosine --seeds 0,1,2        # results/pretrained-rotten_tomatoes/cosine.{json,md}
    python experiments/pretrained.py finetune --seeds 0 --train-missing 0.3 --epochs 1
    python experiments/pretrained.py table                       # results.{json,md} from the finished runs
    python experiments/pretrained.py finetune --dataset 20newsgroups   # results/pretrained-20newsgroups/
    python experiments/pretrained.py window --dataset 20newsgroups     # how much of a post each window keeps
    python experiments/pretrained.py placeholders --dataset 20newsgroups --seeds 0 --rates 0.6
        # [UNK] / [MASK] on clean-trained weights, pooled over all pieces vs observed only: placeholders.{json,md}

Fine-tuning runs live in runs/pretrained/ (weights, resumable); each finished run's test scores are
copied to results/pretrained-rotten_tomatoes/runs/. Trained without holes (--train-missing 0), dynamic,
unk, mask and delete read the same inputs and train the same weights bit for bit (tests/test_hf.py);
--reuse-clean-weights trains the first of them and scores the others on its weights ("weights_from").
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dynmask import Mask
from dynmask.data.text import load_text_dataset
from dynmask.hf import PretrainedClassifier, PretrainedClassifierConfig, PretrainedTokenizer, load_pretrained
from dynmask.missingness import Schedule, apply_missingness, make_process
from dynmask.pooling import masked_mean
from dynmask.seed_stats import format_mean_sd, mean_sd
from dynmask.tasks.classify.task import MissingSpec, TextClassificationTask
from dynmask.tasks.pretrained import resolve_pretrained
from dynmask.training import TrainConfig, Trainer, load_weights

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "results" / "pretrained-rotten_tomatoes"
RUNS = ROOT / "runs" / "pretrained"  # under the repository, wherever the script is run from
# word pieces kept per text: reviews are short; newsgroup posts are cut as the from-scratch demo cuts them
MAX_LEN = {"rotten_tomatoes": 64, "20newsgroups": 128}


def _out(dataset: str) -> tuple[Path, Path]:
    """(results folder, run folders) of one data set; Rotten Tomatoes keeps its original paths."""
    if dataset == "rotten_tomatoes":
        return OUT, RUNS
    return ROOT / "results" / f"pretrained-{dataset}", ROOT / "runs" / f"pretrained-{dataset}"


METHODS = ("dynamic", "hf_mask", "unk", "mask", "delete")
TEST_RATES = (0.0, 0.2, 0.4, 0.6)
COSINE_SEED = 20261130  # cosine's hole draw for --seeds 0; seed s draws with COSINE_SEED + s


class HFMaskClassifier(nn.Module):
    """Hugging Face's BertModel with attention_mask = observed, mean-pooled over observed pieces, and the
    same dropout + linear head as :class:`PretrainedClassifier`: the way a user masks holes today."""

    def __init__(self, folder: Path, num_classes: int, attn_dropout: float = 0.0) -> None:
        import transformers

        super().__init__()
        self.encoder = transformers.AutoModel.from_pretrained(
            str(folder), attention_probs_dropout_prob=attn_dropout, attn_implementation="sdpa"
        )
        self.dropout = nn.Dropout(self.encoder.config.hidden_dropout_prob)
        self.head = nn.Linear(self.encoder.config.hidden_size, num_classes)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, ids, mask: Mask):
        hidden = self.encoder(input_ids=ids, attention_mask=mask.observed.long()).last_hidden_state  # (B, L, D)
        return self.head(self.dropout(masked_mean(hidden, mask.observed)))


def _model(method: str, folder: Path, tok: PretrainedTokenizer, num_classes: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    if method == "hf_mask":
        return HFMaskClassifier(folder, num_classes)
    encoder = load_pretrained(folder, attn_dropout=0.0)
    return PretrainedClassifier(
        PretrainedClassifierConfig(
            encoder.config.to_dict(),
            num_classes,
            method=method,
            unk_id=tok.unk_id,
            mask_id=tok.mask_id,
            attn_dropout=0.0,
        ),
        encoder,
    )


def finetune(args) -> None:
    folder = resolve_pretrained("minilm")
    splits = load_text_dataset(args.dataset)
    max_len = args.max_len or MAX_LEN[args.dataset]
    tok = PretrainedTokenizer(folder, max_len=max_len)
    out_dir, runs_dir = _out(args.dataset)
    (out_dir / "runs").mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        for train_missing in args.train_missing:
            for method in args.methods:
                name = f"{method}-train{train_missing:g}-seed{seed}" + (f"-ep{args.epochs}" if args.epochs != 1 else "")
                name += f"-len{max_len}" if max_len != MAX_LEN[args.dataset] else ""
                done = out_dir / "runs" / f"{name}.json"
                if done.exists():
                    print(f"{name}: done", flush=True)
                    continue
                task = TextClassificationTask(splits, tok, MissingSpec(train_missing), seed=seed)
                model = _model(method, folder, tok, len(splits.labels), seed)
                source = _same_training(args, task, method, train_missing, name, out_dir, runs_dir)
                if source is None:
                    source, how = _train(task, model, args, seed, method, train_missing, max_len, runs_dir / name)
                else:  # this method would train the very same model: score the weights already trained
                    how = {"weights_from": source.name, "train_minutes_this_call": 0.0, "train_samples_per_s": None}
                load_weights(model, source / "best" / "model.safetensors")
                if "valid_best" not in how:
                    how["valid_best"] = task.evaluate(model, "valid")["score"]
                test = [task.evaluate(model, "test", MissingSpec(rate, "uniform", "static")) for rate in TEST_RATES]
                record = {"method": method, "train_missing": train_missing, "seed": seed, "epochs": args.epochs}
                record |= {"max_len": max_len, **how, "test": test}
                done.write_text(json.dumps(record, indent=2))
                print(f"{name}: " + " ".join(f"{r['accuracy']:.3f}" for r in test) + f" ({_how_text(how)})", flush=True)


def _train(task, model, args, seed: int, method: str, train_missing: float, max_len: int, out: Path):
    """Fine-tune ``model`` into the run folder ``out`` (resuming it if it exists) -> (out, timing and best
    validation score for the cell's record)."""
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=32,
        lr=5e-5,
        seed=seed,
        patience=args.epochs,
        progress=False,
        checkpoint_every=100,
    )
    meta = {"model": method, "train_missing": train_missing, "seed": seed, "epochs": args.epochs, "max_len": max_len}
    start = time.perf_counter()
    summary = Trainer(model, task, config, out, meta).fit(resume=out.exists())
    return out, {
        "train_minutes_this_call": (time.perf_counter() - start) / 60,
        "train_samples_per_s": summary["train_samples_per_s"],
        "valid_best": summary["best_score"],
    }


def _how_text(how: dict) -> str:
    """'12.3 min' for a trained cell, 'weights of X' for one scored on another cell's weights."""
    return f"weights of {how['weights_from']}" if "weights_from" in how else f"{how['train_minutes_this_call']:.1f} min"


def _natural_holes(task: TextClassificationTask) -> int:
    """Missing word pieces in the training texts themselves (markers, [UNK] pieces), before any artificial hole."""
    tok = task.tokenizer
    return sum(
        int(tok.mask(tok.pad(task.encoded["train"][s : s + 1024])).missing.sum())
        for s in range(0, len(task.encoded["train"]), 1024)
    )


def _same_training(args, task, method: str, train_missing: float, name: str, out_dir: Path, runs_dir: Path):
    """With ``--reuse-clean-weights``: the finished run folder of another bridge method (dynamic, unk, mask,
    delete) trained with the same seed and settings, when training has no holes at all (no artificial ones,
    and none in the texts). The four methods differ only in what they do at missing pieces (True = observed
    everywhere else), so without holes they read the same inputs and train the same model (validation is
    scored at the training rate, 0, so every epoch's score and the best epoch are the same too); None otherwise."""
    if not args.reuse_clean_weights or train_missing != 0 or method == "hf_mask":
        return None
    for other in ("dynamic", "unk", "mask", "delete"):
        other_name = other + name[len(method) :]
        trained = (out_dir / "runs" / f"{other_name}.json").exists() and (runs_dir / other_name / "best").is_dir()
        if other != method and trained:  # finished, and trained rather than reused itself
            natural = _natural_holes(task)
            if natural:
                print(f"{name}: trained, not reused: the training texts have {natural} missing pieces", flush=True)
                return None
            return runs_dir / other_name
    return None


def _holes(tok: PretrainedTokenizer, ids: torch.Tensor, rate: float, seed: int) -> torch.Tensor:
    if rate == 0:
        return ids
    process = make_process("uniform", rate)
    schedule = Schedule("static", process.n_uniforms, seed, ids.shape[1])
    return apply_missingness(ids, tok.content(ids), process, schedule, list(range(ids.shape[0])), 0, tok.mask_id)


def cosine(args) -> None:
    """Cosine of each method's sentence embedding of the gappy text to the embedding of the full text.

    One hole draw per seed in ``--seeds`` (draw seed ``COSINE_SEED + seed``, so seed 0 is the first table's
    draw); each cell is the mean over the test texts, then mean ± sd over the draws.
    """
    import transformers

    folder = resolve_pretrained("minilm")
    texts = [e.text for e in load_text_dataset("rotten_tomatoes").test][: args.n]
    tok = PretrainedTokenizer(folder, max_len=128)
    ours = load_pretrained(folder).eval()
    hf = transformers.AutoModel.from_pretrained(str(folder), attn_implementation="sdpa").eval()
    ids = tok.pad(tok.encode(texts))  # (N, L)
    full = tok.mask(ids)

    def hf_mean(input_ids, attention, pool=None):
        """HF's last hidden states with ``attention`` (True = attended), mean over ``pool`` (default: the
        attended positions), in chunks of 128 texts."""
        pool = attention if pool is None else pool
        out = []
        with torch.no_grad():
            for s in range(0, len(input_ids), 128):
                h = hf(input_ids=input_ids[s : s + 128], attention_mask=attention[s : s + 128].long()).last_hidden_state
                out.append(masked_mean(h, pool[s : s + 128]))
        return torch.cat(out)

    reference = hf_mean(ids, full.valid)

    def draw(rate, seed) -> dict:
        """method -> mean cosine over the texts, for one hole draw; plus the share of pieces hidden."""
        gappy = _holes(tok, ids, rate, seed=COSINE_SEED + seed)
        mask = tok.mask(gappy)  # True = observed
        with torch.no_grad():
            dyn = torch.cat(
                [
                    masked_mean(
                        ours(gappy[s : s + 128], Mask(mask.observed[s : s + 128], mask.valid[s : s + 128])),
                        mask.observed[s : s + 128],
                    )
                    for s in range(0, len(gappy), 128)
                ]
            )
        unk = torch.where(mask.missing, torch.full_like(gappy, tok.unk_id), gappy)
        keep = [row[m].tolist() for row, m in zip(gappy, mask.observed)]
        deleted = tok.pad(keep)
        methods = {
            "dynamic (dynmask)": dyn,
            "hf_mask (attention_mask=0, pooled over observed)": hf_mean(gappy, mask.observed),
            "delete": hf_mean(deleted, deleted != tok.pad_id),
            "[UNK], pooled over observed": hf_mean(unk, mask.valid, pool=mask.observed),
            "[UNK], pooled over all": hf_mean(unk, mask.valid),
            "[MASK], pooled over all": hf_mean(gappy, mask.valid),
        }
        out = {name: float(F.cosine_similarity(emb, reference, dim=-1).mean()) for name, emb in methods.items()}
        return {"hidden_share_of_pieces": float(mask.missing.sum() / tok.content(ids).sum()), **out}

    rows = []
    for rate in args.rates:
        per_seed = {seed: draw(rate, seed) for seed in args.seeds}
        keys = list(per_seed[args.seeds[0]])
        stats = {k: mean_sd([d[k] for d in per_seed.values()]) for k in keys}  # key -> (mean, sd or None)
        row = {"rate": rate, "seeds": args.seeds, **{k: mean for k, (mean, _) in stats.items()}}
        row["sd"] = {k: sd for k, (_, sd) in stats.items()}
        row["per_seed"] = {k: [per_seed[s][k] for s in args.seeds] for k in keys}
        rows.append(row)
        print(json.dumps({k: row[k] for k in ["rate", *keys]}), flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "cosine.json").write_text(json.dumps({"n_texts": len(texts), "seeds": args.seeds, "rows": rows}, indent=2))
    names = [k for k in keys if k != "hidden_share_of_pieces"]

    lines = [
        f"mean cosine to the full text's embedding over {len(texts)} test texts; mean ± sd over"
        f" {len(args.seeds)} hole draw(s) (seeds {','.join(map(str, args.seeds))})",
        "",
        "| word pieces hidden | " + " | ".join(names) + " |",
        "|" + " --- |" * (len(names) + 1),
    ]
    for row in rows:
        cells = [format_mean_sd(row[n], row["sd"][n], digits=3) for n in names]
        lines.append(f"| {row['rate']:.0%} | " + " | ".join(cells) + " |")
    (OUT / "cosine.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _signed(x: float) -> str:
    """+0.3 / -0.3, and 0.0 rather than -0.0 for a gap that rounds to nothing."""
    return f"{x:+.1f}" if round(x, 1) != 0 else "0.0"


def _mean_sd(xs: list, signed: bool = False) -> str:
    """'mean ± sample sd' over seeds; the mean alone for a single seed, whose spread is unknown (not 0)."""
    mean, sd = mean_sd(xs)
    text = _signed(mean) if signed else f"{mean:.1f}"
    return text if sd is None else f"{text} ± {sd:.1f}"


def _paired_gaps(by_method: dict) -> dict:
    """method -> (seeds, per-rate lists of dynamic's accuracy minus the method's, in points), over the seeds
    both were run with. Same seed = same training order and the same seeded test holes, so the seed-to-seed
    spread that both share cancels."""
    dynamic = {g["seed"]: g for g in by_method.get("dynamic", [])}
    out = {}
    for method, group in by_method.items():
        other = {g["seed"]: g for g in group}
        seeds = sorted(set(dynamic) & set(other))
        if method == "dynamic" or not seeds:
            continue
        gaps = [
            [100 * (dynamic[s]["test"][i]["accuracy"] - other[s]["test"][i]["accuracy"]) for s in seeds]
            for i in range(len(TEST_RATES))
        ]
        out[method] = (seeds, gaps)
    return out


def table(args) -> None:
    out_dir = _out(args.dataset)[0]
    runs = [json.loads(p.read_text()) for p in sorted((out_dir / "runs").glob("*.json"))]
    groups: dict = {}
    for run in runs:
        length = run.get("max_len", MAX_LEN[args.dataset])
        groups.setdefault((run["train_missing"], run.get("epochs", 1), length, run["method"]), []).append(run)
    lines, summary = [], []
    for train_missing, epochs, length in sorted({k[:3] for k in groups}, key=lambda k: (-k[0], k[1], k[2])):
        lines += [
            "**"
            + (
                f"trained with {train_missing:g} of word pieces hidden (dynamic holes)"
                if train_missing
                else "trained without holes"
            )
            + (f", {epochs} epochs" if epochs != 1 else "")
            + f", {length} word pieces"
            + "**",
            "",
            "| method | seeds | " + " | ".join(f"missing {r:g}: acc / macro-F1" for r in TEST_RATES) + " |",
            "|" + " --- |" * (len(TEST_RATES) + 2),
        ]
        for method in METHODS:
            group = groups.get((train_missing, epochs, length, method))
            if not group:
                continue
            cells = []
            for i, rate in enumerate(TEST_RATES):
                acc = [100 * g["test"][i]["accuracy"] for g in group]
                f1 = [100 * g["test"][i]["macro_f1"] for g in group]
                cells.append(f"{_mean_sd(acc)} / {_mean_sd(f1)}")
                summary.append(
                    {
                        "train_missing": train_missing,
                        "epochs": epochs,
                        "max_len": length,
                        "method": method,
                        "rate": rate,
                        "seeds": len(group),
                        "accuracy_mean": statistics.fmean(acc),
                        "macro_f1_mean": statistics.fmean(f1),
                    }
                )
            lines.append(f"| {method} | {len(group)} | " + " | ".join(cells) + " |")
        lines.append("")
        paired = _paired_gaps({m: groups.get((train_missing, epochs, length, m), []) for m in METHODS})
        if paired:
            lines += [
                "dynamic minus each method, accuracy points, paired by seed"
                " (a seed fixes the batches, the training holes and the test holes):",
                "",
                "| method | seeds | "
                + " | ".join(f"missing {r:g}" for r in TEST_RATES)
                + " | seeds × rates with dynamic ahead / level / behind |",
                "|" + " --- |" * (len(TEST_RATES) + 3),
            ]
            for method, (seeds, gaps) in paired.items():
                cells = [_mean_sd(g, signed=True) for g in gaps]
                flat = [x for g in gaps for x in g]
                ahead, level = sum(x > 1e-9 for x in flat), sum(abs(x) <= 1e-9 for x in flat)  # level: same count right
                tally = f"{ahead} / {level} / {len(flat) - ahead - level}"
                lines.append(f"| {method} | {len(seeds)} | " + " | ".join(cells) + f" | {tally} |")
                summary += [
                    {
                        "train_missing": train_missing,
                        "epochs": epochs,
                        "max_len": length,
                        "method": f"dynamic minus {method}",
                        "rate": rate,
                        "seeds": len(seeds),
                        "accuracy_gap_mean": statistics.fmean(g),
                        "accuracy_gaps": g,
                    }
                    for rate, g in zip(TEST_RATES, gaps)
                ]
            lines.append("")
    (out_dir / "results.md").write_text("\n".join(lines))
    (out_dir / "results.json").write_text(json.dumps({"runs": runs, "summary": summary}, indent=2))
    print("\n".join(lines))


class _PlaceholderProbe(nn.Module):
    """A fine-tuned bridge classifier that reads ``placeholder`` at missing pieces (True = observed) and pools
    its last hidden states two ways from the same pass: over every valid piece, as the unk / mask methods
    do (returned, so ``task.evaluate`` scores exactly that method), and over the observed pieces only (kept
    in ``observed_logits``). The two differ only in pooling; observed-only pooling differs from dynamic only
    in that the placeholders were read (attended to)."""

    def __init__(self, classifier: PretrainedClassifier, placeholder: int) -> None:
        super().__init__()
        self.classifier, self.placeholder = classifier, placeholder
        self.all_logits: list = []
        self.observed_logits: list = []

    def forward(self, ids, mask: Mask):
        read = torch.where(mask.missing, torch.full_like(ids, self.placeholder), ids)  # (B, L)
        hidden = self.classifier.encoder(read, Mask(mask.valid, mask.valid))  # (B, L, D): every valid piece read
        head = self.classifier.head
        self.observed_logits.append(head(masked_mean(hidden, mask.observed)))  # (B, C)
        self.all_logits.append(head(masked_mean(hidden, mask.valid)))  # (B, C)
        return self.all_logits[-1]


def placeholders(args) -> None:
    """Why a placeholder can fail on a model fine-tuned without holes: for each seed's clean dynamic weights
    and each test rate, ``[UNK]`` and ``[MASK]`` read in place of the hidden pieces, pooled over every piece
    (the table's unk / mask cells, recomputed as a check) and over the observed pieces only, next to dynamic
    (never read, never pooled; from the table's runs). Also the share of test posts given the single most
    predicted class (a collapse onto one class shows there)."""
    from dynmask.tasks.classify.task import accuracy_and_macro_f1

    if any(rate not in TEST_RATES for rate in args.rates):
        raise SystemExit(f"--rates: placeholders compares with the table's test rates {TEST_RATES}, got {args.rates}")
    folder = resolve_pretrained("minilm")
    splits = load_text_dataset(args.dataset)
    max_len = args.max_len or MAX_LEN[args.dataset]
    tok = PretrainedTokenizer(folder, max_len=max_len)
    out_dir, runs_dir = _out(args.dataset)
    n_classes, rows = len(splits.labels), []
    for seed in args.seeds:
        name = f"dynamic-train0-seed{seed}"
        dynamic = json.loads((out_dir / "runs" / f"{name}.json").read_text())
        task = TextClassificationTask(splits, tok, MissingSpec(0.0), seed=seed)
        labels = task.labels["test"]
        model = _model("dynamic", folder, tok, n_classes, seed)
        load_weights(model, runs_dir / name / "best" / "model.safetensors")
        for rate in args.rates:
            row = {"seed": seed, "rate": rate, "weights": name}
            row["dynamic"] = next(t["accuracy"] for t in dynamic["test"] if t["missing_rate"] == rate)
            for placeholder, pid in (("unk", tok.unk_id), ("mask", tok.mask_id)):
                probe = _PlaceholderProbe(model, pid)
                scored = task.evaluate(probe, "test", MissingSpec(rate, "uniform", "static"))
                for pooled, logits in (("all", probe.all_logits), ("observed", probe.observed_logits)):
                    pred = torch.cat(logits).argmax(-1)
                    acc, _ = accuracy_and_macro_f1(pred, labels, n_classes)
                    row[f"{placeholder}_pooled_{pooled}"] = acc
                    row[f"{placeholder}_pooled_{pooled}_top_class_share"] = float(
                        torch.bincount(pred, minlength=n_classes).max() / len(pred)
                    )
                assert abs(scored["accuracy"] - row[f"{placeholder}_pooled_all"]) < 1e-12
            rows.append(row)
            print(json.dumps(row), flush=True)
    record = {"dataset": args.dataset, "max_len": max_len, "test_posts": len(splits.test), "rows": rows}
    (out_dir / "placeholders.json").write_text(json.dumps(record, indent=2))
    cols = ["dynamic"] + [f"{p}_pooled_{w}" for p in ("unk", "mask") for w in ("all", "observed")]
    lines = [
        "| seed | missing | " + " | ".join(cols) + " | most predicted class, [MASK] pooled over all |",
        "|" + " --- |" * (len(cols) + 3),
    ]
    for row in rows:
        cells = " | ".join(f"{100 * row[c]:.1f}" for c in cols)
        lines.append(
            f"| {row['seed']} | {row['rate']:g} | {cells} | {100 * row['mask_pooled_all_top_class_share']:.1f}% |"
        )
    (out_dir / "placeholders.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def window(args) -> None:
    """How much of each test text a window of word pieces keeps: the from-scratch demo's tokenizer (BPE 8k,
    trained on the training texts, ``MAX_LEN`` pieces) against MiniLM's (WordPiece 30k) at ``MAX_LEN`` and
    twice that; MiniLM's window holds [CLS] and [SEP] too. Tokenization only, no model."""
    import numpy as np
    from tokenizers import Tokenizer

    from dynmask.data.tokenizer import TextTokenizer

    splits = load_text_dataset(args.dataset)
    texts = [e.text for e in splits.test]
    scratch = TextTokenizer.train((e.text for e in splits.train), vocab_size=8000).tokenizer
    minilm = Tokenizer.from_file(str(resolve_pretrained("minilm") / "tokenizer.json"))
    minilm.no_truncation()
    minilm.no_padding()
    words = np.array([len(t.split()) for t in texts])
    n = MAX_LEN[args.dataset]  # the window both models were trained with
    rows = []
    for name, tok, window_len, content in (
        ("from scratch (BPE 8k)", scratch, n, n),
        ("MiniLM (WordPiece 30k)", minilm, n, n - 2),
        ("MiniLM (WordPiece 30k)", minilm, 2 * n, 2 * n - 2),
    ):
        pieces = np.array([len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False)])
        kept = np.minimum(1.0, content / np.maximum(pieces, 1))  # share of each text's pieces in the window
        rows.append(
            {
                "tokenizer": name,
                "window": window_len,
                "pieces_per_text_median": float(np.median(pieces)),
                "pieces_per_word": float(pieces.sum() / words.sum()),
                "texts_cut": float(np.mean(pieces > content)),
                "share_of_pieces_kept": float(kept.mean()),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    out_dir = _out(args.dataset)[0]
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {"dataset": args.dataset, "test_texts": len(texts), "words_per_text_median": float(np.median(words))}
    (out_dir / "window.json").write_text(json.dumps({**record, "rows": rows}, indent=2))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=("cosine", "finetune", "placeholders", "table", "window"))
    p.add_argument("--dataset", choices=tuple(MAX_LEN), default="rotten_tomatoes", help="finetune / table / window")
    p.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0])
    p.add_argument("--methods", type=lambda s: s.split(","), default=list(METHODS))
    p.add_argument("--train-missing", type=lambda s: [float(x) for x in s.split(",")], default=[0.3])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-len", type=int, default=None, help="finetune: word pieces kept (default: per data set)")
    p.add_argument(
        "--reuse-clean-weights",
        action="store_true",
        help="finetune, --train-missing 0: score a finished bridge run's weights for the other bridge methods"
        " instead of training them again (without holes they train the same model)",
    )
    p.add_argument("--rates", type=lambda s: [float(x) for x in s.split(",")], default=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    p.add_argument("--n", type=int, default=1302, help="cosine: test texts")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    {"cosine": cosine, "finetune": finetune, "placeholders": placeholders, "table": table, "window": window}[args.what](
        args
    )


if __name__ == "__main__":
    main()
