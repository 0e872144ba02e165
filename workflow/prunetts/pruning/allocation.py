"""Layer-wise sparsity allocation: which target sparsity each prunable linear gets.

Uniform: every prunable linear gets the global target S (the Wanda / magnitude default).
"""

from __future__ import annotations


def uniform(modules: list[tuple[int, str]], sparsity: float) -> dict[tuple[int, str], float]:
    return {key: float(sparsity) for key in modules}


ALLOCATORS = {"uniform": uniform}


def allocate(allocation: str, modules: list[tuple[int, str]], sparsity: float) -> dict[tuple[int, str], float]:
    return ALLOCATORS[allocation](modules, sparsity)
