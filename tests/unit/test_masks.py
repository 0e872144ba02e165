"""Exact mask counts and the tie rule of the pruning criteria, on random matrices and tiny models of each family."""

import pytest
import torch

from prunetts.pruning.magnitude import magnitude_mask
from prunetts.pruning.masks import apply_mask, count_true, count_zeros, k_smallest, kth_smallest
from prunetts.pruning.wanda import wanda_mask, wanda_scores


def stable_sort_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """The reference rule: stable ascending sort per row, prune the first k indices."""
    idx = torch.sort(scores, dim=1, stable=True).indices[:, :k]
    mask = torch.zeros_like(scores, dtype=torch.bool)
    mask.scatter_(1, idx, True)
    return mask


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])  # numpy's selection, torch.kthvalue
@pytest.mark.parametrize("k", [0, 1, 7, 31, 64])
def test_k_smallest_equals_stable_sort_with_ties(k, dtype):
    g = torch.Generator().manual_seed(k)
    scores = torch.randint(0, 5, (9, 64), generator=g).to(dtype)  # heavy ties
    assert torch.equal(k_smallest(scores, k), stable_sort_mask(scores, k))
    assert (k_smallest(scores, k).sum(1) == k).all()


def test_k_smallest_mixes_rows_with_and_without_surplus_ties():
    scores = torch.rand(6, 50, generator=torch.Generator().manual_seed(5))
    scores[1, 10:20] = 0.5  # a run of ties straddling the k-th value in some rows only
    scores[4, ::3] = scores[4].median()
    for k in (5, 25, 40):
        assert torch.equal(k_smallest(scores, k), stable_sort_mask(scores, k))


@pytest.mark.parametrize("shape", [(7, 300), (1, 5000)])
def test_kth_smallest_numpy_selection_equals_torch_kthvalue(shape):
    scores = torch.rand(shape, generator=torch.Generator().manual_seed(3))
    scores[:, ::17] = 0.5  # ties at arbitrary positions
    for k in (1, 2, shape[1] // 3, shape[1] // 2, shape[1] - 1, shape[1]):
        assert torch.equal(kth_smallest(scores, k), scores.kthvalue(k, dim=1, keepdim=True).values)


@pytest.mark.parametrize("s", [0.1, 0.2, 0.5, 0.73])
def test_magnitude_prunes_exactly_floor_numel_s_per_matrix(s):
    w = torch.randn(48, 40, generator=torch.Generator().manual_seed(1))
    mask = magnitude_mask(w, s)
    assert int(mask.sum()) == int(w.numel() * s)
    # matrix-wise group: every kept |w| is >= every pruned |w|
    assert w.abs()[~mask].min() >= w.abs()[mask].max()
    # rows are not balanced (it is not a per-row rule)
    assert mask.sum(1).unique().numel() > 1


@pytest.mark.parametrize("s", [0.1, 0.2, 0.5, 0.73])
def test_wanda_prunes_exactly_floor_din_s_per_row(s):
    g = torch.Generator().manual_seed(2)
    w = torch.randn(16, 40, generator=g)
    sq = torch.rand(40, generator=g, dtype=torch.float64) * 10
    mask = wanda_mask(w, sq, s)
    assert (mask.sum(1) == int(40 * s)).all()
    scores = wanda_scores(w, sq)
    for r in range(16):
        assert scores[r][~mask[r]].min() >= scores[r][mask[r]].max()
    # the score itself, written out: |W_ij| * ||X_j||_2 = |W_ij| * sqrt(sum of squares), not the sum of squares
    literal = w.abs() * torch.sqrt(sq.float()).unsqueeze(0)
    assert torch.equal(scores, literal)
    assert torch.equal(mask, stable_sort_mask(literal, int(40 * s)))
    assert not torch.equal(mask, stable_sort_mask(w.abs() * sq.float().unsqueeze(0), int(40 * s)))
    # the activation norm changes the choice versus plain magnitude
    assert not torch.equal(mask, k_smallest(w.abs(), int(40 * s)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
def test_apply_mask_writes_positive_zeros_and_keeps_the_rest_bitwise(dtype):
    g = torch.Generator().manual_seed(3)
    w = torch.randn(33, 17, generator=g).to(dtype)
    w[0, :4] = torch.tensor([-0.0, float("inf"), float("-inf"), float("nan")], dtype=dtype)
    mask = torch.rand(33, 17, generator=g) < 0.4
    mask[0, 0] = False  # a kept -0.0 stays -0.0
    expected = w.clone().masked_fill_(mask, 0)
    apply_mask(w, mask)
    assert torch.equal(w.view(torch.uint8), expected.view(torch.uint8))  # same bytes: +0.0 where pruned, NaN kept
    assert int((w == 0).sum()) >= int(mask.sum()) and not torch.signbit(w[mask]).any()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
def test_counts_equal_torch_counts_with_signed_zeros_and_nan(dtype):
    g = torch.Generator().manual_seed(5)
    w = torch.randn(41, 23, generator=g).to(dtype)
    w[w.abs() < 0.3] = 0
    w[1, :5] = torch.tensor([-0.0, 0.0, float("nan"), float("inf"), -0.0], dtype=dtype)
    mask = torch.rand(41, 23, generator=g) < 0.3
    assert count_zeros(w) == int((w == 0).sum()) > 0  # -0.0 counts as zero, NaN does not
    assert count_true(mask) == int(mask.sum()) > 0
    assert count_true(mask[:, ::2]) == int(mask[:, ::2].sum())  # a non-contiguous view
    assert count_zeros(w.t()) == count_zeros(w)
