"""Text classification with missing tokens: batches, missingness, loss, evaluation, prediction.

Missing tokens in a batch are ``[UNK]`` / ``[MISSING]`` ids (natural holes from the text, plus
artificial ones drawn by a missingness process); the mask is built from the ids at run time
(True = observed).
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from ...data.lexicon import Lexicon
from ...data.text import TextSplits
from ...data.tokenizer import DEFAULT_MISSING_MARKERS, TextTokenizer
from ...devices import device_of, to_device
from ...hf import (
    PretrainedClassifier,
    PretrainedClassifierConfig,
    PretrainedTokenizer,
    build_pretrained_classifier,
    load_pretrained,
    read_checkpoint_config,
)
from ...missingness import Schedule, apply_missingness
from ...models.classifier import ClassifierConfig, TextClassifier
from ...training import Trainer, load_run_model, on_rank_zero_first, start_run_folder
from ...training.run_folders import RunFolderError, config_from_dict, fingerprint, read_json

# shared by every task; re-exported here, where older code imports them from
from ..common import (  # noqa: F401  (TEST_SEED, TokenHoles: re-exported for code that imported them here)
    TEST_SEED,
    MissingSpec,
    TokenHoles,
    accuracy_and_macro_f1,
    choose_threshold,
    has_confidences,
    mark_splits,
    save_threshold,
)
from ..pretrained import resolve_pretrained

__all__ = ["MissingSpec", "TextClassificationTask", "accuracy_and_macro_f1", "load_classifier", "predict_texts"]


class TextClassificationTask:
    def __init__(
        self,
        splits: TextSplits,
        tokenizer: TextTokenizer,
        train_missing: MissingSpec,
        seed: int = 0,
        eval_batch_size: int = 256,
        device: Optional[torch.device] = None,
    ) -> None:
        self.splits, self.tokenizer, self.seed = splits, tokenizer, seed
        self.eval_batch_size = eval_batch_size
        self.device = device or torch.device("cpu")
        self.encoded = {
            name: tokenizer.encode([e.text for e in splits.split(name)]) for name in ("train", "valid", "test")
        }
        self.labels = {
            name: torch.tensor([e.label for e in splits.split(name)], dtype=torch.long)
            for name in ("train", "valid", "test")
        }
        self.holes = TokenHoles(train_missing, self.encoded["train"], tokenizer.vocab_size, seed, tokenizer.max_len)

    # ------------------------------------------------------------------ trainer interface
    def num_train(self) -> int:
        return len(self.encoded["train"])

    def _batch(self, split: str, indices: Sequence[int], process, schedule: Optional[Schedule], draw: int):
        ids = self.tokenizer.pad([self.encoded[split][i] for i in indices])  # (B, L)
        valid = self.tokenizer.content(ids)  # where holes may fall: text, not padding or [CLS]/[SEP]
        if process is not None:
            ids = apply_missingness(ids, valid, process, schedule, indices, draw, self.tokenizer.missing_id)
        return (
            ids.to(self.device),
            self.tokenizer.mask(ids).to(self.device),
            self.labels[split][indices].to(self.device),
        )

    def train_batch(self, indices: list[int], draw: int):
        return self._batch("train", indices, self.holes.train_process, self.holes.train_schedule, draw)

    def batch_size(self, batch) -> int:
        return batch[0].shape[0]

    def loss(self, model, batch) -> torch.Tensor:
        ids, mask, labels = batch
        return F.cross_entropy(model(ids, mask).float(), labels)

    def evaluate(self, model, split: str = "valid", missing: Optional[MissingSpec] = None) -> dict:
        """Accuracy, macro-F1 and loss on ``split`` with seeded test-time holes (same for every method)."""
        missing = self.holes.valid_missing if missing is None else missing
        process = self.holes.process(missing)
        schedule = self.holes.test_schedule(process, split)
        was_training = model.training
        model.eval()
        preds, losses = [], []
        n, device = len(self.encoded[split]), device_of(model)
        with torch.no_grad():
            for start in range(0, n, self.eval_batch_size):
                idx = list(range(start, min(n, start + self.eval_batch_size)))
                ids, mask, labels = to_device(self._batch(split, idx, process, schedule, 0), device)
                logits = model(ids, mask).float()
                losses.append(F.cross_entropy(logits, labels, reduction="sum"))
                preds.append(logits.argmax(-1).cpu())
        model.train(was_training)
        pred = torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long)
        acc, f1 = accuracy_and_macro_f1(pred, self.labels[split], len(self.splits.labels))
        return {
            "accuracy": acc,
            "macro_f1": f1,
            "loss": float(sum(losses)) / max(1, n),
            "score": acc,
            "missing_rate": missing.rate,
        }

    def save_assets(self, folder: Path) -> None:
        self.tokenizer.save(folder)
        (Path(folder) / "labels.json").write_text(json.dumps(self.splits.labels))


def load_classifier(folder: Path, device: Optional[torch.device] = None):
    """(model, tokenizer, labels) from a folder written by the trainer (``best/`` or ``checkpoint/``),
    checked as untrusted input (see :func:`dynmask.training.load_run_model`)."""

    def build(c):
        if isinstance(c, dict) and "encoder" in c:  # a fine-tuned pretrained encoder (dynmask.hf)
            return build_pretrained_classifier(c)
        return TextClassifier(config_from_dict(ClassifierConfig, c, "config.json"))

    model, folder, _ = load_run_model(folder, build, device, expect_task="classify")
    pretrained = hasattr(model, "encoder") and model.__class__.__name__ == "PretrainedClassifier"
    labels = read_json(folder / "labels.json")
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise RunFolderError(f"{folder / 'labels.json'} must be a JSON list of label names")
    if len(labels) != model.config.num_classes:
        raise RunFolderError(
            f"{folder / 'labels.json'} names {len(labels)} labels but the model has {model.config.num_classes} outputs"
        )
    try:
        if pretrained:
            tokenizer = PretrainedTokenizer.load(folder)
        else:
            tokenizer = TextTokenizer.load(folder)
    except RunFolderError:
        raise
    except Exception as e:  # tokenizers' own parse errors
        raise RunFolderError(f"the tokenizer in {folder} cannot be read ({type(e).__name__}: {e})") from None
    vocab, positions = (
        (
            model.encoder.config.vocab_size,
            model.encoder.config.max_position_embeddings - model.encoder.config.position_offset,
        )
        if pretrained
        else (model.config.vocab_size, model.config.max_len)
    )
    if tokenizer.vocab_size > vocab or not 1 <= tokenizer.max_len <= positions:
        raise RunFolderError(
            f"the tokenizer in {folder} ({tokenizer.vocab_size} tokens, texts cut at "
            f"{tokenizer.max_len}) does not fit the model ({vocab} tokens, positions up to "
            f"{positions})"
        )
    return model, tokenizer, labels


def predict_texts(
    model: TextClassifier, tokenizer: TextTokenizer, labels: list[str], texts: Sequence[str]
) -> list[dict]:
    """One row per text: its label and class probabilities. A text with no observed token (empty, or
    nothing but missing markers) gets ``"label": None`` and an ``"error"`` saying so: the model would
    only answer its prior."""
    encoded = tokenizer.encode(texts)
    ids = tokenizer.pad(encoded)
    mask = tokenizer.mask(ids)
    observed = tokenizer.observed_text_tokens(ids)  # (B,): [CLS]/[SEP] are not text
    ids, mask = to_device((ids, mask), device_of(model))
    with torch.inference_mode():
        probs = torch.softmax(model(ids, mask).float(), dim=-1).cpu()
    if not bool(torch.isfinite(probs).all()):
        raise FloatingPointError("the model gave non-finite probabilities; its weights may be damaged")
    out = []
    for text, p, n in zip(texts, probs, observed.tolist()):
        if n == 0:
            out.append(
                {
                    "text": text,
                    "label": None,
                    "observed_tokens": 0,
                    "error": "no observed token: the text is empty or holds only missing markers",
                }
            )
            continue
        out.append(
            {
                "text": text,
                "label": labels[int(p.argmax())],
                "observed_tokens": n,
                "probabilities": {name: round(float(v), 6) for name, v in zip(labels, p)},
            }
        )
    return out


def train_text_classifier(
    splits: TextSplits,
    output: Path,
    model_config: dict,
    train_config,
    missing: MissingSpec,
    *,
    vocab_size: int = 8000,
    max_len: int = 128,
    missing_markers: Optional[Sequence[str]] = None,
    resume: bool = False,
    test_rates: Sequence[float] = (),
    test_process: Optional[str] = None,
    overwrite: bool = False,
    pretrained: Optional[str] = None,
    confidence_threshold: Optional[float] = None,
) -> dict:
    """Train on ``splits`` (tokenizer, model, trainer), then score the best model on the test split at
    each of ``test_rates``. Returns the trainer's summary plus ``"test"`` results.

    ``pretrained`` (``"minilm"`` or a Hugging Face checkpoint folder): fine-tune that encoder
    (:mod:`dynmask.hf`) with its own tokenizer; ``model_config`` then takes ``method``
    (dynamic | unk | mask | delete), ``pooling`` (mean | cls) and ``backend``.

    Examples with engine confidences (``Example.confidences``): words below ``confidence_threshold`` are
    missing in every split; without a threshold the model trains on the engine's words as they are, the
    threshold is chosen on the validation split (:data:`THRESHOLD_GRID`, the best accuracy), together
    with whether words the training texts never hold count as confidence 0 (``dynmask.data.lexicon``),
    saved in ``best/confidence.json`` (and ``best/lexicon.txt``), and the test scores use them."""

    output = Path(output)
    start_run_folder(output, resume=resume, overwrite=overwrite)
    confidences = has_confidences(splits)
    if confidences and confidence_threshold is not None:
        splits = mark_splits(splits, confidence_threshold)
    tokenizer_dir = output / "tokenizer"
    markers = DEFAULT_MISSING_MARKERS if missing_markers is None else missing_markers

    if pretrained is not None:
        source = resolve_pretrained(pretrained)
        checkpoint = read_checkpoint_config(source)
        positions = checkpoint.max_position_embeddings - checkpoint.position_offset
        if max_len > positions:  # texts are cut where the checkpoint's positions end, from the start
            print(
                f"texts cut at {positions} word pieces: the checkpoint has {positions} positions (--max-len {max_len})"
            )
            max_len = positions
        tokenizer = PretrainedTokenizer(source, max_len=max_len, missing_markers=markers)
        task = TextClassificationTask(splits, tokenizer, missing, seed=train_config.seed)
        allowed = {"method", "pooling", "backend", "attn_dropout"}
        unknown = sorted(set(model_config) - allowed)
        if unknown:
            raise ValueError(f"a pretrained model takes {sorted(allowed)} settings, not {unknown}")
        encoder = load_pretrained(
            source, backend=model_config.get("backend", "auto"), attn_dropout=model_config.get("attn_dropout")
        )
        unk_id = tokenizer.unk_id if tokenizer.unk_id is not None else tokenizer.mask_id
        config = PretrainedClassifierConfig(
            encoder.config.to_dict(), len(splits.labels), unk_id=unk_id, mask_id=tokenizer.mask_id, **model_config
        )
        torch.manual_seed(train_config.seed)
        model = PretrainedClassifier(config, encoder)
    else:

        def make() -> None:
            if not (resume and (tokenizer_dir / "tokenizer.json").exists()):
                TextTokenizer.train(
                    (e.text for e in splits.train), vocab_size=vocab_size, missing_markers=markers, max_len=max_len
                ).save(tokenizer_dir)

        tokenizer = on_rank_zero_first(make, lambda: TextTokenizer.load(tokenizer_dir))  # every rank: rank 0's
        task = TextClassificationTask(splits, tokenizer, missing, seed=train_config.seed)
        config = ClassifierConfig(
            vocab_size=tokenizer.vocab_size, num_classes=len(splits.labels), max_len=max(max_len, 8), **model_config
        )
        torch.manual_seed(train_config.seed)
        model = TextClassifier(config)
    data_id = fingerprint(*([[e.text, e.label] for e in splits.split(k)] for k in ("train", "valid", "test")))
    run_config = {
        "task": "classify",
        "model": config.to_dict(),
        "train": asdict(train_config),
        "missing": asdict(missing),
        "vocab_size": None if pretrained else vocab_size,
        "max_len": max_len,
        "missing_markers": None if missing_markers is None else list(missing_markers),
        "pretrained": pretrained if pretrained in (None, "minilm") else str(Path(pretrained).resolve()),
        "data": {"name": splits.name, "labels": splits.labels, **splits.info, "fingerprint": data_id},
        "confidence_threshold": confidence_threshold,  # None: chosen on validation (runs with confidences)
    }
    trainer = Trainer(model, task, train_config, output, run_config)
    summary = trainer.fit(resume=resume)
    best = None
    if trainer.main and confidences and (output / "best").exists():
        best = load_classifier(output / "best")[0]
        valid_only = replace(splits, train=[], test=[])  # a reading's score needs the validation texts alone
        accuracy_at = lambda t, lex: TextClassificationTask(
            mark_splits(valid_only, t, lex), tokenizer, MissingSpec(0.0)
        ).evaluate(best, "valid", MissingSpec(0.0))["accuracy"]
        lexicon = Lexicon.from_texts(e.text for e in splits.train) if confidence_threshold is None else None
        threshold, lexicon, by_threshold = choose_threshold(accuracy_at, confidence_threshold, lexicon)
        if by_threshold:  # chosen now: the test split is read at it
            marked = mark_splits(splits, threshold, lexicon)
            task = TextClassificationTask(marked, tokenizer, missing, seed=train_config.seed)
        save_threshold(output / "best", threshold, lexicon, by_threshold, "valid_accuracy")  # with the best weights
        summary["confidence_threshold"] = threshold
        summary["confidence_lexicon"] = lexicon is not None
    if test_rates and trainer.main:
        if best is None:
            best = load_classifier(output / "best")[0] if (output / "best").exists() else model
        results = []
        for rate in test_rates:
            spec = MissingSpec(rate, test_process or missing.process, "static", missing.mean_span)
            results.append(task.evaluate(best, "test", spec))
        summary["test"] = results
        (output / "test_results.json").write_text(json.dumps(results, indent=2))
    return summary
