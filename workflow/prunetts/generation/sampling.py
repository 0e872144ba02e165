"""Seeded per-sequence sampling.

Each sequence draws its uniforms from its own stream, seeded by a hash of (seed, problem id, phase), and samples by
inverse CDF over the probabilities sorted in descending order. So a sequence's tokens depend only on its own logits
and its own stream, never on which batch it ran in or on how many steps other sequences took; that is what makes the
prefix-shared budget sweep exact. Temperature 0 is greedy.
"""

from __future__ import annotations

import hashlib


def stream_seed(seed: int, problem_id: str, phase: str) -> int:
    h = hashlib.sha256(f"{seed}\x00{problem_id}\x00{phase}".encode()).digest()
    return int.from_bytes(h[:8], "big") & ((1 << 63) - 1)


def uniforms(seed: int, problem_id: str, phase: str, n: int):
    import torch

    g = torch.Generator().manual_seed(stream_seed(seed, problem_id, phase))
    return torch.rand(n, generator=g, dtype=torch.float64)


def sample_next(logits, u, temperature: float, top_p: float = 1.0, top_k: int = 0):
    """Next token per row of ``logits`` [B, V] from uniforms ``u`` [B]."""
    import torch

    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    sorted_p, order = probs.sort(dim=-1, descending=True, stable=True)
    if top_k > 0:
        sorted_p[:, top_k:] = 0
    if top_p < 1.0:
        # keep the smallest prefix whose mass reaches top_p (the first token always stays)
        before = sorted_p.cumsum(-1) - sorted_p
        sorted_p = torch.where(before < top_p, sorted_p, torch.zeros_like(sorted_p))
    cdf = sorted_p.double().cumsum(-1)
    target = (u.to(cdf.device) * cdf[:, -1]).unsqueeze(1)
    idx = torch.searchsorted(cdf, target).clamp(max=cdf.shape[1] - 1)
    return order.gather(1, idx).squeeze(1)
