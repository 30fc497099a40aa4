"""Tiny random Hugging Face checkpoints (BERT, RoBERTa, DistilBERT; BART encoder-decoders) with a fast
tokenizer, written in the test: no download, no hub."""

import json
from pathlib import Path

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

WORDS = [
    "the",
    "movie",
    "film",
    "plot",
    "was",
    "and",
    "a",
    "great",
    "fun",
    "dull",
    "awful",
    "boring",
    "moving",
    "with",
    "actors",
    "story",
    "ver",
    "##ung",
    "ist",
    "gut",
    "neg",
    "pos",
    "scenes",
    "script",
    "superb",
    "flat",
    "charming",
    "witty",
    "clumsy",
    "tedious",
    "[",
    "]",
    "?",
    ".",
    ",",
]


def write_checkpoint(folder: Path, family: str = "bert", layers: int = 2, hidden: int = 32, seed: int = 0) -> Path:
    import torch
    import transformers

    folder = Path(folder)
    if family in ("roberta", "bart"):
        specials = {"cls": "<s>", "pad": "<pad>", "sep": "</s>", "unk": "<unk>", "mask": "<mask>"}
        order = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    else:
        specials = {"cls": "[CLS]", "pad": "[PAD]", "sep": "[SEP]", "unk": "[UNK]", "mask": "[MASK]"}
        order = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {t: i for i, t in enumerate(order + WORDS)}
    tok = Tokenizer(models.WordPiece(vocab, unk_token=specials["unk"]))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    cls, sep = specials["cls"], specials["sep"]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B {sep}", special_tokens=[(cls, vocab[cls]), (sep, vocab[sep])]
    )
    tok.add_special_tokens(order)
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({f"{k}_token": v for k, v in specials.items()}))
    torch.manual_seed(seed)
    common = dict(vocab_size=len(vocab), max_position_embeddings=64)
    if family == "distilbert":
        config = transformers.DistilBertConfig(
            dim=hidden,
            n_layers=layers,
            n_heads=4,
            hidden_dim=2 * hidden + 3,
            pad_token_id=vocab[specials["pad"]],
            **common,
        )
    elif family == "bart":
        config = transformers.BartConfig(
            d_model=hidden,
            encoder_layers=layers,
            decoder_layers=layers,
            encoder_attention_heads=4,
            decoder_attention_heads=4,
            encoder_ffn_dim=2 * hidden + 3,
            decoder_ffn_dim=2 * hidden + 3,
            pad_token_id=vocab["<pad>"],
            bos_token_id=0,
            eos_token_id=2,
            decoder_start_token_id=2,
            scale_embedding=True,
            **common,
        )
        model = transformers.BartForConditionalGeneration(config)
        with torch.no_grad():  # a visible final_logits_bias (it starts at zero)
            model.final_logits_bias.normal_()
        model.save_pretrained(folder)
        return folder
    elif family == "roberta":
        config = transformers.RobertaConfig(
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=4,
            intermediate_size=2 * hidden + 3,
            pad_token_id=vocab["<pad>"],
            bos_token_id=0,
            eos_token_id=2,
            type_vocab_size=1,
            **common,
        )
    else:
        config = transformers.BertConfig(
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=4,
            intermediate_size=2 * hidden + 3,
            pad_token_id=0,
            **common,
        )
    model = transformers.AutoModel.from_config(config)
    model.save_pretrained(folder)
    return folder
