"""Figures: accuracy vs thinking budget, one line per variant (mean over seeds, band = min..max over seeds).

One colour per pruning method and one line style per allocation (solid uniform, dashed OWL, dotted LayerIF,
dash-dot ShortGPT), fixed across every figure; darker = sparser.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from prunetts.config import parse_variant
from prunetts.stats import variant_order

METHOD_COLOURS = {"dense": "black", "magnitude": "tab:blue", "wanda": "tab:orange", "shortgpt": "tab:green"}
ALLOCATION_STYLES = {None: "-", "uniform": "-", "owl": "--", "layerif": ":", "shortgpt": "-."}


def _style(variant: str, sparsities: list[float]):
    v = parse_variant(variant)
    if v.is_dense:
        return dict(color="black", linestyle="-", linewidth=2.2)
    import matplotlib.colors as mcolors

    rank = sorted(sparsities).index(v.sparsity) if v.sparsity in sparsities else len(sparsities) - 1
    shade = 0.45 + 0.55 * (rank + 1) / max(1, len(sparsities))
    base = mcolors.to_rgb(METHOD_COLOURS.get(v.method, "tab:gray"))
    color = tuple(1 - shade * (1 - c) for c in base)  # lighter for low sparsity
    return dict(color=color, linestyle=ALLOCATION_STYLES.get(v.allocation, "--"), linewidth=1.6)


def accuracy_vs_budget(sc: pd.DataFrame, model: str, bench: str, out: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    part = sc[(sc["model"] == model) & (sc["bench"] == bench)]
    sparsities = sorted({parse_variant(v).sparsity for v in part["variant"] if v != "dense"})
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for v in variant_order(part["variant"]):
        g = part[part["variant"] == v].groupby("budget")["accuracy"]
        mean, lo, hi = g.mean(), g.min(), g.max()
        style = _style(v, sparsities)
        ax.plot(mean.index, mean.values, marker="o", markersize=3.5, label=v, **style)
        ax.fill_between(mean.index, lo.values, hi.values, color=style["color"], alpha=0.12, linewidth=0)
    ax.set_xscale("log", base=2)
    budgets = sorted(part["budget"].unique())
    ax.set_xticks(budgets, [str(b) for b in budgets])
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("thinking budget (tokens)")
    ax.set_ylabel("accuracy")
    n_seeds = part["seed"].nunique()
    ax.set_title(f"{model} on {bench}: accuracy vs thinking budget (mean of {n_seeds} seeds, band = range)")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", frameon=False)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def layer_sparsity(sparsity: pd.DataFrame, scores: pd.DataFrame, model: str, out: str | Path) -> None:
    """Per-layer realized sparsity of every pruned variant (top) and the per-layer scores behind the allocations
    (bottom, each min-max normalised)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sp = sparsity[sparsity["model"] == model].copy()
    sp["zeros"] = sp["n_zero"]
    per_layer = sp.groupby(["variant", "layer"])[["zeros", "numel"]].sum()
    per_layer = (per_layer["zeros"] / per_layer["numel"]).rename("sparsity").reset_index()
    sparsities = sorted({parse_variant(v).sparsity for v in per_layer["variant"] if parse_variant(v).sparsity})
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), dpi=120, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    for v in variant_order(per_layer["variant"]):
        part = per_layer[per_layer["variant"] == v]
        style = _style(v, sparsities)
        top.plot(part["layer"], part["sparsity"], marker="o", markersize=3, label=v, **style)
    top.set_ylabel("realized sparsity of the layer's linears")
    top.set_ylim(-0.02, 1.02)
    top.set_title(f"{model}: per-layer sparsity by variant (ShortGPT: removed layer = 1)", fontsize=9)
    top.grid(alpha=0.3)
    top.legend(fontsize=6, ncol=2, frameon=False, loc="upper left")
    sc = scores[scores["model"] == model]
    for (scorer, comp), part in sc.groupby(["scorer", "component"], sort=True):
        v = part.sort_values("layer")["score"]
        span = v.max() - v.min()
        norm = (v - v.min()) / span if span > 0 else v * 0
        label = {"owl": "OWL outlier ratio", "bi": "ShortGPT BI", "layerif": "LayerIF influence"}[scorer]
        bottom.plot(
            part.sort_values("layer")["layer"],
            norm,
            marker="s",
            markersize=3,
            label=label + (f" ({comp})" if comp != "layer" else ""),
        )
    bottom.set_xlabel("decoder layer")
    bottom.set_ylabel("score (min-max)")
    bottom.grid(alpha=0.3)
    bottom.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
