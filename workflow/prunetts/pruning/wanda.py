"""Wanda (Sun et al. 2023, "A Simple and Effective Pruning Approach for Large Language Models"): score
|W_ij| * ||X_j||_2.

Comparison group ``row`` (the reference): ``floor(d_in * s)`` lowest scores pruned in each output row. Group
``matrix`` is what TTS-Pruning's ``wanda_influence`` (LayerIF allocation) does: ``floor(numel * s)`` lowest over the
whole matrix.

``||X_j||_2`` comes from the sum of squared activations of input channel j over the calibration tokens, either from
the dense capture (one-pass mode) or re-measured on the partly pruned model (sequential mode, ``pruner.py``); the
reference divides by the number of windows first, one constant for every column, which changes no ranking.
"""

from __future__ import annotations

from prunetts.pruning.masks import k_smallest

GROUPS = ("row", "matrix")


def wanda_scores(weight, sq_norm_sum):
    import torch

    scores = weight.detach().abs().float()  # a new tensor (abs), so the multiply can be in place: one pass less
    return scores.mul_(torch.sqrt(sq_norm_sum.to(weight.device, torch.float32)).unsqueeze(0))


def wanda_mask(weight, sq_norm_sum, sparsity: float, group: str = "row"):
    """Bool mask (True = prune)."""
    scores = wanda_scores(weight, sq_norm_sum)
    if group == "row":
        return k_smallest(scores, int(weight.shape[1] * sparsity))
    if group == "matrix":
        return k_smallest(scores.reshape(1, -1), int(weight.numel() * sparsity)).reshape(weight.shape)
    raise ValueError(f"unknown Wanda comparison group {group!r} (expected one of {GROUPS})")
