"""Per-layer importance scores, each from cached artifacts (no forward pass here).

- ``owl``: layer outlier ratio D_l (OWL, Yin et al. 2024) = 100 x share of the Wanda scores
  |W_ij| * ||X_j|| of all prunable linears of layer l that exceed M x their mean. Activations from the dense capture;
  weights streamed one matrix at a time from the checkpoint.
- ``bi``: ShortGPT Block Influence BI_l = 1 - mean cos(input, output) of layer l (capture).
- ``layerif``: LayerIF positive influence sums S(l, c) = sum over training examples of max(I, 0), per component
  (``influence.py``).
"""

from __future__ import annotations

import math

from prunetts.checkpoint import Reader, prunable_modules_from_shapes, tensor_shapes

SCORERS = ("owl", "bi", "layerif")
COUNT_CHUNK = 1 << 24  # OWL checks and counts a layer's scores in chunks of this many (not the 194 M of an 8B layer)


def owl_outlier_ratios(model_path: str, stats: dict, m: float) -> dict[int, float]:
    import torch

    from prunetts.layerwise import check_finite_stats, release_freed_memory
    from prunetts.models import ModelError
    from prunetts.pruning.wanda import wanda_scores

    reader = Reader(model_path)
    modules = prunable_modules_from_shapes(tensor_shapes(reader.dir))
    by_layer: dict[int, list[str]] = {}
    for layer, name, _ in modules:
        by_layer.setdefault(layer, []).append(name)
    # an inf/NaN statistic makes no score exceed M x the (inf/NaN) mean: D_l = 0, a finite, wrong ratio
    for layer, names in sorted(by_layer.items()):
        check_finite_stats({n: stats[(layer, n)] for n in names}, layer, what="OWL")
    ratios = {}
    for layer, names in sorted(by_layer.items()):
        keys = [f"model.layers.{layer}.{n}.weight" for n in names]
        # the layer's scores written into one buffer (the mean of the concatenation, as the reference computes it),
        # each weight read only when it is scored: a list of per-matrix scores and their concatenation would hold
        # the layer's scores twice (1.5 GB at Qwen3-8B's width), and the whole layer's weights would add 0.4 GB
        flat = torch.empty(sum(math.prod(shape) for _, _, shape in reader.layout(keys)), dtype=torch.float32)
        start = 0
        for k, n in zip(keys, names, strict=True):
            weight = reader.load([k])[k]
            flat[start : start + weight.numel()] = wanda_scores(weight, stats[(layer, n)]).flatten()
            start += weight.numel()
            del weight
        # checked and counted chunk by chunk: on the whole layer, isfinite alone peaked 1.3 GB above the scores
        chunks = flat.split(COUNT_CHUNK)
        if not all(bool(torch.isfinite(chunk).all()) for chunk in chunks):
            raise ModelError(f"OWL: layer {layer}: the Wanda scores are inf/NaN; check the checkpoint's weights")
        threshold = m * flat.mean()
        outliers = sum(int((chunk > threshold).sum()) for chunk in chunks)
        ratios[layer] = float(outliers) / flat.numel() * 100.0
        del flat, chunks  # the chunks are views: they would keep the buffer alive into the next layer
        release_freed_memory()
    return ratios


def bi_scores(capture_layers: list[dict]) -> dict[int, float]:
    return {r["layer"]: 1.0 - r["cos_mean"] for r in capture_layers}


def rows(model: str, scorer: str, scores: dict, impl_version: int) -> list[dict]:
    """``scores``: ``{layer: value}`` (component "layer") or ``{(layer, component): value}``."""
    out = []
    for key, value in sorted(scores.items()):
        layer, comp = key if isinstance(key, tuple) else (key, "layer")
        out.append(
            dict(model=model, impl_version=impl_version, scorer=scorer, layer=layer, component=comp, score=float(value))
        )
    return out


def from_rows(table_rows: list[dict]) -> dict:
    out = {}
    for r in table_rows:
        out[r["layer"] if r["component"] == "layer" else (r["layer"], r["component"])] = r["score"]
    return out
