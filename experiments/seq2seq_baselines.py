"""The trivial baselines of issue 12 on the full test sets, fed the same gappy sources a model gets:
copy-source and translation memory (LibreOffice help EN→DE), lead-1 and nearest training summary
(Debian descriptions), at source missing rates 0 / 0.2 / 0.4 (uniform, seeded test holes).

The sources are tokenized as ``dynmask train translate|summarize`` does (the same BPE tokenizer,
trained on the training pairs, and the same max source length as experiments/seq2seq.py), so a
model trained later sees exactly these holes.

    python experiments/seq2seq_baselines.py --task translate   # results/seq2seq-translate/baselines.{json,md}
    python experiments/seq2seq_baselines.py --task summarize   # + hypotheses/{baseline}-missing{R}.txt
"""

from __future__ import annotations

import argparse
import json
import time

from seq2seq import DATA, ROOT

from dynmask.baselines.seq2seq import baseline_outputs
from dynmask.data.pairs import load_pairs
from dynmask.data.tokenizer import TextTokenizer
from dynmask.tasks.classify.task import MissingSpec
from dynmask.tasks.seq2seq.task import Seq2SeqTask

RATES = (0.0, 0.2, 0.4)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", choices=tuple(DATA), required=True)
    args = p.parse_args()
    spec = DATA[args.task]
    t0 = time.perf_counter()
    splits = load_pairs(spec["data"], source_column=spec["source_column"], target_column=spec["target_column"])
    texts = [p.source for p in splits.train] + [p.target for p in splits.train]
    tok = TextTokenizer.train(
        texts, vocab_size=8000, max_len=max(spec["max_src_len"], spec["max_tgt_len"]), kind="cased"
    )
    task = Seq2SeqTask(
        splits, tok, MissingSpec(0.0), kind=args.task, max_src_len=spec["max_src_len"], max_tgt_len=spec["max_tgt_len"]
    )
    out = ROOT / "results" / f"seq2seq-{args.task}"
    (out / "hypotheses").mkdir(parents=True, exist_ok=True)
    refs = [p.target for p in splits.test]
    rows = []
    for rate in RATES:
        outputs = baseline_outputs(task, "test", MissingSpec(rate, "uniform", "static"))
        for name, hyps in outputs.items():
            slug = name.replace(" ", "-")
            (out / "hypotheses" / f"{slug}-missing{rate}.txt").write_text(
                "\n".join(h.replace("\n", " ") for h in hyps) + "\n"
            )
            rows.append({"baseline": name, "missing_rate": rate, "n": len(hyps), **task.score(hyps, refs)})
            print(json.dumps(rows[-1]), flush=True)
    meta = {
        "test_pairs": len(refs),
        "max_src_len": spec["max_src_len"],
        "tokenizer": "BPE 8000, cased, trained on the training pairs",
        "seconds": time.perf_counter() - t0,
    }
    (out / "baselines.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    keys = ["bleu", "chrf"] if args.task == "translate" else ["rouge1", "rouge2", "rougeL"]
    lines = [f"| baseline | missing | {' | '.join(keys)} |", "|" + " --- |" * (len(keys) + 2)]
    lines += [
        f"| {r['baseline']} | {r['missing_rate']:g} | " + " | ".join(f"{r[k]:.1f}" for k in keys) + " |" for r in rows
    ]
    (out / "baselines.md").write_text(
        f"Full test set ({len(refs)} pairs), sources cut at {spec['max_src_len']} "
        "tokens, test holes seeded.\n\n" + "\n".join(lines) + "\n"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
