"""Warm-started encoder-decoders (BERT2BERT from a Hugging Face checkpoint) on tiny random checkpoints
built here: exact weights where they come from the checkpoint, the guarantee (ids at missing source
positions change no output, loss or gradient), incremental decoding == teacher forcing with learned
positions, and the CLI round trip (train, evaluate, predict) with the checkpoint's own tokenizer."""

import json

import pytest
import torch

pytest.importorskip("transformers")

from hfdata import write_checkpoint  # noqa: E402

from dynmask.cli import main  # noqa: E402
from dynmask.data.text import DataError  # noqa: E402
from dynmask.hf import PretrainedTokenizer, load_pretrained  # noqa: E402
from dynmask.masks import Mask  # noqa: E402
from dynmask.models.warm_start import warm_start_seq2seq  # noqa: E402
from dynmask.tasks.seq2seq.trained import load_seq2seq  # noqa: E402
from dynmask.training.run_folders import RunFolderError  # noqa: E402

FAMILIES = ("bert", "roberta", "distilbert")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    return {f: write_checkpoint(tmp_path_factory.mktemp(f), f) for f in FAMILIES}


def _batch(tok, texts):
    ids = tok.pad(tok.encode(texts))
    return ids, tok.mask(ids)


@pytest.mark.parametrize("family", FAMILIES)
def test_warm_start_copies_the_checkpoint_exactly(checkpoints, family):
    folder = checkpoints[family]
    model = warm_start_seq2seq(folder, max_len=32).eval()
    source = load_pretrained(folder).eval()
    tok = PretrainedTokenizer(folder, max_len=16)
    ids, mask = _batch(tok, ["the movie was great fun", "a dull ??? plot"])
    with torch.no_grad():
        assert torch.equal(model.encode(ids, mask), source(ids, mask))  # the encoder is the checkpoint's
    for mine, theirs in zip(model.decoder.layers, source.encoder.layers):
        assert torch.equal(mine.self_attn.in_proj_weight, theirs.self_attn.in_proj_weight)
        assert torch.equal(mine.linear2.weight, theirs.linear2.weight)
        assert torch.equal(mine.norm3.weight, theirs.norm2.weight)  # post-FFN LayerNorm
    assert model.out.weight is model.src_embed.word_embeddings.weight  # tied, shared by source and target
    assert len(model.decoder.layers) == source.config.num_layers
    assert len(warm_start_seq2seq(folder, dec_layers=1, max_len=32).decoder.layers) == 1
    with pytest.raises(ValueError, match="dec_layers"):
        warm_start_seq2seq(folder, dec_layers=3, max_len=32)  # more than the checkpoint has
    with pytest.raises(ValueError, match="positions"):
        warm_start_seq2seq(folder, max_len=200)  # the checkpoint has 64


@pytest.mark.parametrize("copy", [False, True])
def test_ids_at_missing_source_positions_change_nothing(checkpoints, copy):
    folder = checkpoints["bert"]
    torch.manual_seed(0)
    model = warm_start_seq2seq(folder, copy=copy, max_len=32).eval()
    tok = PretrainedTokenizer(folder, max_len=16)
    src, src_mask = _batch(tok, ["the movie was ??? fun and [illegible]", "a ??? plot", "???"])
    assert src_mask.missing.any()
    tgt = tok.pad([[tok.bos_id, 10, 11, 12], [tok.bos_id, 13, 14]])
    tgt = torch.cat([tgt, tgt[:1]])  # (3, T)
    tgt_mask = tok.mask(tgt)
    other = torch.where(src_mask.missing, torch.randint(5, tok.vocab_size, src.shape), src)
    outputs, grads = [], []
    for ids in (src, other):
        model.zero_grad()
        out = model(ids, src_mask, tgt, tgt_mask)
        out[tgt_mask.valid][:, 5:].logsumexp(-1).sum().backward()
        outputs.append(out.detach())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert torch.equal(outputs[0][tgt_mask.valid], outputs[1][tgt_mask.valid])
    # the ids at missing positions are never read: every gradient (the shared, tied embedding table
    # included) is the same whatever they hold
    assert grads[0].keys() == grads[1].keys() and all(torch.equal(grads[0][n], grads[1][n]) for n in grads[0])


@pytest.mark.parametrize("copy", [False, True])
def test_incremental_decoding_equals_teacher_forcing_with_learned_positions(checkpoints, copy):
    folder = checkpoints["roberta"]  # positions start at padding_idx + 1
    model = warm_start_seq2seq(folder, copy=copy, max_len=32).eval()
    tok = PretrainedTokenizer(folder, max_len=16)
    src, src_mask = _batch(tok, ["the movie was ??? fun", "a dull plot"])
    tgt = torch.tensor([[tok.bos_id, 10, 11, 12, 13], [tok.bos_id, 14, 15, 16, 17]])
    with torch.no_grad():
        full = model(src, src_mask, tgt, Mask.full(2, 5))  # (B, T, V)
        memory = model.encode(src, src_mask)
        cache = model.start(memory, src_mask, src=src) if copy else model.start(memory, src_mask)
        steps = []
        for t in range(5):
            out, cache = model.next_logits(tgt[:, t], cache)
            steps.append(out)
    torch.testing.assert_close(torch.stack(steps, 1), full, atol=1e-5, rtol=1e-5)


def test_cli_summarize_warm_start_round_trip(checkpoints, tmp_path, capsys, monkeypatch):
    folder = checkpoints["bert"]
    docs = ["the movie was great fun and the actors were witty", "a dull plot with tedious scenes and a flat script"]
    sums = ["great fun", "dull plot"]
    rows = [f"{d}\t{s}" for d, s in zip(docs, sums)] * 12
    (tmp_path / "pairs.tsv").write_text("document\tsummary\n" + "\n".join(rows) + "\n")
    out = tmp_path / "run"
    args = ["train", "summarize", "--data", str(tmp_path / "pairs.tsv"), "--output", str(out), "--pretrained",
            str(folder), "--dec-layers", "1", "--epochs", "1", "--beam", "1", "--test-missing", "0,0.4",
            "--max-src-len", "20", "--max-tgt-len", "8", "--no-progress", "--copy"]  # fmt: skip
    assert main(args) == 0
    saved = json.loads((out / "best" / "config.json").read_text())
    assert saved["model"]["encoder"]["hidden_size"] == 32 and saved["model"]["dec_layers"] == 1
    assert saved["warm_start"] == str(folder)
    results = json.loads((out / "test_results.json").read_text())
    assert [r["missing_rate"] for r in results] == [0.0, 0.4] and "rouge1" in results[0]
    model, tok, _ = load_seq2seq(out)
    assert isinstance(tok, PretrainedTokenizer) and model.pretrained is not None
    capsys.readouterr()
    assert main(["predict", "--model", str(out), "--text", "the ??? was great fun", "--beam", "1"]) == 0
    assert "[MASK]" not in capsys.readouterr().out  # a hole is never written back as a token
    # a tampered encoder shape is refused before anything is built
    best = out / "best"
    saved["model"]["encoder"]["hidden_size"] = 64
    (best / "config.json").write_text(json.dumps(saved))
    (best / "manifest.json").unlink()  # past the checksum (allowed unsigned): the config check itself must refuse
    with pytest.raises(RunFolderError, match="manifest.json is missing"):
        load_seq2seq(best)
    monkeypatch.setenv("DYNMASK_ALLOW_UNSIGNED", "1")
    with pytest.raises(RunFolderError, match="hidden_size"):
        load_seq2seq(best)


# ------------------------------------------------------------------ BART: a whole pretrained encoder-decoder
@pytest.fixture(scope="module")
def bart(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("bart"), "bart")


def test_bart_logits_equal_transformers_when_nothing_is_missing(bart):
    import transformers

    ours = warm_start_seq2seq(bart, max_len=32).eval()
    theirs = transformers.BartForConditionalGeneration.from_pretrained(str(bart)).eval()
    tok = PretrainedTokenizer(bart, max_len=16)
    src, src_mask = _batch(tok, ["the movie was great fun", "a dull plot"])
    assert src_mask.observed.equal(src_mask.valid)
    tgt = torch.tensor([[2, 0, 10, 11, 12], [2, 0, 13, 14, 1]])  # decoder_start, <s>, ..., padding
    tgt_mask = tok.mask(tgt)
    with torch.no_grad():
        for backend in ("dense", "compact"):
            ours.encoder.backend = ours.decoder.backend = backend
            a = ours(src, src_mask, tgt, tgt_mask)
            b = theirs(
                input_ids=src, attention_mask=src_mask.valid.long(), decoder_input_ids=tgt,
                decoder_attention_mask=tgt_mask.valid.long(),
            ).logits  # fmt: skip
            assert (a - b)[tgt_mask.valid].abs().max() <= 1e-5, backend
    with pytest.raises(DataError, match="encoder-decoder"):
        load_pretrained(bart)  # not an encoder: the error says where to load it


def test_bart_guarantee_and_cached_decoding(bart):
    torch.manual_seed(0)
    model = warm_start_seq2seq(bart, copy=True, max_len=32).eval()
    tok = PretrainedTokenizer(bart, max_len=16)
    src, src_mask = _batch(tok, ["the movie was ??? fun", "a [illegible] plot with actors"])
    assert src_mask.missing.any()
    other = torch.where(src_mask.missing, torch.randint(5, tok.vocab_size, src.shape), src)
    tgt = torch.tensor([[2, 0, 10, 11], [2, 0, 12, 13]])
    with torch.no_grad():
        a, b = model(src, src_mask, tgt, Mask.full(2, 4)), model(other, src_mask, tgt, Mask.full(2, 4))
        assert torch.equal(a, b)
        memory = model.encode(other, src_mask)
        cache = model.start(memory, src_mask, src=other)
        steps = []
        for t in range(4):
            out, cache = model.next_logits(tgt[:, t], cache)
            steps.append(out)
    torch.testing.assert_close(torch.stack(steps, 1), a, atol=1e-5, rtol=1e-5)


def test_cli_summarize_from_bart(bart, tmp_path):
    rows = ["the movie was great fun and witty\tgreat fun", "a dull plot with a flat script\tdull plot"] * 12
    (tmp_path / "pairs.tsv").write_text("document\tsummary\n" + "\n".join(rows) + "\n")
    out = tmp_path / "run"
    args = ["train", "summarize", "--data", str(tmp_path / "pairs.tsv"), "--output", str(out), "--pretrained",
            str(bart), "--epochs", "1", "--beam", "1", "--test-missing", "0", "--max-src-len", "20",
            "--max-tgt-len", "8", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    model, tok, _ = load_seq2seq(out)
    assert model.is_bart and model.out.bias is not None
    assert model.tgt_embed.word_embeddings is model.src_embed.word_embeddings  # one table, after loading too
