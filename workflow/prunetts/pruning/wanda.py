"""Wanda (Sun et al. 2023, "A Simple and Effective Pruning Approach for LLMs"): score |W_ij| * ||X_j||_2, comparison
group = each output row, ``floor(d_in * s)`` lowest scores pruned per row (METHODS §2.1).

``||X_j||_2`` comes from the captured sum of squared activations of input channel j over the calibration set
(``capture.py``); the reference divides by the number of windows first, a per-column constant that changes no
per-row ranking.
"""

from __future__ import annotations

from prunetts.pruning.masks import k_smallest


def wanda_scores(weight, sq_norm_sum):
    import torch

    return weight.detach().abs().float() * torch.sqrt(sq_norm_sum.to(torch.float32)).unsqueeze(0)


def wanda_mask(weight, sq_norm_sum, sparsity: float):
    """Bool mask (True = prune), exactly ``floor(d_in * sparsity)`` per output row."""
    scores = wanda_scores(weight, sq_norm_sum.to(weight.device))
    return k_smallest(scores, int(weight.shape[1] * sparsity))
