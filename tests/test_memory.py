"""The translation memory: nearest-pair search, the memory input of a seq2seq model (the guarantee:
it is found from observed tokens only), and the CLI round trip with a saved memory."""

import functools
import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dynmask import Mask
from dynmask.baselines.memory import TranslationMemory
from dynmask.data.pairs import Pair, PairSplits
from dynmask.data.tokenizer import TextTokenizer
from dynmask.models.seq2seq import Seq2Seq, Seq2SeqConfig
from dynmask.tasks.classify.task import MissingSpec
from dynmask.tasks.seq2seq.sources import append_memory
from dynmask.tasks.seq2seq.task import Seq2SeqTask
from dynmask.training.run_folders import RunFolderError

MENUS = ["Format", "Insert", "Tools", "Edit", "View", "Table", "Window", "Help"]
CHOICES = ["Zeichen", "Tabelle", "Optionen", "Suchen", "Absatz", "Seite"]
PAIRS = [
    Pair(f"Open the {m} menu and choose {c}.", f"Öffnen Sie das Menü {m} und wählen Sie {c}.")
    for m in MENUS
    for c in CHOICES
]


@functools.lru_cache(maxsize=None)
def _task(memory=True, rate=0.0):
    splits = PairSplits("toy", PAIRS[:40], PAIRS[40:44], PAIRS[44:])
    tok = TextTokenizer.train(
        [p.source for p in PAIRS] + [p.target for p in PAIRS], vocab_size=150, min_frequency=1, kind="cased"
    )
    task = Seq2SeqTask(splits, tok, MissingSpec(rate), kind="translate", max_src_len=32, max_tgt_len=24, memory=memory)
    return task, tok


def test_nearest_pair_excludes_itself_and_round_trips(tmp_path):
    memory = TranslationMemory(["open the file", "close the file", "print a page"], ["A", "B", "C"])
    assert memory.nearest(["open the file", "print page"]) == [0, 2]
    assert memory.nearest(["open the file"], exclude=[0]) == [1]  # its own pair is never returned
    assert memory.nearest_targets(["close the fil"]) == ["B"]
    memory.save(tmp_path)
    assert TranslationMemory.load(tmp_path).nearest(["print a page"]) == [2]
    for bad in ({"sources": ["a"], "targets": []}, {"sources": ["a"], "targets": [3]}, [1, 2], {"sources": []}):
        (tmp_path / "memory.json").write_text(json.dumps(bad))
        with pytest.raises(RunFolderError, match="memory.json"):
            TranslationMemory.load(tmp_path)
    with pytest.raises(ValueError, match="one target per source"):
        TranslationMemory(["a"], [])


def test_the_model_reads_the_nearest_pair_after_the_source():
    task, tok = _task()
    idx = [0, 1, 2]
    src, mask = task.source_batch("test", idx, None, None, 0)
    full, full_mask = task.model_source_batch("test", idx, None, None, 0)
    for b, i in enumerate(idx):
        n = len(task.src["test"][i])
        assert full[b, :n].tolist() == src[b, :n].tolist()  # the source first, unchanged
        nearest = task.memory.nearest([task.splits.test[i].source])[0]
        tail = [tok.eos_id] + tok.encode([task.memory.targets[nearest]])[0][:23] + [tok.eos_id]
        assert full[b, n : n + len(tail)].tolist() == tail  # then </s>, the nearest target, </s>
        assert full_mask.observed[b, n : n + len(tail)].all() and full_mask.valid[b, : n + len(tail)].all()
        assert not full_mask.valid[b, n + len(tail) :].any()  # then padding
    # in training a pair never reads its own target (here: the same menu with another choice)
    train, _ = task.model_source_batch("train", [0], None, None, 0)
    n = len(task.src["train"][0])
    assert train[0, n + 1 : -1].tolist() != tok.encode([PAIRS[0].target])[0]
    assert "Format" in tok.decode(train[0, n:].tolist(), skip_special_tokens=True)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([0.2, 0.5, 1.0]))
def test_the_memory_and_the_loss_ignore_ids_at_missing_source_positions(seed, rate):
    """The guarantee through the memory: the nearest pair is found from observed tokens only, so the model
    input at observed positions, the appended pair, the mask, the loss and every gradient are the same
    whatever the ids at missing source positions."""
    task, tok = _task(rate=rate)
    g = torch.Generator().manual_seed(seed)
    idx = list(range(len(task.src["test"])))
    process = task.holes.process(MissingSpec(rate))
    src, mask = task.source_batch("test", idx, process, task.holes.test_schedule(process, "test"), 0)
    assert (~mask.observed & mask.valid).any()  # there are holes
    other = torch.where(mask.observed | ~mask.valid, src, torch.randint(5, tok.vocab_size, src.shape, generator=g))
    a, a_mask = append_memory(tok, task.memory, src, mask, 24)
    b, b_mask = append_memory(tok, task.memory, other, mask, 24)
    assert torch.equal(a_mask.observed, b_mask.observed) and torch.equal(a_mask.valid, b_mask.valid)
    assert torch.equal(torch.where(a_mask.observed, a, 0), torch.where(b_mask.observed, b, 0))
    torch.manual_seed(0)
    model = Seq2Seq(
        Seq2SeqConfig(
            tok.vocab_size,
            d_model=32,
            n_heads=2,
            enc_layers=1,
            dec_layers=1,
            d_ff=64,
            dropout=0.0,
            max_len=64,
            copy=True,
        )
    )
    tgt = tok.pad([[tok.bos_id] + task.tgt["test"][i] + [tok.eos_id] for i in idx])
    tgt_in, tgt_out = tgt[:, :-1], tgt[:, 1:]
    losses, grads = [], []
    for s, m in ((a, a_mask), (b, b_mask)):
        model.zero_grad()
        logits = model(s, m, tgt_in, Mask.from_tokens(tgt_in, pad=tok.pad_id))
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=tok.pad_id)
        loss.backward()
        losses.append(loss.detach())
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    assert torch.equal(losses[0], losses[1])
    assert all(torch.equal(x, y) for x, y in zip(*grads))


def test_cli_translate_with_a_memory_saves_it_and_predict_uses_it(tmp_path, capsys):
    from dynmask.cli import main

    rows = [f"{p.source}\t{p.target}" for p in PAIRS]
    (tmp_path / "pairs.tsv").write_text("source\ttarget\n" + "\n".join(rows) + "\n")
    out = tmp_path / "run"
    small = "--d-model 32 --heads 2 --enc-layers 1 --dec-layers 1 --d-ff 64 --vocab-size 150".split()
    args = ["train", "translate", "--data", str(tmp_path / "pairs.tsv"), "--output", str(out), "--epochs", "1"]
    args += [*small, "--max-src-len", "24", "--max-tgt-len", "24", "--beam", "1", "--test-missing", "0"]
    assert main([*args, "--memory", "--copy", "--no-progress"]) == 0
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["memory"] is True and config["model"]["max_len"] == 24 + 24 + 2
    saved = json.loads((out / "best" / "memory.json").read_text())
    assert len(saved["sources"]) == len(saved["targets"]) > 0
    capsys.readouterr()
    assert main(["predict", "--model", str(out), "--text", "Open the ??? menu and choose Seite.", "--beam", "1"]) == 0
    assert isinstance(json.loads(capsys.readouterr().out.splitlines()[0])["output"], str)
    assert main(["evaluate", "--model", str(out), "--data", str(tmp_path / "pairs.tsv"), "--beam", "1", "--json"]) == 0
    assert "bleu" in json.loads(capsys.readouterr().out)[0]
    (out / "best" / "memory.json").write_text(json.dumps({"sources": ["a"], "targets": ["b", "c"]}))
    assert main(["predict", "--model", str(out), "--text", "Open the menu."]) == 2  # tampered: refused


def test_a_run_saved_before_the_memory_setting_resumes_without_it():
    """Runs saved before ``memory`` existed resume as memory-free runs, and only as those."""
    from dynmask.training.run_folders import compare_for_resume

    saved = {"task": "translate", "model": {"copy": True}, "train": {"epochs": 2}}
    compare_for_resume(saved, {**saved, "memory": False, "train": {"epochs": 4}}, "run")  # accepted
    with pytest.raises(RunFolderError, match="memory was False when the run started and is now True"):
        compare_for_resume(saved, {**saved, "memory": True}, "run")
    compare_for_resume({"task": "classify"}, {"task": "classify"}, "run")  # other tasks: untouched
    old = {"task": "translate", "model": {"copy": True}}  # before warm starts, too
    compare_for_resume(old, {**old, "model": {"copy": True, "encoder": None}, "warm_start": None}, "run")
