"""dynmask train translate / summarize: a run from pairs to a scored best/ model, with the baselines and
the fuzzy-match hybrid beside every test score.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Optional, Sequence

import torch

from ...baselines.seq2seq import score_baselines
from ...data.lexicon import Lexicon
from ...data.pairs import PairSplits
from ...data.tokenizer import TextTokenizer
from ...hf import PretrainedTokenizer
from ...models.seq2seq import Seq2Seq, Seq2SeqConfig
from ...models.warm_start import warm_start_seq2seq
from ...training import Trainer, on_rank_zero_first, start_run_folder
from ...training.run_folders import fingerprint
from ..common import MissingSpec, choose_threshold, has_confidences, mark_splits, save_threshold
from .fallback import fit_fallback
from .fuzzy import fit_fuzzy_match, one_line_each, score_fuzzy_match
from .task import Seq2SeqTask
from .trained import load_seq2seq, load_tokenizer, weights_digest


def train_seq2seq(
    splits: PairSplits,
    output: Path,
    kind: str,
    model_config: dict,
    train_config,
    missing: MissingSpec,
    *,
    vocab_size: int = 8000,
    max_src_len: int = 128,
    max_tgt_len: int = 64,
    resume: bool = False,
    test_rates: Sequence[float] = (),
    beam: int = 4,
    test_limit: Optional[int] = None,
    overwrite: bool = False,
    length_penalty: float = 1.0,
    pretrained: Optional[Path] = None,
    memory: bool = False,
    fuzzy_match: bool = False,
    confidence_threshold: Optional[float] = None,
    no_repeat_ngram: int = 0,
) -> dict:
    """Tokenizer (BPE, shared by source and target), model, trainer; then BLEU/chrF or ROUGE at
    each test missing rate, with the trivial baselines (:mod:`dynmask.baselines`) fed the same gappy
    sources beside every score.

    ``pretrained``: a Hugging Face BERT-family checkpoint folder to warm-start from
    (:func:`dynmask.models.seq2seq.warm_start_seq2seq`, its own tokenizer; of ``model_config`` only
    ``method``, ``dec_layers``, ``copy`` and ``backend`` apply). ``memory``: the model also reads the target
    of the training pair nearest to each source (:func:`append_memory`); the pairs are saved
    with the run (``memory.json``) for ``predict``. ``fuzzy_match``: also choose a fuzzy-match threshold on
    the validation pairs (:func:`fit_fuzzy_match`) and score the hybrid beside every test score.
    ``no_repeat_ngram``: decoding never repeats an n-gram of its output (0: off); kept with the run, so
    ``evaluate`` and ``predict`` decode the same way."""

    output = Path(output)
    start_run_folder(output, resume=resume, overwrite=overwrite)
    tokenizer_dir = output / "tokenizer"
    confidences = has_confidences(splits)
    if confidences and confidence_threshold is not None:
        splits = mark_splits(splits, confidence_threshold)

    def make() -> None:
        if resume and (tokenizer_dir / "tokenizer.json").exists():
            return
        if pretrained is not None:
            PretrainedTokenizer(pretrained, max_len=max(max_src_len, max_tgt_len)).save(tokenizer_dir)
            return
        texts = [p.source for p in splits.train] + [p.target for p in splits.train]
        TextTokenizer.train(texts, vocab_size=vocab_size, max_len=max(max_src_len, max_tgt_len), kind="cased").save(
            tokenizer_dir
        )

    tokenizer = on_rank_zero_first(make, lambda: load_tokenizer(tokenizer_dir))
    task_options = dict(
        seed=train_config.seed, max_src_len=max_src_len, max_tgt_len=max_tgt_len, memory=memory,
        no_repeat_ngram=no_repeat_ngram,
    )  # fmt: skip
    task = Seq2SeqTask(splits, tokenizer, missing, kind=kind, **task_options)
    torch.manual_seed(train_config.seed)
    # positions: the source (and, with a memory, a separator, the nearest target and its end) or the target
    max_len = (max_src_len + max_tgt_len + 2) if memory else max(max_src_len, max_tgt_len) + 2
    if pretrained is None:
        config = Seq2SeqConfig(vocab_size=tokenizer.vocab_size, max_len=max_len, **model_config)
        model = Seq2Seq(config)
    else:
        keep = {k: model_config[k] for k in ("method", "dec_layers", "copy", "backend") if k in model_config}
        model = warm_start_seq2seq(pretrained, max_len=max_len, **keep)
        config = model.config
    run_config = {
        "task": kind,
        "model": config.to_dict(),
        "train": asdict(train_config),
        "missing": asdict(missing),
        "data": {
            "name": splits.name,
            **splits.info,
            "fingerprint": fingerprint(
                *([[p.source, p.target] for p in splits.split(k)] for k in ("train", "valid", "test"))
            ),
        },
        "max_src_len": max_src_len,
        "max_tgt_len": max_tgt_len,
        "vocab_size": vocab_size,
        "warm_start": None if pretrained is None else str(pretrained),
        "memory": memory,
        "confidence_threshold": confidence_threshold,  # None: chosen on validation (sources with confidences)
        "no_repeat_ngram": no_repeat_ngram,
    }
    trainer = Trainer(model, task, train_config, output, run_config)
    summary = trainer.fit(resume=resume)
    if confidences and trainer.main and (output / "best").exists():
        threshold, task = threshold_and_test_task(output, splits, tokenizer, kind, confidence_threshold, task_options)
        summary["confidence_threshold"] = threshold
    best = model  # the best weights, loaded once for the test scores and the validation fallback
    if trainer.main and (output / "best" / "model.safetensors").exists() and (test_rates or not train_config.max_steps):
        best = load_seq2seq(output)[0]
    valid_hyps = None  # the fuzzy-match fit's validation outputs, reused by the fallback's comparison
    if test_rates and trainer.main:
        hyp_dir = output / "test_hypotheses"
        hyp_dir.mkdir(exist_ok=True)
        decoded_with = {"model": weights_digest(output), "beam": beam, "test_limit": test_limit}
        if no_repeat_ngram:  # (absent when off: test decodings saved before the guard existed still count)
            decoded_with["no_repeat_ngram"] = no_repeat_ngram
        if length_penalty != 1.0:  # (absent at the default, so rates decoded before it existed still count)
            decoded_with["length_penalty"] = length_penalty

        def holes_at(rate: float) -> MissingSpec:  # the seeded test holes, the same for every method
            return MissingSpec(rate, missing.process, "static", missing.mean_span)

        def save_rate(result: dict) -> None:  # the rate's scores, keyed to the decoding that made them
            record = {"decoded_with": decoded_with, "result": result}
            (hyp_dir / f"missing{result['missing_rate']:.1f}.json").write_text(json.dumps(record, indent=2))

        results = []
        for rate in test_rates:
            done = hyp_dir / f"missing{rate:.1f}.json"  # a rate already decoded by this model is not redone
            previous = json.loads(done.read_text()) if done.exists() else {}
            reusable = decoded_with["model"] is not None and previous.get("decoded_with") == decoded_with
            if reusable and isinstance(previous.get("result"), dict):
                results.append(previous["result"])
                continue
            spec = holes_at(rate)
            hyps, refs, timing = task.generate(
                best, "test", spec, beam=beam, limit=test_limit, length_penalty=length_penalty,
                progress=train_config.progress,
            )  # fmt: skip
            baselines = score_baselines(task, "test", spec, limit=test_limit)  # the same gappy sources
            result = {
                "missing_rate": rate,
                **task.score(hyps, refs),
                **timing,
                "examples": hyps[:3],
                "baselines": baselines,
            }
            results.append(result)
            # one line per test pair, in file order, so anyone can re-score them
            (hyp_dir / f"missing{rate:.1f}.txt").write_text(one_line_each(hyps))
            save_rate(result)
        if fuzzy_match:
            choice, fuzzy_memory, valid_hyps = fit_fuzzy_match(
                output, task, best, beam=beam, length_penalty=length_penalty, progress=train_config.progress
            )
            for result in results:
                rate = result["missing_rate"]
                if result.get("fuzzy_match", {}).get("threshold") == choice.threshold:
                    continue
                hyps = (hyp_dir / f"missing{rate:.1f}.txt").read_text().split("\n")[:-1]  # one line per pair
                outputs, scores = score_fuzzy_match(
                    task, "test", holes_at(rate), hyps, choice, fuzzy_memory, limit=test_limit
                )
                result["fuzzy_match"] = scores
                (hyp_dir / f"fuzzy-missing{rate:.1f}.txt").write_text(one_line_each(outputs))
                save_rate(result)
        summary["test"] = results
        (output / "test_results.json").write_text(json.dumps(results, indent=2))
    if trainer.main and (output / "best" / "model.safetensors").exists() and train_config.max_steps is None:
        summary["validation"] = fit_fallback(
            output, task, best, beam=beam, length_penalty=length_penalty, progress=train_config.progress,
            hypotheses=valid_hyps,
        )  # fmt: skip
    return summary


VALID_LIMIT = 300  # validation sources decoded per threshold (greedy) when the threshold is chosen


def threshold_and_test_task(output: Path, splits, tokenizer, kind: str, given: Optional[float], options: dict):
    """(threshold, test task): ``given``, or the one of :data:`THRESHOLD_GRID` (and the reading: the
    engine's confidences alone, or capped by the training sources' lexicon) whose greedy outputs for the
    first :data:`VALID_LIMIT` validation sources score best (BLEU / ROUGE-L); saved in
    ``best/confidence.json`` (the manifest re-signed)."""
    best = load_seq2seq(output)[0]

    def score_at(t: float, lexicon) -> float:
        task = Seq2SeqTask(mark_splits(splits, t, lexicon), tokenizer, MissingSpec(0.0), kind=kind, **options)
        hyps, refs, _ = task.generate(best, "valid", MissingSpec(0.0), beam=1, limit=VALID_LIMIT)
        result = task.score(hyps, refs)
        return result["bleu"] if kind == "translate" else result["rougeL"]

    lexicon = Lexicon.from_texts(p.source for p in splits.train) if given is None else None
    threshold, lexicon, scores = choose_threshold(score_at, given, lexicon)
    save_threshold(output / "best", threshold, lexicon, scores, "valid_score")
    marked = mark_splits(splits, threshold, lexicon)
    return threshold, Seq2SeqTask(marked, tokenizer, MissingSpec(0.0), kind=kind, **options)
