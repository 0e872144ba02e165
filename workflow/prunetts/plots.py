"""Figures. One figure per (model, bench) for accuracy, difference vs dense and thinking length; one per model for
the per-layer sparsity.

Styles are the same everywhere (``VariantStyle`` and ``_figure``): one colour per pruning method (black dense,
blue magnitude, orange Wanda, green ShortGPT), one line style per allocation (solid uniform, dashed OWL, dotted
LayerIF, dash-dot ShortGPT, dash-dot-dot ShortGPT with a layer count), darker = sparser (ShortGPT with a layer count:
more layers removed); variants listed dense first, then by method, sparsity and allocation (``stats.variant_order``).

- ``accuracy_vs_budget``: mean accuracy over seeds per variant and budget; band = the 95 % Wilson interval (problems
  as the sample) from the ``stats`` table.
- ``diff_heatmap``: rows = pruned variants, columns = budgets, colour = accuracy − dense accuracy (red worse, blue
  better); every cell prints its difference; significant cells (exact sign-flip test over problems,
  Holm-adjusted p < 0.05: ``stats.diff_significant``) carry a star and a black outline. One figure per (model,
  bench), like the accuracy figure, so a figure stays readable with many variants and the report lists them per
  benchmark. Its seed counts (title, rows) are the seeds each difference pairs with dense.
- ``thinking_lengths``: left, box plots of the thinking tokens of every trace (problems × seeds) at the largest
  budget per variant (box = quartiles, whiskers 1.5 IQR, triangle = mean, dashed line = the budget); right, the share
  of traces that hit the budget, per variant and budget, on the same rows.
- ``layer_sparsity``: per-layer realized sparsity of every variant, attention and MLP linears apart, and the layer
  scores behind the allocations (in colours of their own, ``SCORE_COLOURS``, none a method's).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pandas as pd

from prunetts.config import ConfigError, parse_variant
from prunetts.stats import number_text, seeds_text, variant_order

METHOD_COLOURS = {"dense": "black", "magnitude": "tab:blue", "wanda": "tab:orange", "shortgpt": "tab:green"}
ALLOCATION_STYLES = {None: "-", "uniform": "-", "owl": "--", "layerif": ":", "shortgpt": "-."}
# ShortGPT by layer count (shortgpt-n2) is shaded on its own scale (the layer counts), so the k-th layer count gets the
# same colour as the k-th sparsity's shortgpt-s*: dash-dot-dot keeps the two apart in one legend
SHORTGPT_LAYERS_STYLE = (0, (5, 1.5, 1, 1.5, 1, 1.5))
# the per-layer figure's score lines, in colours no method has: drawn in matplotlib's cycle, ShortGPT's BI came out
# in Magnitude's blue and LayerIF's MLP influence in ShortGPT's green, under panels where those colours are the methods
SCORE_COLOURS = {
    ("owl", "layer"): "tab:purple",
    ("bi", "layer"): "tab:brown",
    ("layerif", "attention"): "tab:pink",
    ("layerif", "mlp"): "tab:olive",
}
RC = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 120,
    "savefig.dpi": 150,
}
SIGNIFICANCE_NOTE = "Holm-adjusted p < 0.05, exact sign-flip test over problems"


class VariantStyle:
    """Colour and line style of each variant of one figure's grid (module docstring)."""

    def __init__(self, variants):
        self._parsed = {}
        for v in set(variants):
            try:
                self._parsed[v] = parse_variant(v)
            except ConfigError:
                self._parsed[v] = None
        ps = [p for p in self._parsed.values() if p is not None and not p.is_dense]
        self._sparsities = sorted({p.sparsity for p in ps if not p.n_layers})
        self._n_layers = sorted({p.n_layers for p in ps if p.n_layers})

    def _shade(self, p) -> float:
        levels, value = (self._n_layers, p.n_layers) if p.n_layers else (self._sparsities, p.sparsity)
        rank = levels.index(value) if value in levels else len(levels) - 1
        return 0.45 + 0.55 * (rank + 1) / max(1, len(levels))

    def color(self, variant: str):
        import matplotlib.colors as mcolors

        p = self._parsed.get(variant)
        if p is None:
            return mcolors.to_rgb("tab:gray")
        if p.is_dense:
            return mcolors.to_rgb("black")
        base = mcolors.to_rgb(METHOD_COLOURS.get(p.method, "tab:gray"))
        shade = self._shade(p)
        return tuple(1 - shade * (1 - c) for c in base)  # lighter for low sparsity

    def line(self, variant: str) -> dict:
        p = self._parsed.get(variant)
        if p is not None and p.is_dense:
            return dict(color=self.color(variant), linestyle="-", linewidth=2.2)
        allocation = p.allocation if p is not None else None
        style = SHORTGPT_LAYERS_STYLE if p is not None and p.n_layers else ALLOCATION_STYLES.get(allocation, "--")
        return dict(color=self.color(variant), linestyle=style, linewidth=1.6)


@contextlib.contextmanager
def _figure(out: str | Path, nrows: int = 1, ncols: int = 1, **kwargs):
    """The one place figures are created and saved: house rcParams, Agg backend, tight bounding box, PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.rc_context(RC):
        fig, axes = plt.subplots(nrows, ncols, **kwargs)
        try:
            yield fig, axes
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(out, bbox_inches="tight", format="png")
        finally:
            plt.close(fig)


def _budget_axis(ax, budgets) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xticks(budgets, [str(b) for b in budgets])
    ax.minorticks_off()
    ax.set_xlabel("thinking budget (tokens)")


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def _count_text(counts: pd.Series, noun: str) -> str:
    """``3 seeds``, or ``2–3 seeds`` where the rows differ (a variant with a failed seed, under --keep-going)."""
    lo, hi = int(counts.min()), int(counts.max())
    if lo == hi:
        return f"{hi} {noun}" if hi == 1 else f"{hi} {noun}s"
    return f"{lo}–{hi} {noun}s"


def _seed_labels(part: pd.DataFrame, variants: list[str]) -> dict[str, str]:
    """Each variant's label: its name, plus its seed count where it has fewer seeds than the others."""
    n = part.groupby("variant")["n_seeds"].max()
    return {v: v if n[v] == n.max() else f"{v} ({seeds_text(int(n[v]))})" for v in variants}


def accuracy_vs_budget(st: pd.DataFrame, model: str, bench: str, out: str | Path) -> None:
    """``st``: the ``stats`` table."""
    part = st[(st["model"] == model) & (st["bench"] == bench)]
    variants = variant_order(part["variant"])
    style = VariantStyle(variants)
    with _figure(out, figsize=(7.5, 4.5)) as (fig, ax):
        if part.empty:
            _empty(ax, f"no results for {model} on {bench}")
            return
        labels = _seed_labels(part, variants)
        for v in variants:
            pv = part[part["variant"] == v].sort_values("budget")
            s = style.line(v)
            ax.plot(pv["budget"], pv["accuracy_mean"], marker="o", markersize=3.5, label=labels[v], **s)
            ax.fill_between(
                pv["budget"], pv["accuracy_ci_low"], pv["accuracy_ci_high"], color=s["color"], alpha=0.12, linewidth=0
            )
        _budget_axis(ax, sorted(part["budget"].unique()))
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("accuracy")
        ax.set_title(
            f"{model} on {bench}: accuracy vs thinking budget\n"
            f"mean of {_count_text(part['n_seeds'], 'seed')}; band = 95 % Wilson interval over "
            f"{_count_text(part['n_problems'], 'problem')}",
            fontsize=9,
        )
        ax.grid(alpha=0.3)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))


def diff_heatmap(st: pd.DataFrame, model: str, bench: str, out: str | Path) -> None:
    """``st``: the ``stats`` table. Accuracy difference vs dense per pruned variant and budget."""
    from matplotlib.patches import Rectangle

    part = st[(st["model"] == model) & (st["bench"] == bench) & (st["variant"] != "dense")]
    part = part[part["diff_vs_dense"].notna()]
    # a difference is over the (problem, seed) pairs the variant shares with dense (n_paired), so its seeds are the
    # shared ones, not the variant's own (dense with a failed seed: 2 of the variant's 3); a bench's variants all
    # have its problems, so n_paired / n_problems is that count
    part = part.assign(n_seeds=(part["n_paired"].astype(float) / part["n_problems"]).round().astype(int))
    variants = variant_order(part["variant"])
    budgets = sorted(part["budget"].unique())
    height = 1.6 + 0.32 * max(1, len(variants))
    with _figure(out, figsize=(1.6 + 0.95 * max(3, len(budgets)), height)) as (fig, ax):
        if part.empty:
            _empty(ax, f"{model} on {bench}: no pruned variant with a dense baseline")
            return
        diff = part.pivot(index="variant", columns="budget", values="diff_vs_dense").reindex(variants)[budgets]
        sig = part.pivot(index="variant", columns="budget", values="diff_significant").reindex(variants)[budgets]
        d = diff.to_numpy(dtype=float)
        vmax = max(0.05, float(np.nanmax(np.abs(d))))
        import matplotlib.pyplot as plt

        cmap = plt.get_cmap("RdBu").with_extremes(bad="lightgrey")
        im = ax.imshow(np.ma.masked_invalid(d), cmap=cmap, vmin=-vmax, vmax=vmax, aspect="auto")
        for i in range(d.shape[0]):
            for j in range(d.shape[1]):
                if np.isnan(d[i, j]):
                    continue
                s = sig.iat[i, j]
                significant = s is not None and not pd.isna(s) and bool(s)
                colour = "white" if abs(d[i, j]) > 0.6 * vmax else "black"
                text = number_text(d[i, j], 2, sign=True) + ("*" if significant else "")
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color=colour)
                if significant:
                    ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=1.8))
        ax.set_xticks(range(len(budgets)), [str(b) for b in budgets])
        labels = _seed_labels(part, variants)
        ax.set_yticks(range(len(variants)), [labels[v] for v in variants])
        style = VariantStyle(variants)
        for label, v in zip(ax.get_yticklabels(), variants, strict=True):
            label.set_color(style.color(v))
        ax.set_xlabel("thinking budget (tokens)")
        for side in ("top", "right"):
            ax.spines[side].set_visible(True)
        cbar = fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02)
        cbar.set_label("accuracy − dense accuracy")
        ax.set_title(
            f"{model} on {bench}: accuracy difference vs dense\n"
            f"{_count_text(part['n_problems'], 'problem')} × {_count_text(part['n_seeds'], 'seed')}; "
            f"* and outline: {SIGNIFICANCE_NOTE}",
            fontsize=9,
        )


def _horizontal(kwargs: dict) -> dict:
    import matplotlib

    major, minor = (int(x) for x in matplotlib.__version__.split(".")[:2])
    return {**kwargs, **({"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False})}


def thinking_lengths(grades: pd.DataFrame, model: str, bench: str, out: str | Path) -> None:
    """``grades``: rows of the ``grades`` artifact (at least model, variant, bench, seed, budget, thinking_tokens,
    hit_budget). Distribution of thinking tokens at the largest budget and the budget-hit share per budget."""
    part = grades[(grades["model"] == model) & (grades["bench"] == bench)]
    variants = variant_order(part["variant"])
    budgets = sorted(part["budget"].unique())
    n_rows = max(1, len(variants))
    with _figure(
        out,
        1,
        2,
        figsize=(10, 1.6 + 0.32 * n_rows),
        sharey=True,
        gridspec_kw={"width_ratios": [3, max(1.2, 0.5 * len(budgets))]},
    ) as (fig, (left, right)):
        if part.empty:
            _empty(left, f"no traces for {model} on {bench}")
            right.set_axis_off()
            return
        bmax = budgets[-1]
        style = VariantStyle(variants)
        top = part[part["budget"] == bmax]
        data = [top.loc[top["variant"] == v, "thinking_tokens"].to_numpy() for v in variants]
        bp = left.boxplot(
            data,
            **_horizontal(
                dict(
                    positions=range(1, n_rows + 1),
                    widths=0.6,
                    patch_artist=True,
                    showmeans=True,
                    meanprops=dict(marker="^", markerfacecolor="white", markeredgecolor="black", markersize=4),
                    medianprops=dict(color="black"),
                    flierprops=dict(marker=".", markersize=2, alpha=0.4),
                )
            ),
        )
        for box, v in zip(bp["boxes"], variants, strict=True):
            box.set_facecolor((*style.color(v), 0.55))
            box.set_edgecolor(style.color(v))
        left.axvline(bmax, color="grey", linestyle="--", linewidth=1)
        left.set_yticks(range(1, n_rows + 1), variants)
        for label, v in zip(left.get_yticklabels(), variants, strict=True):
            label.set_color(style.color(v))
        left.set_ylim(n_rows + 0.5, 0.5)  # dense on top
        left.set_xlabel(f"thinking tokens at B = {bmax} (every problem × seed)")
        left.grid(axis="x", alpha=0.3)
        left.set_title(f"{model} on {bench}: thinking length at the largest budget", fontsize=9)

        hit = part.groupby(["variant", "budget"])["hit_budget"].mean().unstack("budget").reindex(variants)[budgets]
        h = hit.to_numpy(dtype=float)
        right.imshow(
            np.ma.masked_invalid(h),
            cmap="Oranges",
            vmin=0,
            vmax=1,
            aspect="auto",
            extent=(-0.5, len(budgets) - 0.5, n_rows + 0.5, 0.5),
        )
        for i in range(h.shape[0]):
            for j in range(h.shape[1]):
                if not np.isnan(h[i, j]):
                    colour = "white" if h[i, j] > 0.6 else "black"
                    right.text(
                        j,
                        i + 1,
                        number_text(100 * h[i, j], 0) + "%",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color=colour,
                    )
        right.set_xticks(range(len(budgets)), [str(b) for b in budgets])
        right.set_xlabel("thinking budget (tokens)")
        right.set_title("share of traces that hit the budget", fontsize=9)
        right.tick_params(axis="y", left=False)


def layer_sparsity(sparsity: pd.DataFrame, scores: pd.DataFrame, model: str, out: str | Path) -> None:
    """Per-layer realized sparsity of every pruned variant, attention linears (top) and MLP linears (middle) apart:
    LayerIF allocates the two components separately, so a layer's mean over all its linears would hide what
    either got; below, the per-layer scores behind the allocations, each min-max normalised."""
    from prunetts.pruning.allocation import component

    sp = sparsity[sparsity["model"] == model].copy()
    sp["component"] = sp["module"].map(component)
    per_layer = sp.groupby(["variant", "component", "layer"])[["n_zero", "numel"]].sum()
    per_layer = (per_layer["n_zero"] / per_layer["numel"]).rename("sparsity").reset_index()
    variants = variant_order(per_layer["variant"])
    style = VariantStyle(variants)
    with _figure(out, 3, 1, figsize=(8, 9), sharex=True, gridspec_kw={"height_ratios": [3, 3, 2]}) as (
        fig,
        (attn, mlp, bottom),
    ):
        for ax, comp, what in ((attn, "attention", "attention (q, k, v, o)"), (mlp, "mlp", "MLP (gate, up, down)")):
            for v in variants:
                part = per_layer[(per_layer["variant"] == v) & (per_layer["component"] == comp)]
                ax.plot(part["layer"], part["sparsity"], marker="o", markersize=3, label=v, **style.line(v))
            ax.set_ylabel(f"realized sparsity,\n{what}")
            ax.set_ylim(-0.02, 1.02)
            ax.grid(alpha=0.3)
        attn.set_title(f"{model}: per-layer sparsity by variant (ShortGPT: removed layer = 1)", fontsize=9)
        attn.legend(fontsize=6, ncol=2, loc="upper left")
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
                color=SCORE_COLOURS.get((scorer, comp), "tab:gray"),
                label=label + (f" ({comp})" if comp != "layer" else ""),
            )
        bottom.set_xlabel("decoder layer")
        bottom.set_ylabel("score (min-max)")
        bottom.grid(alpha=0.3)
        bottom.legend(fontsize=7)
