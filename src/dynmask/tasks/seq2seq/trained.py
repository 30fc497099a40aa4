"""A trained translate / summarize run as loaded from its folder, checked as untrusted input, and
generation from raw texts (missing markers honoured).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import torch

from ...baselines.fuzzy_match import FUZZY_FILE, FuzzyMatch
from ...baselines.memory import TranslationMemory
from ...data.tokenizer import TextTokenizer
from ...decoding import beam_search, greedy_decode
from ...devices import device_of, to_device
from ...files import read_json_object
from ...hf import PretrainedTokenizer, check_encoder_config
from ...models.seq2seq import Seq2Seq, Seq2SeqConfig
from ...training import load_run_model
from ...training.run_folders import RunFolderError, config_from_dict
from .sources import append_memory, cut_source


def load_tokenizer(folder: Path):
    """A run's tokenizer: a pretrained checkpoint's (``dynmask_tokenizer.json`` beside it) or dynmask's BPE."""
    if (Path(folder) / "dynmask_tokenizer.json").exists():
        return PretrainedTokenizer.load(folder)
    return TextTokenizer.load(folder)


def weights_digest(output: Path) -> Optional[str]:
    """The sha256 of the weights the test decodes with (``best/``'s manifest), or None without one: an
    interrupted test decoding resumes at the first rate not yet decoded by these very weights."""
    manifest = output / "best" / "manifest.json"
    if not manifest.exists():
        return None
    return read_json_object(manifest).get("sha256", {}).get("model.safetensors")


def load_seq2seq(folder: Path, device: Optional[torch.device] = None):
    """(model, tokenizer, run config) from a training run's folder (or its best/), checked as untrusted input;
    ``config["loaded_memory"]``: the run's :class:`~dynmask.memory.TranslationMemory` (or None)."""

    def build(c: dict) -> Seq2Seq:
        if isinstance(c, dict) and c.get("encoder") is not None:  # a warm-started model's shape
            check_encoder_config(c["encoder"], "config.json")
        return Seq2Seq(config_from_dict(Seq2SeqConfig, c, "config.json"))

    model, folder, config = load_run_model(folder, build, device, expect_task=("translate", "summarize"))
    for key in ("max_src_len", "max_tgt_len"):
        value = config.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= model.config.max_len:
            raise RunFolderError(
                f"{folder / 'config.json'}: {key} must be an integer in [1, {model.config.max_len}], got {value!r}"
            )
    try:
        tokenizer = load_tokenizer(folder)
    except RunFolderError:
        raise
    except Exception as e:  # tokenizers' own parse errors
        raise RunFolderError(f"the tokenizer in {folder} cannot be read ({type(e).__name__}: {e})") from None
    if tokenizer.vocab_size > model.config.vocab_size:
        raise RunFolderError(
            f"the tokenizer in {folder} has {tokenizer.vocab_size} tokens but the model only {model.config.vocab_size}"
        )
    repeat = config.setdefault("no_repeat_ngram", 0)  # runs before the guard decoded without it
    if not isinstance(repeat, int) or isinstance(repeat, bool) or not 0 <= repeat <= 16:
        raise RunFolderError(f"{folder / 'config.json'}: no_repeat_ngram must be an integer in [0, 16], got {repeat!r}")
    if config.get("memory", False) not in (True, False):
        raise RunFolderError(f"{folder / 'config.json'}: memory must be true or false, got {config['memory']!r}")
    # the model reads the nearest pair of its memory after each source: loaded here, for generate_texts
    config["loaded_memory"] = TranslationMemory.load(folder) if config.get("memory") else None
    # a fuzzy-match threshold chosen on validation for these weights (fit_fuzzy_match), with its memory
    config["loaded_fuzzy_match"] = None
    if (folder / FUZZY_FILE).exists():
        memory = config["loaded_memory"] or TranslationMemory.load(folder)
        config["loaded_fuzzy_match"] = (FuzzyMatch.load(folder), memory)
    return model, tokenizer, config


def generate_texts(
    model: Seq2Seq,
    tokenizer: TextTokenizer,
    texts: Sequence[str],
    *,
    beam: int = 4,
    max_len: int = 64,
    max_src_len: int = 128,
    length_penalty: float = 1.0,
    memory: Optional[TranslationMemory] = None,
    memory_len: int = 64,
    no_repeat_ngram: int = 0,
) -> list[str]:
    """Translate or summarise raw texts (missing markers honoured); ``memory``: a run trained with one
    (``load_seq2seq``'s ``config["loaded_memory"]``) reads each text's nearest pair after it, cut as in
    training (``memory_len``: the run's ``max_tgt_len``)."""
    src = tokenizer.pad([cut_source(tokenizer, ids, max_src_len) for ids in tokenizer.encode(texts)])
    mask = tokenizer.mask(src)
    if memory is not None:
        src, mask = append_memory(tokenizer, memory, src, mask, memory_len)
    src, mask = to_device((src, mask), device_of(model))
    kw = dict(bos=tokenizer.bos_id, eos=tokenizer.eos_id, max_len=max_len, no_repeat_ngram=no_repeat_ngram)
    out = (
        greedy_decode(model, src, mask, **kw)
        if beam == 1
        else beam_search(model, src, mask, beam=beam, length_penalty=length_penalty, **kw)
    )
    return [tokenizer.decode(h.tokens, skip_special_tokens=True) for h in out]
