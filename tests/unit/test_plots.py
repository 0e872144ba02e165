"""Every figure function writes a PNG from a small synthetic table (smoke test), and the shared variant styles."""

import numpy as np
import pandas as pd
import pytest

from prunetts import artifacts, plots, stats
from tests.unit.test_stats import grades

PNG = b"\x89PNG\r\n\x1a\n"
VARIANTS = ["dense", "magnitude-uniform-s0.30", "wanda-owl-s0.50", "wanda-layerif-s0.50", "shortgpt-n2"]


@pytest.fixture(scope="module")
def tables():
    rng = np.random.default_rng(0)
    parts = []
    for b, base in ((16, 0.1), (64, 0.4), (256, 0.8)):
        outcomes = {v: {s: rng.random(12) < base * (1 - 0.2 * i) for s in (7, 11)} for i, v in enumerate(VARIANTS)}
        g = grades(outcomes, budget=b)
        g["thinking_tokens"] = rng.integers(1, b + 1, len(g))
        g["hit_budget"] = g["thinking_tokens"] == b
        parts.append(g)
    g = pd.concat(parts, ignore_index=True)
    st = artifacts.table("stats", stats.compute_stats(g, 1)).to_pandas()
    return g, st


def is_png(path) -> bool:
    return path.read_bytes()[:8] == PNG and path.stat().st_size > 5_000


def test_accuracy_vs_budget(tables, tmp_path):
    _, st = tables
    plots.accuracy_vs_budget(st, "m", "demo", tmp_path / "a" / "acc.png")
    assert is_png(tmp_path / "a" / "acc.png")


def test_diff_heatmap(tables, tmp_path):
    _, st = tables
    plots.diff_heatmap(st, "m", "demo", tmp_path / "diff.png")
    assert is_png(tmp_path / "diff.png")
    # no dense baseline: still a PNG that says so
    plots.diff_heatmap(st[st["variant"] != "dense"], "m", "demo", tmp_path / "none.png")
    assert (tmp_path / "none.png").read_bytes()[:8] == PNG


def test_thinking_lengths(tables, tmp_path):
    g, _ = tables
    plots.thinking_lengths(g, "m", "demo", tmp_path / "think.png")
    assert is_png(tmp_path / "think.png")


def test_layer_sparsity(tmp_path):
    rows, scores = [], []
    for v in VARIANTS[1:]:
        for layer in range(4):
            for module in ("self_attn.q_proj", "mlp.down_proj"):
                zero = 64 if v == "shortgpt-n2" and layer in (1, 2) else 20 + 5 * layer
                rows.append(dict(model="m", variant=v, layer=layer, module=module, numel=64, n_zero=zero))
    for scorer, comp in (("owl", "layer"), ("bi", "layer"), ("layerif", "attention"), ("layerif", "mlp")):
        scores += [dict(model="m", scorer=scorer, component=comp, layer=i, score=float(i * i)) for i in range(4)]
    plots.layer_sparsity(pd.DataFrame(rows), pd.DataFrame(scores), "m", tmp_path / "layers.png")
    assert is_png(tmp_path / "layers.png")


def test_variant_styles_are_consistent():
    style = plots.VariantStyle(VARIANTS + ["magnitude-uniform-s0.50", "shortgpt-n3"])
    assert style.line("dense")["color"] == (0.0, 0.0, 0.0)
    assert style.line("wanda-owl-s0.50")["linestyle"] == "--" and style.line("wanda-layerif-s0.50")["linestyle"] == ":"
    assert style.line("magnitude-uniform-s0.30")["linestyle"] == "-"
    assert style.line("shortgpt-n2")["linestyle"] == plots.SHORTGPT_LAYERS_STYLE
    # same method, sparser = darker
    assert sum(style.color("magnitude-uniform-s0.50")) < sum(style.color("magnitude-uniform-s0.30"))
    assert sum(style.color("shortgpt-n3")) < sum(style.color("shortgpt-n2"))
    # one figure's style does not depend on which other figure asked
    assert plots.VariantStyle(VARIANTS).line("wanda-owl-s0.50") == plots.VariantStyle(VARIANTS[::-1]).line(
        "wanda-owl-s0.50"
    )


def test_shortgpt_by_sparsity_and_by_layer_count_never_share_a_style():
    """Both ShortGPT kinds in one grid: each is shaded on its own scale, so the k-th sparsity and the k-th layer count
    got the same colour and the same dash-dot line, two legend entries that could not be told apart."""
    grid = ["dense", "magnitude-uniform-s0.30", "magnitude-uniform-s0.50"]
    grid += ["shortgpt-s0.30", "shortgpt-s0.50", "shortgpt-n2", "shortgpt-n3"]
    style = plots.VariantStyle(grid)
    lines = [style.line(v) for v in grid]
    assert style.line("shortgpt-s0.30")["linestyle"] == "-."
    assert len({(line["color"], str(line["linestyle"])) for line in lines}) == len(grid)


@pytest.fixture
def drawn(monkeypatch):
    """The axes of every figure drawn in the test (kept after the figure is saved and closed)."""
    import contextlib

    kept, make = [], plots._figure

    @contextlib.contextmanager
    def keep(out, *args, **kwargs):
        with make(out, *args, **kwargs) as (fig, axes):
            kept.append(axes)
            yield fig, axes

    monkeypatch.setattr(plots, "_figure", keep)
    return kept


def test_the_sparsest_variant_gets_the_full_method_colour():
    import matplotlib.colors as mcolors

    style = plots.VariantStyle(["magnitude-uniform-s0.30", "magnitude-uniform-s0.50", "shortgpt-n2", "shortgpt-n3"])
    assert style.color("magnitude-uniform-s0.50") == pytest.approx(mcolors.to_rgb("tab:blue"))
    assert style.color("shortgpt-n3") == pytest.approx(mcolors.to_rgb("tab:green"))
    assert style.color("magnitude-uniform-s0.30") != pytest.approx(mcolors.to_rgb("tab:blue"))


def test_accuracy_figure_draws_only_its_benchmark(tables, drawn, tmp_path):
    _, st = tables
    other = st[st["variant"].isin(["dense", "shortgpt-n3"]) | (st["variant"] == "wanda-owl-s0.50")].copy()
    other["bench"], other["variant"] = "aime24", other["variant"].replace("wanda-owl-s0.50", "shortgpt-n3")
    other["accuracy_mean"] = 0.99
    plots.accuracy_vs_budget(pd.concat([st, other]), "m", "demo", tmp_path / "acc.png")
    (ax,) = drawn
    lines = {
        line.get_label(): list(line.get_ydata()) for line in ax.get_lines() if not line.get_label().startswith("_")
    }
    assert list(lines) == VARIANTS
    dense = st[st["variant"] == "dense"].sort_values("budget")["accuracy_mean"].tolist()
    assert lines["dense"] == pytest.approx(dense)


def test_diff_heatmap_stars_exactly_the_significant_cells_and_leaves_out_dense(tables, drawn, tmp_path):
    _, st = tables
    st = st.copy()
    hit = (st["variant"] == "wanda-owl-s0.50") & (st["budget"] == 64)
    st["diff_significant"] = np.where(st["variant"] == "dense", None, hit)
    plots.diff_heatmap(st, "m", "demo", tmp_path / "diff.png")
    (ax,) = drawn
    starred = [t.get_position() for t in ax.texts if t.get_text().endswith("*")]
    variants = [label.get_text() for label in ax.get_yticklabels()]
    assert variants == VARIANTS[1:]
    assert starred == [(1, variants.index("wanda-owl-s0.50"))]
    assert len(ax.texts) == len(VARIANTS[1:]) * 3  # every pruned variant x budget cell has its number


def test_figure_labels_round_as_the_summary_does(tables, drawn, tmp_path):
    """-0.075 (12 of 160) printed -0.07 in the heatmap, where the summary's rounding gives -0.08 at 2 decimals, and
    a 0.125 budget-hit share 12 % against the summary's 0.13: the figures' labels go through the summary's
    rounding."""
    g, st = tables
    st = st.copy()
    cell = (st["variant"] == "wanda-owl-s0.50") & (st["budget"] == 64)
    st.loc[cell, "diff_vs_dense"] = -0.075
    plots.diff_heatmap(st, "m", "demo", tmp_path / "diff.png")
    (ax,) = drawn
    variants = [label.get_text() for label in ax.get_yticklabels()]
    label = next(t.get_text() for t in ax.texts if t.get_position() == (1, variants.index("wanda-owl-s0.50")))
    assert label.rstrip("*") == stats.number_text(-0.075, 2, sign=True) == "-0.08"
    drawn.clear()
    g = g.copy()
    top = (g["variant"] == "dense") & (g["budget"] == 256)
    g.loc[top, "hit_budget"] = [True] * 3 + [False] * 21  # 3 / 24 = 0.125: "12%" by f-string, 0.13 in the summary
    plots.thinking_lengths(g, "m", "demo", tmp_path / "think.png")
    ((_left, right),) = drawn
    assert "13%" in [t.get_text() for t in right.texts] and "12%" not in [t.get_text() for t in right.texts]


def test_a_variant_with_fewer_seeds_says_so(tables, drawn, tmp_path):
    """A variant whose seed failed (the rest run under --keep-going) has fewer seeds than the others: the titles
    give the range and that variant's legend entry and heatmap row its count, not the others' ("mean of 2 seeds"
    over a 1-seed line)."""
    g, _ = tables
    g = g[~((g["variant"] == "wanda-owl-s0.50") & (g["seed"] == 11))]
    st = artifacts.table("stats", stats.compute_stats(g, 1)).to_pandas()
    plots.accuracy_vs_budget(st, "m", "demo", tmp_path / "acc.png")
    plots.diff_heatmap(st, "m", "demo", tmp_path / "diff.png")
    acc, heat = drawn
    labels = [line.get_label() for line in acc.get_lines() if not line.get_label().startswith("_")]
    assert labels == [v if v != "wanda-owl-s0.50" else "wanda-owl-s0.50 (1 seed)" for v in VARIANTS]
    assert "mean of 1–2 seeds; band = 95 % Wilson interval over 12 problems" in acc.get_title()
    rows = [label.get_text() for label in heat.get_yticklabels()]
    assert rows == [v if v != "wanda-owl-s0.50" else "wanda-owl-s0.50 (1 seed)" for v in VARIANTS[1:]]
    assert "12 problems × 1–2 seeds;" in heat.get_title()
    drawn.clear()
    plots.accuracy_vs_budget(tables[1], "m", "demo", tmp_path / "even.png")  # even seeds: names alone
    assert "mean of 2 seeds; band = 95 % Wilson interval over 12 problems" in drawn[0].get_title()


def test_thinking_lengths_box_plots_the_largest_budget(tables, drawn, tmp_path):
    g, _ = tables
    plots.thinking_lengths(g, "m", "demo", tmp_path / "think.png")
    ((left, _right),) = drawn
    assert "B = 256" in left.get_xlabel()
    assert [line.get_xdata()[0] for line in left.get_lines() if line.get_linestyle() == "--"] == [256]


def test_layer_sparsity_plots_the_realized_zeros_of_attention_and_mlp_apart(drawn, tmp_path):
    # LayerIF-like: the last layer's MLP far sparser than its attention; a blended mean would show neither
    zeros = {"self_attn.q_proj": (8, 16, 32), "self_attn.o_proj": (8, 16, 16), "mlp.down_proj": (32, 32, 63)}
    rows = [
        dict(
            model="m",
            variant="magnitude-layerif-s0.50",
            layer=layer,
            module=module,
            numel=64,
            n_zero=zero,
            target_sparsity=0.5,
        )
        for module, per_layer in zeros.items()
        for layer, zero in enumerate(per_layer)
    ]
    scores = [dict(model="m", scorer="owl", component="layer", layer=i, score=float(i)) for i in range(3)]
    plots.layer_sparsity(pd.DataFrame(rows), pd.DataFrame(scores), "m", tmp_path / "layers.png")
    ((attn, mlp, _bottom),) = drawn
    (a,) = [line for line in attn.get_lines() if line.get_label() == "magnitude-layerif-s0.50"]
    (m,) = [line for line in mlp.get_lines() if line.get_label() == "magnitude-layerif-s0.50"]
    assert list(a.get_xdata()) == list(m.get_xdata()) == [0, 1, 2]
    assert list(a.get_ydata()) == pytest.approx([0.125, 0.25, 0.375])  # (q + o zeros) / (q + o numel)
    assert list(m.get_ydata()) == pytest.approx([0.5, 0.5, 63 / 64])


def test_diff_heatmap_counts_the_seeds_it_pairs_with_dense(tables, drawn, tmp_path):
    """Dense with a failed seed (the rest run under --keep-going): every difference is over the one seed both have
    (n_paired = 12), but the heatmap's title said "12 problems × 2 seeds", the variants' own seed count."""
    g, _ = tables
    g = g[~((g["variant"] == "dense") & (g["seed"] == 11))]
    st = artifacts.table("stats", stats.compute_stats(g, 1)).to_pandas()
    assert set(st.loc[st["variant"] != "dense", "n_paired"]) == {12}
    plots.diff_heatmap(st, "m", "demo", tmp_path / "diff.png")
    (heat,) = drawn
    assert "12 problems × 1 seed;" in heat.get_title()
    assert [label.get_text() for label in heat.get_yticklabels()] == VARIANTS[1:]


def test_layer_scores_are_not_drawn_in_a_methods_colour(drawn, tmp_path):
    """The score lines took matplotlib's colour cycle: ShortGPT's BI in Magnitude's blue, LayerIF's MLP influence in
    ShortGPT's green, right under the panels where those colours name the methods."""
    import matplotlib.colors as mcolors

    rows = [
        dict(model="m", variant=v, layer=layer, module="mlp.down_proj", numel=64, n_zero=32)
        for v in ("magnitude-uniform-s0.50", "shortgpt-n1")
        for layer in range(3)
    ]
    scores = [
        dict(model="m", scorer=scorer, component=comp, layer=i, score=float(i))
        for scorer, comp in (("owl", "layer"), ("bi", "layer"), ("layerif", "attention"), ("layerif", "mlp"))
        for i in range(3)
    ]
    plots.layer_sparsity(pd.DataFrame(rows), pd.DataFrame(scores), "m", tmp_path / "layers.png")
    ((_attn, _mlp, bottom),) = drawn
    methods = {mcolors.to_rgb(c) for c in plots.METHOD_COLOURS.values()}
    colours = {line.get_label(): mcolors.to_rgb(line.get_color()) for line in bottom.get_lines()}
    assert len(colours) == 4 and len(set(colours.values())) == 4
    assert not methods & set(colours.values())
