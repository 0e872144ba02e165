"""Typed views of the validated workflow config and the variant ids.

The JSON schema (``workflow/schemas/config.schema.yaml``) checks shapes and enums; ``check`` adds the rules a schema
cannot express (sorted budgets, ...). Variant ids are self-describing slugs: ``dense``, ``wanda-uniform-s0.20``,
``magnitude-uniform-s0.50``; one ``variant`` wildcard carries every pruning knob.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

UNSTRUCTURED_METHODS = ("magnitude", "wanda")
ALLOCATIONS = ("uniform",)
DENSE = "dense"

_VARIANT_RE = re.compile(r"^(?P<method>[a-z]+)-(?P<allocation>[a-z]+)-s(?P<sparsity>0\.\d{2,4})$")


class ConfigError(ValueError):
    """A user mistake in the config: the message is one line naming the key and the fix."""


@dataclass(frozen=True)
class Variant:
    method: str  # "dense" or a pruning method
    allocation: str | None = None
    sparsity: float = 0.0

    @property
    def id(self) -> str:
        if self.method == DENSE:
            return DENSE
        return f"{self.method}-{self.allocation}-s{format_sparsity(self.sparsity)}"

    @property
    def is_dense(self) -> bool:
        return self.method == DENSE


def format_sparsity(s: float) -> str:
    text = f"{s:.4f}".rstrip("0")
    head, _, frac = text.partition(".")
    return f"{head}.{frac.ljust(2, '0')}"


def parse_variant(slug: str) -> Variant:
    if slug == DENSE:
        return Variant(DENSE)
    m = _VARIANT_RE.match(slug)
    if not m or m["method"] not in UNSTRUCTURED_METHODS or m["allocation"] not in ALLOCATIONS:
        raise ConfigError(f"variant {slug!r}: not a known variant id (e.g. 'dense', 'wanda-uniform-s0.20')")
    return Variant(m["method"], m["allocation"], float(m["sparsity"]))


def variants(config: dict) -> list[str]:
    """All variant ids of the pruning grid, dense first."""
    p = config["pruning"]
    out = [DENSE] if p.get("include_dense", True) else []
    for method in p.get("methods", []):
        for allocation in p.get("allocations", []):
            for s in p.get("sparsities", []):
                out.append(Variant(method, allocation, s).id)
    return out


def check(config: dict) -> None:
    """Semantic checks beyond the JSON schema; raises ``ConfigError`` with one line per first problem."""
    budgets = config["generation"]["budgets"]
    if list(budgets) != sorted(set(budgets)):
        raise ConfigError(f"generation.budgets: {budgets} must be strictly increasing (e.g. [512, 1024, 2048])")
    sparsities = config["pruning"].get("sparsities", [])
    if len({format_sparsity(s) for s in sparsities}) != len(sparsities):
        raise ConfigError(f"pruning.sparsities: {sparsities} has duplicates (after rounding to 4 decimals)")
    if not variants(config):
        raise ConfigError("pruning: the grid is empty; set include_dense: true or list methods and sparsities")
