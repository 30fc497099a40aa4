"""Generation metrics from the standard libraries: sacreBLEU (BLEU, chrF, with signatures) and
``rouge-score`` (ROUGE-1/2/L F-measure), plus the lead-sentence summarization baseline."""

from __future__ import annotations

import re
from typing import Sequence

from .extras import require

__all__ = ["bleu_chrf", "rouge", "lead_sentences"]


def bleu_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> dict:
    """Corpus BLEU and chrF (sacreBLEU defaults) and their signatures."""
    metrics = require("sacrebleu.metrics")
    BLEU, CHRF = metrics.BLEU, metrics.CHRF

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    bleu, chrf = BLEU(), CHRF()
    b = bleu.corpus_score(list(hypotheses), [list(references)])
    c = chrf.corpus_score(list(hypotheses), [list(references)])
    return {
        "bleu": b.score,
        "chrf": c.score,
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }


def rouge(hypotheses: Sequence[str], references: Sequence[str]) -> dict:
    """Mean ROUGE-1, ROUGE-2 and ROUGE-L F-measures (×100), Porter stemming on."""
    rouge_scorer = require("rouge_score.rouge_scorer")

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    totals = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for hyp, ref in zip(hypotheses, references):
        scores = scorer.score(ref, hyp)
        for k in totals:
            totals[k] += scores[k].fmeasure
    n = max(1, len(hypotheses))
    return {k: 100 * v / n for k, v in totals.items()}


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def lead_sentences(document: str, n: int = 1) -> str:
    """The first ``n`` sentences of a document: the summarization baseline."""
    return " ".join(_SENTENCE_END.split(document.strip())[:n])
