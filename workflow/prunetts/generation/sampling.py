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
    return Stream(stream_seed(seed, problem_id, phase), n).values()


class Stream:
    """A sequence's uniforms from position ``offset`` on. The transformers backend reads them one per generated
    token; engines with their own samplers (vLLM) get ``engine_seed`` instead, one seed per (stream, offset)."""

    def __init__(self, seed: int, length: int, offset: int = 0):
        self.seed, self.length, self.offset = seed, length, offset
        self._values = None

    def values(self):
        import torch

        if self._values is None:
            g = torch.Generator().manual_seed(self.seed)
            self._values = torch.rand(self.length, generator=g, dtype=torch.float64)
        return self._values

    def __getitem__(self, i: int) -> float:
        return float(self.values()[self.offset + i])

    def at(self, offset: int) -> Stream:
        """The same stream, ``offset`` positions further on (a continuation after a "Wait")."""
        s = Stream(self.seed, self.length, self.offset + offset)
        s._values = self._values
        return s

    @property
    def engine_seed(self) -> int:
        if self.offset == 0:
            return self.seed
        h = hashlib.sha256(f"{self.seed}\x00{self.offset}".encode()).digest()
        return int.from_bytes(h[:8], "big") & ((1 << 63) - 1)


def sample_next(logits, u, temperature: float, top_p: float = 1.0, top_k: int = 0):
    """Next token per row of ``logits`` [B, V] from uniforms ``u`` [B]."""
    import torch

    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    sorted_p, order = probs.sort(dim=-1, descending=True, stable=True)
    if top_k > 0:
        sorted_p[:, top_k:] = 0
        sorted_p /= sorted_p.sum(-1, keepdim=True)  # top-p then measures the top-k mass, as in vLLM and transformers
    if top_p < 1.0:
        # keep the smallest prefix whose mass reaches top_p (the first token always stays)
        before = sorted_p.cumsum(-1) - sorted_p
        sorted_p = torch.where(before < top_p, sorted_p, torch.zeros_like(sorted_p))
    cdf = sorted_p.double().cumsum(-1)
    target = (u.to(cdf.device) * cdf[:, -1]).unsqueeze(1)
    idx = torch.searchsorted(cdf, target).clamp(max=cdf.shape[1] - 1)
    return order.gather(1, idx).squeeze(1)
