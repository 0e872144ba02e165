"""Layer-wise sparsity allocation: the target sparsity of every prunable linear of a variant.

- **uniform**: every linear at S.
- **owl** (Yin et al. 2024, "Outlier Weighed Layerwise Sparsity"): from the layer outlier ratios D_l,
  ``D' = minmax(D) * 2*lam``, ``s_l = S - (D'_l - mean(D'))`` (mean exactly S, spread 2*lam, more outliers -> less
  pruning). Values <= 0 as TTS-Pruning's code: Wanda-OWL sets them to 0.01 (``prune_wanda_outlier``),
  magnitude-OWL prunes nothing there (``prune_mag_outlier``: ``int(numel * s) <= 0``), with a warning: the mean then
  exceeds S. This happens whenever mean(D') <= 2*lam - S (one layer with far more outliers than the rest at S = 0.1,
  lam = 0.08), not only when lam > S. Every linear of layer l gets s_l. Equal ratios in every layer (e.g. no score
  above M x the mean at a large M), where the reference's min-max divides by zero (NaN sparsities), give every layer
  S, with a warning. A value above 1 (S + mean(D') > 1, only with a large S and lam) is an error, not a silent full
  prune.
- **layerif** (Askari et al. 2025, LayerIF, as TTS-Pruning's ``influence_helper``): per component
  (attention = q,k,v,o; mlp = gate,up,down) separately: a = |S_{l,c}| (positive influence sums), min-max to [0, 1],
  Savitzky-Golay smoothing (window 5, order 2; skipped below ``window`` layers), clip to [0, 1], min-max again
  (``allocate_layer_sparsity``: ``(s - min) / (max - min + 1e-8)``, so the smoothed extremes span [e1, e2] again;
  the paper's text omits this step, its code has it), then ``p_hat = (1 - a)(e2 - e1) + e1`` (direction
  ``paper_code``: more influence -> less pruning) or ``p_hat = a (e2 - e1) + e1`` (direction ``layerif_paper``: the
  LayerIF paper's direction on the paper code's pipeline; LayerIF's own per-block SG(7, 3) and epsilon-ratios
  are not implemented), rescaled by ``eta = S * sum(d) / (sum(p_hat * d) + 1e-8)`` (d = parameters
  of the component in the layer) and clipped to [0, 1], so each component class hits S unless a layer reaches 1
  (a large S with a wide spread: then the component falls short of S, as in the paper's code, with a warning).
- **shortgpt** (``shortgpt.py``): the removed layers get 1.0, the others 0.0.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

ALLOCATIONS = ("uniform", "owl", "layerif")
LAYERIF_DIRECTIONS = ("paper_code", "layerif_paper")


def component(module: str) -> str:
    if module.startswith("self_attn."):
        return "attention"
    if module.startswith("mlp."):
        return "mlp"
    raise ValueError(f"prunable linear {module!r} is neither in self_attn nor in mlp")


def uniform(modules: list[tuple[int, str, int]], sparsity: float) -> dict[tuple[int, str], float]:
    return {(layer, name): float(sparsity) for layer, name, _ in modules}


def owl_layer_sparsity(ratios: dict[int, float], sparsity: float, lam: float) -> dict[int, float]:
    """Per-layer sparsity before the clamp (mean exactly ``sparsity``, spread ``2*lam``)."""
    layers = sorted(ratios)
    d = [ratios[i] for i in layers]
    lo, hi = min(d), max(d)
    scaled = [(x - lo) / (hi - lo) * 2 * lam if hi > lo else 0.0 for x in d]
    mean = sum(scaled) / len(scaled)
    return {i: sparsity - (x - mean) for i, x in zip(layers, scaled, strict=True)}


OWL_TOLERANCE = 1e-9  # a layer sparsity this far above 1 is 1 up to rounding (S + mean - 0 against S + 2λ(L-1)/L)


def owl_peak_range(sparsity: float, lam: float, n_layers: int) -> tuple[float, float]:
    """The least and the most sparsity ``owl_layer_sparsity`` can give its most-pruned layer over all outlier ratios
    that are not all equal: S + mean of the scaled ratios, which lies in [2λ/L, 2λ(L−1)/L] (one layer at the top of
    the 2λ range and the rest at the bottom, or the reverse); S with one layer (or equal ratios)."""
    if n_layers < 2:
        return sparsity, sparsity
    return sparsity + 2 * lam / n_layers, sparsity + 2 * lam * (n_layers - 1) / n_layers


def _above_one(x: float) -> str:
    """A sparsity just above 1 with the digits that show it is (1.0000 would read as allowed)."""
    return f"{x:.4f}" if x >= 1.00005 else f"{x:.12f}".rstrip("0")


def owl_range_problem(sparsity: float, lam: float, n_layers: int) -> tuple[str | None, str | None]:
    """``(error, warning)`` for OWL at ``sparsity`` and ``lam`` on ``n_layers`` layers, checkable before the capture:
    an error when some layer gets a sparsity above 1 for any outlier ratios that are not all equal (real layers' never
    are), a warning when it may (``owl`` then stops once the ratios are known). Both quote the largest lambda that can
    never exceed 1, rounded down to 4 decimals."""
    import math

    least, most = owl_peak_range(sparsity, lam, n_layers)
    safe = math.floor((1 - sparsity) * n_layers / (2 * max(n_layers - 1, 1)) * 1e4 + 1e-6) / 1e4  # 0.06, not 0.0599
    if least > 1 + OWL_TOLERANCE:
        return (
            f"OWL at sparsity {sparsity} and lambda {lam} gives some layer of the {n_layers} a sparsity of at least "
            f"{_above_one(least)} > 1 for any outlier ratios that are not all equal; use a lambda of at most "
            f"{safe:.4f} (never above 1) or a lower sparsity"
        ), None
    if most > 1 + OWL_TOLERANCE:
        return None, (
            f"OWL at sparsity {sparsity} and lambda {lam} may give a layer of the {n_layers} a sparsity above 1 (up "
            f"to {_above_one(most)}, by the outlier ratios): the allocation then stops after the capture; a lambda "
            f"of at most {safe:.4f} cannot"
        )
    return None, None


def owl(
    modules, sparsity: float, ratios: dict[int, float], lam: float, method: str = "wanda"
) -> dict[tuple[int, str], float]:
    import math

    from prunetts.artifacts import ArtifactError
    from prunetts.config import ConfigError

    nonfinite = sorted(i for i, d in ratios.items() if not math.isfinite(d))
    if nonfinite:
        raise ArtifactError(f"OWL: the outlier ratio of layer {nonfinite[0]} is not finite; recompute the capture")
    raw = owl_layer_sparsity(ratios, sparsity, lam)
    if len(ratios) > 1 and len(set(ratios.values())) == 1:  # the reference's min-max divides by zero (NaN) here
        log.warning(
            "OWL: every layer has the same outlier ratio (%s %%: no score above M x its layer's mean, or ties), so "
            "every layer gets sparsity %s: this OWL variant is the uniform one. A lower M (pruning.owl.m, CLI "
            "--owl-m) tells the layers apart",
            next(iter(ratios.values())),
            sparsity,
        )
    bad = [i for i, s in raw.items() if s > 1 + OWL_TOLERANCE]
    if bad:  # the settings' error, one line in the allocate job (it was a traceback there)
        raise ConfigError(
            f"OWL: layer {bad[0]} would get sparsity {raw[bad[0]]:.4f} (target {sparsity}, lambda {lam}); "
            "lower the lambda (pruning.owl.lambda, CLI --owl-lambda) or the sparsity"
        )
    floor = 0.01 if method == "wanda" else 0.0  # TTS-Pruning: Wanda-OWL clamps to 0.01, magnitude-OWL prunes none
    per_layer = {i: (min(s, 1.0) if s > 0 else floor) for i, s in raw.items()}  # 1 + rounding -> 1
    clamped = sorted(i for i, s in raw.items() if s <= 0)
    if clamped:  # the paper's code clamps silently; the layer mean (the global sparsity) then leaves S
        log.warning(
            "OWL: layer(s) %s would get sparsity <= 0 (outlier ratios far above the rest); set to %s as the paper's "
            "code does, so the mean over layers is %.4f, not %s. Lower pruning.owl.lambda (CLI --owl-lambda) to keep S",
            ", ".join(map(str, clamped)),
            floor,
            sum(per_layer.values()) / len(per_layer),
            sparsity,
        )
    return {(layer, name): per_layer[layer] for layer, name, _ in modules}


LAYERIF_NEAR_WHOLE = 0.9  # a layer's component pruned above this is warned of even below the cap


def layerif_component(
    scores: list[float],
    numels: list[int],
    sparsity: float,
    e1: float,
    e2: float,
    direction: str,
    window: int = 5,
    polyorder: int = 2,
    label: str = "this",
) -> list[float]:
    """Per-layer sparsity of one component class (``label``, for the warning) from its per-layer positive influence
    sums."""
    import numpy as np

    a = np.abs(np.asarray(scores, dtype=np.float64))
    if not np.isfinite(a).all():
        raise ValueError(f"LayerIF: influence sums {a.tolist()} are not all finite; recompute the influence scores")
    span = a.max() - a.min()
    s_hat = (a - a.min()) / span if span > 0 else np.zeros_like(a)
    if len(a) >= window:
        from scipy.signal import savgol_filter

        s_hat = savgol_filter(s_hat, window_length=window, polyorder=polyorder)
    s_hat = np.clip(s_hat, 0.0, 1.0)
    s_hat = (s_hat - s_hat.min()) / (s_hat.max() - s_hat.min() + 1e-8)  # second min-max, eps as the paper's code
    if direction == "paper_code":
        p_hat = (1.0 - s_hat) * (e2 - e1) + e1
    elif direction == "layerif_paper":
        p_hat = s_hat * (e2 - e1) + e1
    else:
        raise ValueError(f"unknown LayerIF direction {direction!r} (expected one of {LAYERIF_DIRECTIONS})")
    d = np.asarray(numels, dtype=np.float64)
    eta = sparsity * d.sum() / ((p_hat * d).sum() + 1e-8)
    raw = eta * p_hat
    out = np.clip(raw, 0.0, 1.0)
    capped = int((raw > 1.0).sum())
    if capped:  # the paper's code clips silently; the component then misses S and whole matrices go
        log.warning(
            "LayerIF: %d of %d layers capped at sparsity 1.0 (eta = %.3f); %s component's sparsity is %.4f, not %s. "
            "Lower the sparsity or narrow [e1, e2]",
            capped,
            len(out),
            eta,
            label if label == "this" else f"the {label}",
            float((out * d).sum() / d.sum()),
            sparsity,
        )
    near = [i for i, r in enumerate(raw) if LAYERIF_NEAR_WHOLE < r <= 1.0]
    if near:  # the second min-max puts one layer at e2 whatever the scores: the rescale makes it eta * e2
        log.warning(
            "LayerIF: layer(s) %s get %s sparsity %s, nearly the whole component: the layer with the %s smoothed "
            "influence always gets e2 = %s, times eta = %.3f (the rescale to S). Lower the sparsity or e2",
            ", ".join(map(str, near)),
            "this" if label == "this" else f"the {label}",
            ", ".join(f"{raw[i]:.3f}" for i in near),
            "lowest" if direction == "paper_code" else "highest",
            e2,
            eta,
        )
    return out.tolist()


def layerif(
    modules,
    sparsity: float,
    scores: dict[tuple[int, str], float],
    e1: float = 0.05,
    e2: float = 0.40,
    direction: str = "paper_code",
    window: int = 5,
    polyorder: int = 2,
) -> dict[tuple[int, str], float]:
    out = {}
    layers = sorted({layer for layer, _, _ in modules})
    for comp in ("attention", "mlp"):
        numel = {layer: 0 for layer in layers}
        for layer, name, n in modules:
            if component(name) == comp:
                numel[layer] += n
        per_layer = layerif_component(
            [scores[layer, comp] for layer in layers],
            [numel[i] for i in layers],
            sparsity,
            e1,
            e2,
            direction,
            window,
            polyorder,
            label=comp,
        )
        for layer, s in zip(layers, per_layer, strict=True):
            for lyr, name, _ in modules:
                if lyr == layer and component(name) == comp:
                    out[lyr, name] = s
    return out


def shortgpt(modules, removed: list[int]) -> dict[tuple[int, str], float]:
    gone = set(removed)
    return {(layer, name): (1.0 if layer in gone else 0.0) for layer, name, _ in modules}


def for_variant(variant, modules, layer_scores: dict | None, options: dict, n_layers: int) -> dict:
    """Targets of a ``config.Variant``; ``layer_scores`` from the variant's scorer, ``options`` its config slice."""
    from prunetts.pruning.shortgpt import layers_to_remove, n_for_sparsity

    if variant.allocation == "uniform":
        return uniform(modules, variant.sparsity)
    if variant.allocation == "owl":
        return owl(modules, variant.sparsity, layer_scores, options.get("lambda", 0.08), variant.method)
    if variant.allocation == "layerif":
        return layerif(modules, variant.sparsity, layer_scores, **options)
    if variant.allocation == "shortgpt":
        n = variant.n_layers or n_for_sparsity(variant.sparsity, n_layers)
        return shortgpt(modules, layers_to_remove(layer_scores, n_layers, n))
    raise ValueError(f"unknown allocation {variant.allocation!r}")
