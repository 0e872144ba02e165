"""Typed views of the validated workflow config and the variant ids.

The JSON schema (``workflow/schemas/config.schema.yaml``) checks shapes and enums; ``check`` adds the rules a schema
cannot express (sorted budgets, ...). Variant ids are self-describing slugs, one ``variant`` wildcard for every
pruning knob: ``dense``, ``wanda-owl-s0.20``, ``magnitude-uniform-s0.10``, ``shortgpt-s0.20`` (n = round(S*L)
layers), ``shortgpt-n3`` (exactly 3 layers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

UNSTRUCTURED_METHODS = ("magnitude", "wanda")
STRUCTURED_METHODS = ("shortgpt",)
ALLOCATIONS = ("uniform", "owl", "layerif")
DENSE = "dense"

_VARIANT_RE = re.compile(r"^(?P<method>[a-z]+)-(?P<allocation>[a-z]+)-s(?P<sparsity>0\.\d{2,4})$")
_SHORTGPT_RE = re.compile(r"^shortgpt-(?:s(?P<sparsity>0\.\d{2,4})|n(?P<n>[1-9]\d*))$")


class ConfigError(ValueError):
    """A user mistake in the config: the message is one line naming the key and the fix."""


@dataclass(frozen=True)
class Variant:
    method: str  # "dense" or a pruning method
    allocation: str | None = None  # layer-wise allocation; "shortgpt" for layer removal
    sparsity: float = 0.0
    n_layers: int | None = None  # ShortGPT with an explicit layer count

    @property
    def id(self) -> str:
        if self.method == DENSE:
            return DENSE
        if self.method == "shortgpt":
            return f"shortgpt-n{self.n_layers}" if self.n_layers else f"shortgpt-s{format_sparsity(self.sparsity)}"
        return f"{self.method}-{self.allocation}-s{format_sparsity(self.sparsity)}"

    @property
    def is_dense(self) -> bool:
        return self.method == DENSE

    @property
    def scorer(self) -> str | None:
        """The layer score the allocation needs."""
        return {"owl": "owl", "layerif": "layerif", "shortgpt": "bi"}.get(self.allocation)


def format_sparsity(s: float) -> str:
    text = f"{s:.4f}".rstrip("0")
    head, _, frac = text.partition(".")
    return f"{head}.{frac.ljust(2, '0')}"


def parse_variant(slug: str) -> Variant:
    if slug == DENSE:
        return Variant(DENSE)
    m = _SHORTGPT_RE.match(slug)
    if m:
        if m["n"]:
            return Variant("shortgpt", "shortgpt", n_layers=int(m["n"]))
        return Variant("shortgpt", "shortgpt", float(m["sparsity"]))
    m = _VARIANT_RE.match(slug)
    if not m or m["method"] not in UNSTRUCTURED_METHODS or m["allocation"] not in ALLOCATIONS:
        raise ConfigError(
            f"variant {slug!r}: not a known variant id (e.g. 'dense', 'wanda-owl-s0.20', 'shortgpt-s0.20')"
        )
    return Variant(m["method"], m["allocation"], float(m["sparsity"]))


def variants(config: dict) -> list[str]:
    """All variant ids of the pruning grid, dense first."""
    p = config["pruning"]
    out = [DENSE] if p.get("include_dense", True) else []
    methods = p.get("methods", [])
    for method in methods:
        if method in STRUCTURED_METHODS:
            continue
        for allocation in p.get("allocations", []):
            for s in p.get("sparsities", []):
                out.append(Variant(method, allocation, s).id)
    if "shortgpt" in methods:
        out += [Variant("shortgpt", "shortgpt", s).id for s in p.get("sparsities", [])]
        out += [Variant("shortgpt", "shortgpt", n_layers=n).id for n in p.get("shortgpt_layers", [])]
    return out


def scorers(config: dict) -> list[str]:
    """Layer scorers the grid needs."""
    needed = {parse_variant(v).scorer for v in variants(config)}
    return [s for s in ("owl", "bi", "layerif") if s in needed]


def check(config: dict) -> None:
    """Semantic checks beyond the JSON schema; raises ``ConfigError`` (one line) on the first problem."""
    budgets = config["generation"]["budgets"]
    if list(budgets) != sorted(set(budgets)):
        raise ConfigError(f"generation.budgets: {budgets} must be strictly increasing (e.g. [512, 1024, 2048])")
    p = config["pruning"]
    sparsities = p.get("sparsities", [])
    if len({format_sparsity(s) for s in sparsities}) != len(sparsities):
        raise ConfigError(f"pruning.sparsities: {sparsities} has duplicates (after rounding to 4 decimals)")
    if not variants(config):
        raise ConfigError("pruning: the grid is empty; set include_dense: true or list methods and sparsities")
    if p.get("shortgpt_layers") and "shortgpt" not in p.get("methods", []):
        raise ConfigError("pruning.shortgpt_layers: set, but 'shortgpt' is not in pruning.methods; add it")
    from prunetts.benchmarks import options_of

    for name, opts in config["benchmarks"].items():
        extra = sorted(set(opts or {}) - {"source", "limit", *options_of(name)})
        if extra:
            raise ConfigError(
                f"benchmarks.{name}: {', '.join(extra)} is not an option of {name} (only gpqa_diamond takes "
                "shuffle_seed); remove it"
            )
