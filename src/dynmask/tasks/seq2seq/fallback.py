"""Never worse than a trivial baseline on validation: after training, a translate / summarize run decodes its
validation pairs and scores them beside the baselines fed the same sources (copy-source and the
translation memory; lead-1 and the nearest training summary). When a baseline scores higher, the run
records it (``best/seq2seq_fallback.json``, with the training pairs a memory needs) and ``predict`` answers
each text with that baseline and says so (``--use-model`` decodes with the model anyway), as the
imputer and the forecaster do with their baselines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

from ...baselines.fuzzy_match import METRIC
from ...baselines.memory import TranslationMemory
from ...baselines.seq2seq import baseline_outputs
from ...errors import RunFolderError
from ...files import read_json_object
from ...metrics import lead_sentences
from ...training.run_folders import write_manifest
from ..common import MissingSpec
from .sources import cut_source, observed_texts

__all__ = ["FALLBACK_FILE", "fit_fallback", "read_fallback", "fallback_outputs", "answer_texts"]

FALLBACK_FILE = "seq2seq_fallback.json"
VALID_LIMIT = 500  # validation pairs decoded to compare (the first ones, as the baselines read them)
BASELINES = {"translate": ("copy-source", "translation memory"), "summarize": ("lead-1", "nearest training summary")}


def fit_fallback(
    output: Path, task, model, *, beam: int, length_penalty: float, progress: bool = False,
    hypotheses: Optional[Sequence[str]] = None,
) -> dict:  # fmt: skip
    """Score the model and the baselines on the validation pairs (nothing hidden): {"valid": scores,
    "metric", "fallback": the baseline that beats the model (recorded in ``best/``) or None}.
    ``hypotheses``: the model's validation outputs at the same beam and length penalty, already decoded
    (the fuzzy-match fit's), so they are not decoded again."""
    best = Path(output) / "best"
    metric = METRIC[task.kind]
    if hypotheses is None:
        hyps, refs, _ = task.generate(model, "valid", MissingSpec(0.0), beam=beam, length_penalty=length_penalty,
                                      limit=VALID_LIMIT, progress=progress)  # fmt: skip
    else:
        hyps = list(hypotheses)[:VALID_LIMIT]
        refs = [p.target for p in task.splits.valid][: len(hyps)]
    scores = {"model": task.score(hyps, refs)[metric]}
    for name, outputs in baseline_outputs(task, "valid", MissingSpec(0.0), limit=VALID_LIMIT).items():
        scores[name] = task.score(outputs, refs)[metric]
    winner = max(scores, key=scores.get)
    (best / FALLBACK_FILE).unlink(missing_ok=True)
    record = None
    if winner != "model":
        record = {"baseline": winner, "metric": metric, "valid": scores, "pairs": len(refs)}
        (best / FALLBACK_FILE).write_text(json.dumps(record, indent=2))
        if "memory" in winner or "nearest" in winner:  # predict needs the training pairs to look up
            TranslationMemory([p.source for p in task.splits.train], [p.target for p in task.splits.train]).save(best)
    write_manifest(best)
    return {"valid": scores, "metric": metric, "fallback": record["baseline"] if record else None}


def read_fallback(folder: Path) -> Optional[str]:
    """The baseline a run's ``best/`` chose over its model on validation, or None."""
    path = Path(folder) / FALLBACK_FILE
    if not path.is_file():
        return None
    name = read_json_object(path).get("baseline")
    if name not in {b for pair in BASELINES.values() for b in pair}:
        raise RunFolderError(f"{path}: unknown baseline {name!r}")
    return name


def fallback_outputs(name: str, folder: Path, tokenizer, texts: Sequence[str], max_src_len: int) -> list[str]:
    """The baseline ``name``'s output for each raw text, read as the model would read it (cut to
    ``max_src_len``, missing words left out)."""
    src = tokenizer.pad([cut_source(tokenizer, ids, max_src_len) for ids in tokenizer.encode(list(texts))])
    sources = observed_texts(tokenizer, src, tokenizer.mask(src))
    if name == "copy-source":
        return sources
    if name == "lead-1":
        return [lead_sentences(s) for s in sources]
    return TranslationMemory.load(folder).nearest_targets(sources)


def answer_texts(
    model, tokenizer, config: dict, folder: Path, texts: Sequence[str], *, baseline: Optional[str], beam: int,
    length_penalty: float, max_len: int, no_repeat_ngram: int, fuzzy: bool = True,
) -> list[dict]:  # fmt: skip
    """One row per raw text, as ``dynmask predict`` prints it: ``{"text", "output"}``, with ``"from"`` where
    ``baseline`` (the run's :func:`read_fallback`, None to decode) answers, or the fuzzy-match fields where
    the run chose a threshold and ``fuzzy``. ``config``: :func:`~.trained.load_seq2seq`'s run config."""
    from .fuzzy import fuzzy_match_texts
    from .trained import generate_texts

    texts = list(texts)
    if baseline is not None:
        outputs = fallback_outputs(baseline, folder, tokenizer, texts, config["max_src_len"])
        return [{"text": t, "output": o, "from": baseline} for t, o in zip(texts, outputs)]
    outputs = generate_texts(
        model, tokenizer, texts, beam=beam, length_penalty=length_penalty, max_len=max_len,
        max_src_len=config["max_src_len"], memory=config["loaded_memory"], memory_len=config["max_tgt_len"],
        no_repeat_ngram=no_repeat_ngram,
    )  # fmt: skip
    if config["loaded_fuzzy_match"] is None or not fuzzy:
        return [{"text": t, "output": o} for t, o in zip(texts, outputs)]
    matched = fuzzy_match_texts(tokenizer, texts, outputs, config["loaded_fuzzy_match"], config["max_src_len"])
    return [{"text": t, **f} for t, f in zip(texts, matched)]
