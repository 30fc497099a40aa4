"""Fine-tuning throughput: dynmask's MiniLM bridge vs Hugging Face's AutoModelForSequenceClassification,
on the same batches of Rotten Tomatoes reviews (64 word pieces at most), with 0% and 30% of the word
pieces missing. Each training step is forward + backward + AdamW; both models keep their checkpoint's
dropout settings (attention dropout 0.1). Hugging Face gets attention_mask = observed (its way of
masking holes); dynmask gets the mask and compacts (backend auto). Steps are interleaved, one model
then the other, in one process; the table gives medians and the ratio.

    python benchmarks/pretrained_throughput.py      # benchmarks/results/pretrained-throughput.{json,md}
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from dynmask.data.text import load_text_dataset
from dynmask.hf import PretrainedClassifier, PretrainedClassifierConfig, PretrainedTokenizer, load_pretrained
from dynmask.missingness import Schedule, apply_missingness, make_process
from dynmask.tasks.pretrained import resolve_pretrained

OUT = Path(__file__).resolve().parent / "results"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--rates", type=lambda s: [float(x) for x in s.split(",")], default=[0.0, 0.3])
    args = p.parse_args()
    import transformers

    folder = resolve_pretrained("minilm")
    tok = PretrainedTokenizer(folder, max_len=64)
    texts = [e.text for e in load_text_dataset("rotten_tomatoes").train]
    torch.manual_seed(0)
    ours = PretrainedClassifier(
        PretrainedClassifierConfig(load_pretrained(folder).config.to_dict(), 2, unk_id=tok.unk_id, mask_id=tok.mask_id),
        load_pretrained(folder),
    ).train()
    theirs = transformers.AutoModelForSequenceClassification.from_pretrained(
        str(folder), num_labels=2, attn_implementation="sdpa"
    ).train()
    opt = {"dynmask": torch.optim.AdamW(ours.parameters(), 5e-5), "hf": torch.optim.AdamW(theirs.parameters(), 5e-5)}
    rows = []
    for rate in args.rates:
        times = {"dynmask": [], "hf": []}
        for step in range(args.steps + 2):  # the first two steps of each rate are warm-up
            batch = texts[step * args.batch : (step + 1) * args.batch]
            ids = tok.pad(tok.encode(batch))
            if rate:
                process = make_process("uniform", rate)
                ids = apply_missingness(
                    ids,
                    tok.content(ids),
                    process,
                    Schedule("static", 1, step, ids.shape[1]),
                    list(range(len(batch))),
                    0,
                    tok.mask_id,
                )
            mask = tok.mask(ids)
            labels = torch.randint(0, 2, (len(batch),))
            for name in ("dynmask", "hf") if step % 2 == 0 else ("hf", "dynmask"):
                start = time.perf_counter()
                if name == "dynmask":
                    loss = torch.nn.functional.cross_entropy(ours(ids, mask), labels)
                else:
                    loss = theirs(input_ids=ids, attention_mask=mask.observed.long(), labels=labels).loss
                opt[name].zero_grad()
                loss.backward()
                opt[name].step()
                if step >= 2:
                    times[name].append(time.perf_counter() - start)
        row = {
            "missing": rate,
            "batch": args.batch,
            "steps": args.steps,
            "dynmask_s_per_step": statistics.median(times["dynmask"]),
            "hf_s_per_step": statistics.median(times["hf"]),
        }
        row["speedup_vs_hf"] = row["hf_s_per_step"] / row["dynmask_s_per_step"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    meta = {"torch": torch.__version__, "transformers": transformers.__version__, "threads": torch.get_num_threads()}
    (OUT / "pretrained-throughput.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = ["| word pieces missing | dynmask s/step | HF s/step | dynmask speed-up |", "| --- | --- | --- | --- |"]
    lines += [
        f"| {r['missing']:.0%} | {r['dynmask_s_per_step']:.3f} | {r['hf_s_per_step']:.3f} | {r['speedup_vs_hf']:.2f}× |"
        for r in rows
    ]
    (OUT / "pretrained-throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
