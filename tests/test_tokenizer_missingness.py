"""Tokenizer round trips and missing markers; missingness processes, their rates and schedules."""

import pytest
import torch

from dynmask.data.tokenizer import TextTokenizer
from dynmask.missingness import Schedule, Spans, Uniform, ValueDependent, apply_missingness, make_process

CORPUS = [
    "the movie was great fun",
    "a dull and boring film",
    "我爱北京天安门",
    "天安门上太阳升",
    "naïve café déjà vu",
    "the plot was awful",
] * 5


@pytest.fixture(scope="module")
def tok():
    return TextTokenizer.train(CORPUS, vocab_size=300, min_frequency=1, max_len=16)


def test_round_trip_english_and_accents(tok):
    for text in ["the movie was great fun", "naïve café déjà vu"]:
        ids = tok.encode([text])[0]
        assert tok.unk_id not in ids
        assert tok.decode(ids) == text


def test_chinese_round_trips_without_unknowns(tok):
    for text in ["我爱天安门", "我爱北京天安门"]:
        ids = tok.encode([text])[0]
        assert tok.unk_id not in ids
        assert tok.decode(ids) == text


def test_training_is_deterministic():
    """Two trainings on the same texts give the same vocabulary and merges (reproducible runs)."""
    a = TextTokenizer.train(CORPUS, vocab_size=300, min_frequency=1, max_len=16)
    b = TextTokenizer.train(CORPUS, vocab_size=300, min_frequency=1, max_len=16)
    assert a.tokenizer.get_vocab() == b.tokenizer.get_vocab()
    assert a.encode(CORPUS) == b.encode(CORPUS)


def test_missing_markers_and_empty_text_become_missing(tok):
    ids = tok.encode(["the ??? was <UNK> fun [missing].", "", "what??? fun"])
    assert ids[0].count(tok.missing_id) == 3
    assert ids[1] == [tok.missing_id]
    assert tok.missing_id not in ids[2]  # '???' glued to a word is punctuation, not a marker


def test_mask_polarity_true_is_observed(tok):
    ids = tok.pad(tok.encode(["the ??? was", "fun"]))
    mask = tok.mask(ids)
    assert mask.observed.tolist() == [[True, False, True], [True, False, False]]
    assert mask.valid.tolist() == [[True, True, True], [True, False, False]]


def test_save_load_gives_the_same_ids(tok, tmp_path):
    tok.save(tmp_path)
    again = TextTokenizer.load(tmp_path)
    texts = ["the movie ??? was great", "我爱北京"]
    assert again.encode(texts) == tok.encode(texts)
    assert again.max_len == 16 and again.missing_markers == tok.missing_markers


def test_truncates_to_max_len(tok):
    assert len(tok.encode([" ".join(["fun"] * 40)])[0]) == 16


# ---------------------------------------------------------------- missingness
def _batch(b=400, length=60, vocab=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (b, length), generator=g)
    lengths = torch.randint(length // 2, length + 1, (b,), generator=g)
    valid = torch.arange(length).unsqueeze(0) < lengths.unsqueeze(1)
    return ids, valid


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.6])
@pytest.mark.parametrize("name", ["uniform", "spans", "value"])
def test_process_hits_its_rate(name, rate):
    ids, valid = _batch()
    counts = torch.arange(200, dtype=torch.float) + 1
    process = make_process(name, rate, token_counts=counts)
    schedule = Schedule("dynamic", process.n_uniforms, seed=0, max_len=64)
    hidden = process.hide(ids, valid, schedule.uniforms(range(ids.shape[0]), ids.shape[1], step=0))
    assert not (hidden & ~valid).any()  # padding is never "made missing"
    share = float(hidden.sum() / valid.sum())
    assert abs(share - rate) < 0.03, share


def test_spans_are_contiguous_and_uniform_is_not():
    ids, valid = _batch()
    valid = torch.ones_like(valid)

    def mean_run(hidden):
        runs, n = [], 0
        for row in hidden.tolist():
            for h in row + [False]:
                if h:
                    n += 1
                elif n:
                    runs.append(n)
                    n = 0
        return sum(runs) / len(runs)

    u = Schedule("dynamic", 2, 0, 64).uniforms(range(400), 60, 0)
    assert mean_run(Spans(0.3, mean_span=4.0).hide(ids, valid, u)) > 3.0
    assert mean_run(Uniform(0.3).hide(ids, valid, u)) < 1.6


def test_value_dependent_hides_rare_tokens_more():
    ids, valid = _batch()
    counts = torch.ones(200)
    counts[100:] = 1000.0  # ids >= 100 are frequent
    process = ValueDependent.rare_tokens_first(0.3, counts)
    hidden = process.hide(ids, valid, Schedule("dynamic", 1, 0, 64).uniforms(range(400), 60, 0))
    rare = float(hidden[(ids < 100) & valid].float().mean())
    common = float(hidden[(ids >= 100) & valid].float().mean())
    assert rare > 5 * common


def test_dynamic_redraws_every_batch_static_does_not():
    ids, valid = _batch(b=8)
    process = Uniform(0.4)
    dyn = Schedule("dynamic", 1, seed=0, max_len=64)
    sta = Schedule("static", 1, seed=0, max_len=64)
    examples = list(range(8))
    d0 = apply_missingness(ids, valid, process, dyn, examples, step=0, missing_id=2)
    d1 = apply_missingness(ids, valid, process, dyn, examples, step=1, missing_id=2)
    s0 = apply_missingness(ids, valid, process, sta, examples, step=0, missing_id=2)
    s1 = apply_missingness(ids, valid, process, sta, examples, step=1, missing_id=2)
    assert not torch.equal(d0, d1)
    assert torch.equal(s0, s1)
    # static holes belong to the example, whatever batch it sits in
    rev = apply_missingness(ids.flip(0), valid.flip(0), process, sta, examples[::-1], step=5, missing_id=2)
    assert torch.equal(rev.flip(0), s0)
    # and the same seed gives the same holes in a fresh schedule (test-time holes are reproducible)
    again = apply_missingness(ids, valid, process, Schedule("static", 1, seed=0, max_len=64), examples, 0, 2)
    assert torch.equal(again, s0)


def test_bad_rates_and_names():
    with pytest.raises(ValueError, match=r"missing rate must be in \[0, 1\]"):
        Uniform(1.5)
    with pytest.raises(ValueError, match="process must be one of"):
        make_process("bursty", 0.2)
    with pytest.raises(ValueError, match="needs token_counts"):
        make_process("value", 0.2)
    with pytest.raises(ValueError, match="schedule must be"):
        Schedule("weekly", 1, 0)


@pytest.mark.parametrize("filler", [" ", "\t", "\u3000", "a"])
def test_marker_search_is_linear_in_the_text(filler):
    """A line of 40,000 leading spaces took ~40 s (the marker pattern began with \\s*, tried at every
    space). Time per character must stay flat from 10 KB to 1 MB: a quadratic search is 100x slower per
    character at the larger size, a linear one about the same."""
    import time

    tok = TextTokenizer.train(["the film ??? was fun", "a dull film"] * 20, vocab_size=60, max_len=32)

    def per_char(n: int) -> float:
        text = filler * n + " ??? x"
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            marked = tok.mark_missing(text)
            best = min(best, time.perf_counter() - start)
        assert marked.endswith("[MISSING] x")
        return best / n

    small, large = per_char(10_000), per_char(1_000_000)
    assert large < 10 * small + 1e-7, (small, large)
    if filler == " ":  # the whole path, as predict and training use it: linear too

        def encode_per_char(n: int) -> float:
            start = time.perf_counter()
            (ids,) = tok.encode([filler * n + " the ??? film"])
            assert len(ids) <= tok.max_len
            return (time.perf_counter() - start) / n

        assert encode_per_char(500_000) < 5 * encode_per_char(50_000) + 1e-7
