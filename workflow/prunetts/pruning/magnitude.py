"""Magnitude pruning (Han et al. 2015) as in Wanda's ``prune_magnitude``: score |W|, comparison group = the whole
weight matrix.

Deviation, on purpose: we prune exactly ``floor(numel * s)`` entries (ties broken by index). The reference repo takes
the threshold at index ``floor(numel * s)`` of the sorted |W| and prunes ``|W| <= t``, i.e. one entry more plus any
ties; TTS-Pruning's OWL/LayerIF magnitude variants use the exact count, as here.
"""

from __future__ import annotations

from prunetts.pruning.masks import k_smallest


def magnitude_mask(weight, sparsity: float):
    """Bool mask (True = prune) of the ``floor(numel * sparsity)`` smallest |W| of the matrix."""
    w = weight.detach().abs().float().reshape(1, -1)
    k = int(w.numel() * sparsity)
    return k_smallest(w, k).reshape(weight.shape)
