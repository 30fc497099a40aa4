"""Fuzzy-match hybrid: the threshold chosen on validation, the combination, the saved choice as untrusted
input, and the guarantee (which output a source gets never depends on its missing tokens)."""

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dynmask import Mask
from dynmask.baselines.fuzzy_match import GRID, NEVER, FuzzyMatch, choose_threshold, combine, memory_outputs
from dynmask.baselines.memory import TranslationMemory
from dynmask.data.tokenizer import TextTokenizer
from dynmask.tasks.seq2seq.sources import observed_texts
from dynmask.training.run_folders import RunFolderError


def _exact(outputs, refs) -> dict:
    return {"exact": 100.0 * float(np.mean([o == r for o, r in zip(outputs, refs)]))}


def test_threshold_takes_the_memory_where_it_is_right_and_the_model_elsewhere():
    refs = ["a", "b", "c", "d"]
    model = ["x", "x", "c", "d"]  # wrong on the first two
    memory = ["a", "b", "y", "y"]  # right exactly where it is similar
    similarity = np.array([0.97, 0.81, 0.62, 0.3])
    choice = choose_threshold(model, memory, similarity, refs, _exact, "exact")
    assert 0.62 < choice.threshold <= 0.81  # ties: the highest threshold of the best
    assert choice.threshold == 0.8 and choice.valid_hybrid == 100.0 and choice.valid_model == 50.0
    assert choice.share_from_memory == 0.5
    assert combine(model, memory, similarity, choice.threshold) == refs


def test_a_useless_memory_is_never_used():
    refs, model = ["a", "b", "c"], ["a", "b", "x"]
    choice = choose_threshold(model, ["q", "q", "q"], np.array([1.0, 0.9, 0.7]), refs, _exact, "exact")
    assert choice.threshold == NEVER and choice.share_from_memory == 0.0
    assert choice.valid_hybrid == choice.valid_model


def test_combine_and_grid_errors():
    with pytest.raises(ValueError, match="one entry per source"):
        combine(["a"], ["b", "c"], np.array([0.5]), 0.5)
    with pytest.raises(ValueError, match="must contain"):
        choose_threshold(["a"], ["b"], np.array([0.5]), ["a"], _exact, "exact", grid=(0.5, 0.9))
    assert GRID[0] == 0.5 and GRID[-1] == NEVER and list(GRID) == sorted(GRID)


def test_saved_choice_is_checked_as_untrusted_input(tmp_path):
    choice = FuzzyMatch(0.75, "bleu", 10.0, 12.0, 0.2, {"0.75": 12.0})
    choice.save(tmp_path)
    assert FuzzyMatch.load(tmp_path) == choice
    data = json.loads((tmp_path / "fuzzy_match.json").read_text())
    older = {k: v for k, v in data.items() if k not in ("beam", "length_penalty")}  # saved before they existed
    (tmp_path / "fuzzy_match.json").write_text(json.dumps(older))
    assert (FuzzyMatch.load(tmp_path).beam, FuzzyMatch.load(tmp_path).length_penalty) == (4, 1.0)
    for bad, message in (
        ({**data, "threshold": 7}, "threshold must be in"),
        ({**data, "threshold": "0.5"}, "finite numbers"),
        ({**data, "valid_model": math.nan}, "finite numbers"),
        ({k: v for k, v in data.items() if k != "metric"}, "damaged"),
        ({**data, "code": "import os"}, "damaged"),
        ({**data, "length_penalty": "long"}, "finite numbers"),
    ):
        (tmp_path / "fuzzy_match.json").write_text(json.dumps(bad))
        with pytest.raises(RunFolderError, match=message):
            FuzzyMatch.load(tmp_path)


def test_memory_similarity_is_one_for_a_memory_source_and_lower_for_others():
    memory = TranslationMemory(["open the file", "close the window"], ["öffne die Datei", "schließe das Fenster"])
    targets, similarity = memory_outputs(memory, ["open the file", "close the page", "zzz"])
    assert targets[:2] == ["öffne die Datei", "schließe das Fenster"]
    assert similarity[0] == pytest.approx(1.0) and 0 < similarity[1] < 1 and similarity[2] == 0.0


_TOK = TextTokenizer.train(
    ["open the file menu", "close the window now", "print the page twice", "save the document"] * 5,
    vocab_size=120,
    min_frequency=1,
    kind="cased",
    max_len=16,
)
_MEMORY = TranslationMemory(
    ["open the file menu", "close the window now", "print the page twice"],
    ["öffne das Menü Datei", "schließe jetzt das Fenster", "drucke die Seite zweimal"],
)


@settings(max_examples=40, deadline=None)
@given(
    text=st.sampled_from(["open the file menu", "close the window now", "print the page twice", "save the document"]),
    seed=st.integers(0, 10_000),
    threshold=st.sampled_from(GRID),
)
def test_which_output_a_source_gets_ignores_its_missing_tokens(text, seed, threshold):
    """The guarantee, carried to the hybrid: any ids at the missing positions give the same choice."""
    g = torch.Generator().manual_seed(seed)
    src = torch.tensor([_TOK.encode([text])[0]])  # (1, S)
    observed = torch.rand(src.shape, generator=g) > 0.4  # (1, S), True = observed
    scrambled = torch.where(observed, src, torch.randint(0, _TOK.vocab_size, src.shape, generator=g))
    results = []
    for ids in (src, scrambled):
        sources = observed_texts(_TOK, ids, Mask(observed, torch.ones_like(observed)))
        targets, similarity = memory_outputs(_MEMORY, sources)
        results.append((combine(["model output"], targets, similarity, threshold), similarity.tolist()))
    assert results[0] == results[1]
