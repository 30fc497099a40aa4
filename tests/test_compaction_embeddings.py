"""Compaction and packing plans (literal), gather/scatter round trips, and embeddings that ignore missing values."""

import torch

from dynmask import Compaction, Mask, Packing, SinusoidalPositions, TokenEmbedding, ValueEmbedding


def test_plan_literal():
    keep = torch.tensor([[True, False, True, True], [False, True, False, False]])
    plan = Compaction.plan(keep)
    assert plan.width == 3
    assert plan.positions.tolist() == [[0, 2, 3], [1, 0, 0]]
    assert plan.valid.tolist() == [[True, True, True], [True, False, False]]
    x = torch.arange(8.0).view(2, 4, 1)
    assert plan.gather(x).squeeze(-1).tolist() == [[0.0, 2.0, 3.0], [5.0, 0.0, 0.0]]
    back = plan.scatter(plan.gather(x)).squeeze(-1)
    assert back.tolist() == [[0.0, 0.0, 2.0, 3.0], [0.0, 5.0, 0.0, 0.0]]


def test_plan_with_dropped_is_a_stable_permutation():
    keep = torch.tensor([[False, True, False, True]])
    plan = Compaction.plan(keep, include_dropped=True)
    assert plan.positions.tolist() == [[1, 3, 0, 2]]
    assert plan.kept.tolist() == [[True, True, False, False]]
    x = torch.randn(1, 4, 3)
    assert torch.equal(plan.scatter(plan.gather(x)), x)


def test_gather_gradient_reaches_only_kept_rows():
    keep = torch.tensor([[True, False, True]])
    x = torch.randn(1, 3, 2, requires_grad=True)
    Compaction.plan(keep).gather(x).sum().backward()
    assert x.grad[0, :, 0].tolist() == [1.0, 0.0, 1.0]


def test_packing_literal():
    keep = torch.tensor([[True, False, True, True], [False, True, False, False]])
    plan = Packing.plan(keep)
    assert plan.width == 3
    assert plan.rows.tolist() == [0, 2, 3, 5]
    x = torch.arange(8.0).view(2, 4, 1)
    packed = plan.pack(x)
    assert packed.squeeze(-1).tolist() == [0.0, 2.0, 3.0, 5.0]
    assert plan.pad(packed).squeeze(-1).tolist() == [[0.0, 2.0, 3.0], [5.0, 0.0, 0.0]]
    assert torch.equal(plan.gather(x), plan.pad(packed))  # [B, L] -> [B, N] in one call
    assert plan.keep.tolist() == [[True, True, True], [True, False, False]]
    assert plan.positions.tolist() == [[0, 2, 3], [1, 0, 0]]
    assert torch.equal(plan.unpad(plan.pad(packed)), packed)
    assert plan.scatter(packed).squeeze(-1).tolist() == [[0.0, 0.0, 2.0, 3.0], [0.0, 5.0, 0.0, 0.0]]
    assert plan.pack(torch.arange(8).view(2, 4)).tolist() == [0, 2, 3, 5]  # [B, L] -> [T]


def test_packing_moves_gradients_to_kept_rows_only():
    keep = torch.tensor([[True, False, True], [False, False, False]])
    x = torch.randn(2, 3, 2, requires_grad=True)
    plan = Packing.plan(keep)
    plan.scatter(plan.unpad(plan.pad(plan.pack(x)))).sum().backward()
    assert x.grad[..., 0].tolist() == [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]


def test_token_embedding_never_reads_missing_ids():
    torch.manual_seed(0)
    emb = TokenEmbedding(10, 4)
    ids = torch.tensor([[3, 1, 5]])
    mask = Mask.from_tokens(ids, missing=[1])
    a = emb(ids, mask)
    b = emb(torch.tensor([[3, 9, 5]]), Mask(mask.observed, mask.valid))
    assert torch.equal(a, b)
    torch.testing.assert_close(a[0, 1], emb.missing_vector * 2.0)  # sqrt(4) scaling


def test_value_embedding_ignores_missing_values_and_sees_the_indicator():
    torch.manual_seed(0)
    emb = ValueEmbedding(2, 4)
    x = torch.tensor([[[1.0, float("nan")], [2.0, 3.0]]])
    out = emb(x, Mask.from_nan(x))
    assert torch.isfinite(out).all()
    y = torch.tensor([[[1.0, 1e30], [2.0, 3.0]]])
    assert torch.equal(out, emb(y, Mask.from_nan(x)))
    z = torch.tensor([[[1.0, 0.0], [2.0, 3.0]]])  # 0 observed is not the same as missing
    assert not torch.equal(out, emb(z, Mask.from_nan(z)))


def test_sinusoidal_positions_by_original_position():
    pe = SinusoidalPositions(6, max_len=16)
    a = pe(torch.tensor([[0, 2, 5]]))
    b = pe(torch.arange(6).unsqueeze(0))
    assert torch.equal(a[0], b[0, [0, 2, 5]])
    assert torch.equal(a[0, 0], torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0]))


def test_plan_with_dropped_and_limit_trims_padding():
    keep = torch.tensor([[False, True, False, True, False], [True, False, False, False, False]])
    valid = torch.tensor([[True, True, True, True, False], [True, True, False, False, False]])
    plan = Compaction.plan(keep, include_dropped=True, limit=valid)
    assert plan.width == 4
    assert plan.positions.tolist() == [[1, 3, 0, 2], [0, 1, 2, 3]]
    assert plan.valid.tolist() == [[True, True, True, True], [True, True, False, False]]
    assert plan.kept.tolist() == [[True, True, False, False], [True, False, False, False]]
    x = torch.arange(10.0).view(2, 5, 1)
    back = plan.scatter(plan.gather(x)).squeeze(-1)
    assert back.tolist() == [[0.0, 1.0, 2.0, 3.0, 0.0], [5.0, 6.0, 0.0, 0.0, 0.0]]
