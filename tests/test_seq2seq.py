"""Translation / summarization: decoding (greedy, beam, cache), missing source and target tokens,
overfitting a few pairs, metrics against the reference libraries, pair files."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dynmask import Mask
from dynmask.data.pairs import load_pairs
from dynmask.data.text import DataError
from dynmask.data.tokenizer import TextTokenizer
from dynmask.decoding import beam_search, greedy_decode
from dynmask.metrics import bleu_chrf, lead_sentences, rouge
from dynmask.models.seq2seq import Seq2Seq, Seq2SeqConfig
from dynmask.tasks.classify.task import MissingSpec
from dynmask.tasks.seq2seq.task import Seq2SeqTask

BOS, EOS, MISSING = 3, 4, 2


def _model(seed=0, vocab=40, method="dynamic", d=32):
    torch.manual_seed(seed)
    return Seq2Seq(
        Seq2SeqConfig(
            vocab, method=method, d_model=d, n_heads=2, enc_layers=2, dec_layers=2, d_ff=64, dropout=0.0, max_len=64
        )
    ).eval()


def _source(seed=0, batch=3, length=7, vocab=40):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(5, vocab, (batch, length), generator=g)
    src[0, 2] = MISSING
    src[1, 5:] = 0
    src[2, [1, 3]] = MISSING
    return src, Mask.from_tokens(src, missing=[1, MISSING], pad=0)


def test_beam_one_equals_greedy():
    model, (src, mask) = _model(), _source()
    greedy = greedy_decode(model, src, mask, bos=BOS, eos=EOS, max_len=12)
    beam = beam_search(model, src, mask, bos=BOS, eos=EOS, beam=1, max_len=12, length_penalty=0.0)
    assert [h.tokens for h in greedy] == [h.tokens for h in beam]
    for g, b in zip(greedy, beam):
        assert g.score == pytest.approx(b.score, abs=1e-5)


@pytest.mark.parametrize("beam", [1, 3])
def test_cached_decoding_equals_decoding_without_cache(beam):
    model, (src, mask) = _model(1), _source(1)
    decode = (
        (lambda **kw: greedy_decode(model, src, mask, bos=BOS, eos=EOS, max_len=10, **kw))
        if beam == 1
        else (lambda **kw: beam_search(model, src, mask, bos=BOS, eos=EOS, beam=beam, max_len=10, **kw))
    )
    cached, plain = decode(use_cache=True), decode(use_cache=False)
    assert [h.tokens for h in cached] == [h.tokens for h in plain]
    for c, p in zip(cached, plain):
        assert c.score == pytest.approx(p.score, abs=1e-4)


@pytest.mark.parametrize("beam", [1, 3])
def test_text_at_missing_source_positions_changes_nothing(beam):
    model, (src, mask) = _model(2), _source(2)
    other = torch.where(mask.missing, torch.randint(5, 40, src.shape), src)  # same mask, other ids
    run = lambda s: (
        greedy_decode(model, s, mask, bos=BOS, eos=EOS, max_len=10)
        if beam == 1
        else beam_search(model, s, mask, bos=BOS, eos=EOS, beam=beam, max_len=10)
    )
    a, b = run(src), run(other)
    assert [h.tokens for h in a] == [h.tokens for h in b]
    assert [h.score for h in a] == [h.score for h in b]


def test_static_baseline_does_read_missing_source_tokens():
    """Sanity check that the test above can fail: the static baseline attends to placeholders."""
    model, (src, mask) = _model(2, method="static"), _source(2)
    memory = model.encode(src, mask)
    shifted = Mask(mask.observed, mask.valid)
    other_mask = Mask(mask.valid, mask.valid)  # pretend the holes were observed words
    assert not torch.allclose(memory[mask.observed], model.encode(src, other_mask)[mask.observed])
    assert torch.equal(memory, model.encode(src, shifted))


def _tiny_pairs_task(pairs, tmp_path, missing=0.0):
    from dynmask.data.pairs import Pair, PairSplits

    splits = PairSplits("tiny", [Pair(*p) for p in pairs], [Pair(*p) for p in pairs], [Pair(*p) for p in pairs])
    tok = TextTokenizer.train(
        [p[0] for p in pairs] + [p[1] for p in pairs], vocab_size=200, min_frequency=1, kind="cased", max_len=32
    )
    return Seq2SeqTask(splits, tok, MissingSpec(missing), kind="translate", max_src_len=16, max_tgt_len=16), tok


def test_missing_target_tokens_have_zero_loss_weight(tmp_path):
    task, tok = _tiny_pairs_task([("a red house", "ein rotes [missing] Haus"), ("a cat", "eine Katze")], tmp_path)
    src, src_mask, tgt_in, tgt_mask, tgt_out, counted = task._batch("train", [0, 1], None, None, 0)
    hole_out = tgt_out == tok.missing_id
    assert hole_out.any() and not counted[hole_out].any()  # the marker is never a training target
    assert not tgt_mask.observed[tgt_in == tok.missing_id].any()  # nor a decoder key
    model = Seq2Seq(
        Seq2SeqConfig(tok.vocab_size, d_model=16, n_heads=2, enc_layers=1, dec_layers=1, d_ff=32, dropout=0.0)
    )
    batch = (src, src_mask, tgt_in, tgt_mask, tgt_out, counted)
    loss = task.loss(model, batch)
    other_out = torch.where(hole_out, torch.full_like(tgt_out, 7), tgt_out)  # whatever the hidden word was
    other_in = torch.where(tgt_in == tok.missing_id, torch.full_like(tgt_in, 9), tgt_in)
    assert torch.equal(loss, task.loss(model, (src, src_mask, other_in, tgt_mask, other_out, counted)))


def test_decoding_shows_a_bar_over_the_texts_when_asked(tmp_path, capsys):
    task, tok = _tiny_pairs_task([("a red house", "ein rotes Haus"), ("a cat", "eine Katze")], tmp_path)
    model = Seq2Seq(Seq2SeqConfig(tok.vocab_size, d_model=16, n_heads=2, enc_layers=1, dec_layers=1, d_ff=32))
    task.generate(model, "test", MissingSpec(0.2), beam=1, max_len=4, progress=True)
    err = capsys.readouterr().err
    assert "decoding test, 0.2 missing" in err and "0/2" in err
    task.generate(model, "test", beam=1, max_len=4)  # the default: quiet
    assert "decoding" not in capsys.readouterr().err


def test_the_repetition_guard_bans_exactly_the_tokens_that_repeat_an_ngram():
    from dynmask.decoding import ban_repeated_ngrams

    logp = torch.zeros(2, 10)
    prefix = torch.tensor([[1, 5, 6, 5], [1, 7, 7, 7]])
    banned = ban_repeated_ngrams(logp, prefix, 2)
    assert torch.isinf(banned[0]).nonzero().flatten().tolist() == [6]  # "5 6" exists: after 5, not 6 again
    assert torch.isinf(banned[1]).nonzero().flatten().tolist() == [7]
    assert torch.isinf(ban_repeated_ngrams(logp, prefix, 1)[0]).nonzero().flatten().tolist() == [1, 5, 6]
    assert torch.equal(ban_repeated_ngrams(logp, prefix, 0), logp) and torch.equal(
        ban_repeated_ngrams(logp, prefix, 5), logp
    )


@pytest.mark.parametrize("beam", [1, 3])
def test_decoding_with_the_guard_never_repeats_an_ngram(beam):
    torch.manual_seed(3)
    model = Seq2Seq(Seq2SeqConfig(30, d_model=16, n_heads=2, enc_layers=1, dec_layers=1, d_ff=32, dropout=0.0))
    src = torch.randint(4, 30, (4, 7))
    mask = Mask.from_tokens(src, pad=0)
    decode = (lambda **kw: greedy_decode(model, src, mask, **kw)) if beam == 1 else (
        lambda **kw: beam_search(model, src, mask, beam=beam, **kw))  # fmt: skip
    loose = decode(bos=1, eos=2, max_len=20)
    assert any(len(set(zip(h.tokens, h.tokens[1:]))) < len(h.tokens) - 1 for h in loose)  # a random model loops
    for h in decode(bos=1, eos=2, max_len=20, no_repeat_ngram=2):
        bigrams = list(zip([1, *h.tokens], h.tokens))
        assert len(bigrams) == len(set(bigrams)), h.tokens


def test_small_model_overfits_a_handful_of_pairs(tmp_path):
    pairs = [
        ("open the file", "die Datei öffnen"),
        ("close the window", "das Fenster schließen"),
        ("save the document", "das Dokument speichern"),
        ("print the page", "die Seite drucken"),
    ]
    task, tok = _tiny_pairs_task(pairs, tmp_path)
    torch.manual_seed(0)
    model = Seq2Seq(
        Seq2SeqConfig(
            tok.vocab_size, d_model=64, n_heads=4, enc_layers=1, dec_layers=1, d_ff=128, dropout=0.0, max_len=32
        )
    )
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    batch = task._batch("train", list(range(4)), None, None, 0)
    task.label_smoothing = 0.0
    model.train()
    for _ in range(250):
        opt.zero_grad()
        task.loss(model, batch).backward()
        opt.step()
    hyps, refs, _ = task.generate(model, "train", beam=1)
    assert hyps == refs
    hyps, _, _ = task.generate(model, "train", beam=3)
    assert hyps == refs


def test_bleu_chrf_and_rouge_match_the_libraries():
    import sacrebleu
    from rouge_score import rouge_scorer

    hyps = ["the cat sat on the mat", "a quick brown fox", "hello there world"]
    refs = ["the cat sat on a mat", "the quick brown fox jumps", "hello world"]
    ours = bleu_chrf(hyps, refs)
    assert ours["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert ours["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)
    assert ours["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    same = "the very same words are here"
    assert bleu_chrf([same], [same])["bleu"] == pytest.approx(100.0)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    expected = sum(scorer.score(r, h)["rouge2"].fmeasure for h, r in zip(hyps, refs)) / 3 * 100
    assert rouge(hyps, refs)["rouge2"] == pytest.approx(expected)
    assert rouge(["the cat sat"], ["the cat sat on the mat"])["rouge1"] == pytest.approx(200 / 3)


def test_lead_sentence_baseline():
    assert lead_sentences("First one. Second one! Third?") == "First one."
    assert lead_sentences("First one. Second one! Third?", 2) == "First one. Second one!"


def test_pair_files_with_split_pattern_and_errors(tmp_path):
    for split in ("train", "valid", "test"):
        (tmp_path / f"c.{split}.tsv").write_text(f"source\ttarget\nhello {split}\thallo {split}\n\tleer\n")
    splits = load_pairs(str(tmp_path / "c.{split}.tsv"))
    assert [p.source for p in splits.valid] == ["hello valid", ""]  # an empty source is kept (fully missing)
    with pytest.raises(DataError, match="Pass --target-column"):
        load_pairs(str(tmp_path / "c.{split}.tsv"), target_column="de")
    with pytest.raises(DataError, match="does not exist"):
        load_pairs(str(tmp_path / "x.{split}.tsv"))


@pytest.mark.parametrize("copy", [False, True])
def test_cli_translate_train_evaluate_predict(tmp_path, capsys, copy):
    import json

    from dynmask.cli import main

    words = [("open", "öffnen"), ("close", "schließen"), ("save", "speichern"), ("print", "drucken")]
    things = [("the file", "die Datei"), ("the window", "das Fenster"), ("the page", "die Seite")]
    rows = [f"{v} {t}\t{tt} {vv}" for v, vv in words for t, tt in things] * 3
    (tmp_path / "pairs.tsv").write_text("source\ttarget\n" + "\n".join(rows) + "\n")
    out = tmp_path / "run"
    small = [
        "--d-model",
        "32",
        "--heads",
        "2",
        "--enc-layers",
        "1",
        "--dec-layers",
        "1",
        "--d-ff",
        "64",
        "--vocab-size",
        "120",
        "--max-src-len",
        "16",
        "--max-tgt-len",
        "16",
        "--no-progress",
    ]
    assert (
        main(
            [
                "train",
                "translate",
                "--data",
                str(tmp_path / "pairs.tsv"),
                "--output",
                str(out),
                "--epochs",
                "1",
                "--beam",
                "2",
                "--test-missing",
                "0,0.4",
                *small,
                *(["--copy", "--fuzzy-match"] if copy else []),
            ]
        )
        == 0
    )
    results = json.loads((out / "test_results.json").read_text())
    assert [r["missing_rate"] for r in results] == [0.0, 0.4]
    assert {"bleu", "chrf", "bleu_signature", "tokens_per_s"} <= set(results[0])
    assert set(results[1]["baselines"]) == {"copy-source", "translation memory"}  # beside every score
    assert json.loads((out / "best" / "config.json").read_text())["model"]["copy"] is copy
    capsys.readouterr()
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(out),
                "--data",
                str(tmp_path / "pairs.tsv"),
                "--missing",
                "0.2",
                "--beam",
                "2",
                "--length-penalty",
                "1.5",
                "--json",
            ]
        )
        == 0
    )
    evaluated = json.loads(capsys.readouterr().out)[0]
    assert evaluated["missing_rate"] == 0.2 and ("fuzzy_match" in evaluated) is copy
    assert main(["predict", "--model", str(out), "--text", "open the ??? file", "--beam", "1"]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert row["text"] == "open the ??? file" and isinstance(row["output"], str)
    if not copy:
        assert set(row) == {"text", "output"}
        return
    # --fuzzy-match: a threshold chosen on validation, saved with the best weights, scored beside every test score
    from dynmask.baselines.fuzzy_match import GRID, FuzzyMatch
    from dynmask.training.run_folders import verify_manifest

    choice = FuzzyMatch.load(out / "best")
    verify_manifest(out / "best", required=True)
    assert choice.threshold in GRID and choice.valid_hybrid >= choice.valid_model
    assert all(r["fuzzy_match"]["threshold"] == choice.threshold for r in results)
    assert len((out / "test_hypotheses" / "fuzzy-missing0.4.txt").read_text().splitlines()) == len(
        (out / "test_hypotheses" / "missing0.4.txt").read_text().splitlines()
    )
    assert set(row) == {"text", "output", "from_memory", "similarity"}
    texts = ["open the file", "print the ??? page"]
    assert main(["predict", "--model", str(out), *[a for t in texts for a in ("--text", t)], "--beam", "1"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    memory = {f"{v} {t}": f"{tt} {vv}" for v, vv in words for t, tt in things}
    assert rows[0]["similarity"] == 1.0  # a training source, seen in full
    for r in rows:  # the memory's target exactly where the similarity reaches the threshold
        assert r["from_memory"] == (r["similarity"] >= choice.threshold)
        assert not r["from_memory"] or r["output"] in memory.values()
    assert main(["predict", "--model", str(out), "--text", "open the file", "--no-fuzzy-match", "--beam", "1"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"text", "output"}


def test_baselines_see_the_holes_the_model_sees():
    from dynmask.baselines.seq2seq import baseline_outputs, gappy_sources, nearest_targets
    from dynmask.data.pairs import Pair, PairSplits

    pairs = [
        Pair(f"Open the {w} dialog and choose {v}.", f"Öffnen Sie den Dialog {w} und wählen Sie {v}.")
        for w, v in [("Format", "Zeichen"), ("Insert", "Tabelle"), ("Tools", "Optionen"), ("Edit", "Suchen")] * 3
    ]
    splits = PairSplits("toy", pairs[:8], pairs[8:10], pairs[10:])
    tok = TextTokenizer.train(
        [p.source for p in pairs] + [p.target for p in pairs], vocab_size=120, min_frequency=1, kind="cased"
    )
    task = Seq2SeqTask(splits, tok, MissingSpec(0.0), kind="translate", max_src_len=64, max_tgt_len=64)
    full = gappy_sources(task, "test", MissingSpec(0.0))
    assert full == [p.source for p in splits.test]  # nothing hidden: the source itself
    half = gappy_sources(task, "test", MissingSpec(0.5))
    assert all(len(h.split()) < len(f.split()) for h, f in zip(half, full))  # hidden tokens are not copied
    assert gappy_sources(task, "test", MissingSpec(1.0)) == ["", ""]
    outputs = baseline_outputs(task, "test", MissingSpec(0.0))
    assert outputs["copy-source"] == full
    assert outputs["translation memory"] == [p.target for p in splits.test]  # the identical training source
    assert nearest_targets(["a b c", "x y z"], ["A", "X"], ["x y"]) == ["X"]
    summarize = Seq2SeqTask(splits, tok, MissingSpec(0.0), kind="summarize", max_src_len=64, max_tgt_len=64)
    assert set(baseline_outputs(summarize, "test", MissingSpec(0.0))) == {"lead-1", "nearest training summary"}


def _copy_model(seed=0, method="dynamic", backend="auto"):
    torch.manual_seed(seed)
    return Seq2Seq(
        Seq2SeqConfig(
            40,
            method=method,
            d_model=32,
            n_heads=2,
            enc_layers=1,
            dec_layers=1,
            d_ff=64,
            dropout=0.0,
            max_len=64,
            copy=True,
            backend=backend,
        )
    )


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([0.0, 0.3, 0.7, 1.0]))
def test_copy_never_copies_a_hole(seed, p_missing):
    """The pointer-generator's output distribution, loss and gradients do not change with the ids at
    missing source positions: their copy weight is exactly zero, forward and backward."""
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(5, 40, (3, 9), generator=g)
    missing = torch.rand(3, 9, generator=g) < p_missing
    src[missing] = MISSING
    src[1, 6:] = 0
    mask = Mask.from_tokens(src, missing=[1, MISSING], pad=0)
    other = torch.where(mask.missing, torch.randint(5, 40, src.shape, generator=g), src)  # other ids, same holes
    tgt_in = torch.randint(5, 40, (3, 6), generator=g)
    tgt_out = torch.randint(5, 40, (3, 6), generator=g)
    tgt_mask = Mask.full(3, 6)
    model = _copy_model()
    results = []
    for ids in (src, other):
        model.zero_grad()
        mask_ids = Mask(mask.observed, mask.valid)  # the holes, not the ids, say what is missing
        logp = model(ids, mask_ids, tgt_in, tgt_mask)
        loss = torch.nn.functional.cross_entropy(logp.reshape(-1, 40), tgt_out.reshape(-1))
        loss.backward()
        results.append((logp.detach(), [None if p.grad is None else p.grad.clone() for p in model.parameters()]))
        assert torch.isfinite(logp).all()
        assert torch.allclose(logp.exp().sum(-1), torch.ones(3, 6), atol=1e-5)
    (a, grads_a), (b, grads_b) = results
    assert torch.equal(a, b)
    assert all((x is None and y is None) or torch.equal(x, y) for x, y in zip(grads_a, grads_b))


def test_copy_selected_rows_cache_and_backends_agree():
    src, mask = _source(2)
    tgt_in = torch.randint(5, 40, (3, 5))
    tgt_mask = Mask.full(3, 5)
    select = torch.tensor([[True, False, True, True, False]] * 3)
    dense, compact = _copy_model(backend="dense").eval(), _copy_model(backend="compact").eval()
    with torch.no_grad():
        full = dense(src, mask, tgt_in, tgt_mask)
        # the selected rows go through the output layers as a smaller matrix, so BLAS may sum in another
        # order: equal to rounding, not bit for bit (a wrong row would differ by whole units)
        torch.testing.assert_close(dense(src, mask, tgt_in, tgt_mask, select=select), full[select], rtol=0, atol=1e-5)
        assert (compact(src, mask, tgt_in, tgt_mask) - full).abs().max() <= 1e-5
    cached = beam_search(dense, src, mask, bos=BOS, eos=EOS, beam=3, max_len=8, use_cache=True)
    plain = beam_search(dense, src, mask, bos=BOS, eos=EOS, beam=3, max_len=8, use_cache=False)
    assert [h.tokens for h in cached] == [h.tokens for h in plain]


def _train_first_token_copier(copy: bool) -> float:
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(1)
    model = Seq2Seq(
        Seq2SeqConfig(
            40, d_model=32, n_heads=2, enc_layers=1, dec_layers=1, d_ff=64, dropout=0.0, max_len=64, copy=copy
        )
    )
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for _ in range(150):
        src = torch.randint(5, 26, (16, 6), generator=g)
        tgt_in = torch.cat([torch.full((16, 1), BOS), src[:, :1]], 1)  # BOS, name
        tgt_out = torch.cat([src[:, :1], torch.full((16, 1), EOS)], 1)  # name, EOS
        mask = Mask.from_tokens(src, missing=[1, MISSING], pad=0)
        logits = model(src, mask, tgt_in, Mask.full(16, 2))
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 40), tgt_out.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    src = torch.randint(26, 40, (32, 6), generator=g)
    mask = Mask.from_tokens(src, missing=[1, MISSING], pad=0)
    out = greedy_decode(model.eval(), src, mask, bos=BOS, eos=EOS, max_len=3)
    return sum(h.tokens[:1] == src[i, :1].tolist() for i, h in enumerate(out)) / 32


def test_copy_model_copies_names_it_never_saw():
    """Copy the first source token. Training uses ids 5-25 only; the test uses ids 26-39, which neither
    model saw as input or target: the generator alone cannot produce them, the copy path can."""
    with_copy, without = _train_first_token_copier(True), _train_first_token_copier(False)
    assert with_copy > 0.5 and without < 0.1, (with_copy, without)


def test_interrupted_test_decoding_resumes_at_the_first_rate_not_done(tmp_path, monkeypatch):
    """A rate decoded by the same best weights is read back, not decoded again; new weights redo all."""
    import json

    from dynmask.data.pairs import Pair, PairSplits
    from dynmask.tasks.seq2seq.train import train_seq2seq
    from dynmask.training import TrainConfig

    pairs = [Pair(f"open the {w}", f"öffnen die {w}") for w in ("file", "page", "window", "menu")] * 3
    splits = PairSplits("tiny", pairs, pairs[:4], pairs[:4])
    model = dict(method="dynamic", d_model=16, n_heads=2, enc_layers=1, dec_layers=1, d_ff=32, dropout=0.0)
    decoded = []
    real_generate = Seq2SeqTask.generate

    def counting_generate(self, model, split, spec, **kw):
        if split == "test":  # (validation is decoded too: the fallback's comparison with the baselines)
            decoded.append(spec.rate)
        return real_generate(self, model, split, spec, **kw)

    monkeypatch.setattr(Seq2SeqTask, "generate", counting_generate)
    out = tmp_path / "run"

    def train(epochs: int, resume: bool, length_penalty: float = 1.0) -> list:
        config = TrainConfig(epochs=epochs, batch_size=4, progress=False, patience=epochs)
        summary = train_seq2seq(
            splits, out, "translate", model, config, MissingSpec(0.3), vocab_size=60, max_src_len=8,
            max_tgt_len=8, resume=resume, test_rates=(0.0, 0.4), beam=2, length_penalty=length_penalty,
        )  # fmt: skip
        return summary["test"]

    def untimed(results: list) -> list:
        return [{k: v for k, v in r.items() if k not in ("seconds", "tokens_per_s")} for r in results]

    first = train(1, resume=False)
    assert decoded == [0.0, 0.4]
    (out / "test_hypotheses" / "missing0.4.json").unlink()  # interrupted while decoding missing 0.4
    again = train(1, resume=True)
    assert decoded == [0.0, 0.4, 0.4] and again[0] == first[0] and untimed(again) == untimed(first)
    best = json.loads((out / "best" / "manifest.json").read_text())["sha256"]["model.safetensors"]
    train(3, resume=True)  # trained on: the best weights change, so both rates are decoded again
    new_best = json.loads((out / "best" / "manifest.json").read_text())["sha256"]["model.safetensors"]
    assert new_best != best and decoded == [0.0, 0.4, 0.4, 0.0, 0.4]
    train(3, resume=True, length_penalty=1.5)  # another decoding setting: decoded again
    assert decoded == [0.0, 0.4, 0.4, 0.0, 0.4, 0.0, 0.4]


def test_a_run_beaten_by_a_baseline_on_validation_answers_with_it_and_says_so(tmp_path, capsys, monkeypatch):
    """Issue 38: a short budget left the model below copying the source and nothing said so. Now training
    compares on validation, prints a table beside the baselines, and predict falls back per text."""
    import io
    import json

    from dynmask.cli import main

    verbs = [("open", "öffnen"), ("close", "schließen"), ("save", "speichern"), ("print", "drucken")]
    things = [("the file", "die Datei"), ("the window", "das Fenster"), ("the page", "die Seite")]
    rows = [f"{v} {t} now\t{tt} jetzt {vv}" for v, vv in verbs for t, tt in things] * 4
    (tmp_path / "pairs.tsv").write_text("source\ttarget\n" + "\n".join(rows) + "\n")
    run = tmp_path / "run"
    small = ["--d-model", "16", "--heads", "2", "--enc-layers", "1", "--dec-layers", "1", "--d-ff", "32",
             "--vocab-size", "80", "--max-src-len", "12", "--max-tgt-len", "12", "--no-progress",
             "--beam", "1"]  # fmt: skip
    argv = ["train", "translate", "--data", str(tmp_path / "pairs.tsv"), "--output", str(run), "--epochs", "1"]
    assert main([*argv, "--test-missing", "0", *small]) == 0
    out = capsys.readouterr().out
    assert out.startswith("data pairs: ") and "test pairs;" in out.splitlines()[0]
    assert "translation memory" in out and "validation bleu: model" in out
    assert "note: translation memory beat the model on validation" in out
    record = json.loads((run / "best" / "seq2seq_fallback.json").read_text())
    assert record["baseline"] == "translation memory" and record["valid"]["translation memory"] == pytest.approx(100)
    assert json.loads((run / "summary.json").read_text())["validation"]["fallback"] == "translation memory"
    monkeypatch.setattr("sys.stdin", io.StringIO("print the window now\n"))
    assert main(["predict", "--model", str(run), "--input", "-"]) == 0
    captured = capsys.readouterr()
    row = json.loads(captured.out)
    assert row == {"text": "print the window now", "output": "das Fenster jetzt drucken", "from": "translation memory"}
    assert "note: translation memory beat this model" in captured.err
    monkeypatch.setattr("sys.stdin", io.StringIO("print the window now\n"))
    assert main(["predict", "--model", str(run), "--input", "-", "--use-model"]) == 0
    assert "from" not in json.loads(capsys.readouterr().out)
    import dynmask  # the hub-style model answers as predict does

    loaded = dynmask.from_pretrained(run)
    assert loaded.fallback == "translation memory" and loaded.generate(["print the window now"]) == [row["output"]]
    assert main(["evaluate", "--model", str(run), "--missing", "0", "--beam", "1"]) == 0  # a table, baselines beside
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("data pairs: ") and "translation memory" in lines[2] and "copy-source" in lines[2]
    assert lines[3].split()[:2] == ["0%", "missing"]
