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
    assert style.line("magnitude-uniform-s0.30")["linestyle"] == "-" and style.line("shortgpt-n2")["linestyle"] == "-."
    # same method, sparser = darker
    assert sum(style.color("magnitude-uniform-s0.50")) < sum(style.color("magnitude-uniform-s0.30"))
    assert sum(style.color("shortgpt-n3")) < sum(style.color("shortgpt-n2"))
    # one figure's style does not depend on which other figure asked
    assert plots.VariantStyle(VARIANTS).line("wanda-owl-s0.50") == plots.VariantStyle(VARIANTS[::-1]).line(
        "wanda-owl-s0.50"
    )
